"""The operational store on DynamoDB: one table, shaped by the invoice API (docs/data-model.md).

    line            PK INVOICE#<no>   SK LINE#<event_id>
    invoice header  PK INVOICE#<no>   SK HEADER     GSI1 CUSTOMER#<id> / <date>#<no>   GSI2 HEADERS#<b> / <no>

A header counts its lines exactly: it keeps the set of event ids it has counted, and
is replaced with a conditional PutItem on its version (optimistic locking). A write
reads the touched headers (BatchGetItem), puts the lines they have not counted
(BatchWriteItem), then puts each header with those lines added; a conflict re-reads
that header and tries again. A crash between the two steps is repaired by the replay,
which finds the lines uncounted. No transactions and no per-invoice queries on the
write path: O(1) calls per line and per invoice.

Reads: an invoice is one Query on its partition (lines filtered to the ones its
header counted); a customer's summary and invoice pages come from one Query of
GSI1 (a customer's headers fit in a page or two); totals sum the headers through GSI2.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import defaultdict
from datetime import datetime
from typing import Any

from shopstream.adapters.aws.clients import Aws, batch_get, batch_write, error_code, n, paginate, s
from shopstream.adapters.aws.resources import CUSTOMER_INDEX, HEADER_BUCKETS, HEADERS_INDEX
from shopstream.domain.columnar import EventTable, first_occurrences, timestamp_text
from shopstream.domain.line import Totals
from shopstream.domain.views import (
    CustomerSummary,
    Invoice,
    InvoiceHeader,
    InvoiceLineView,
    InvoicePage,
    decode_cursor,
    encode_cursor,
)

log = logging.getLogger("shopstream.dynamodb")

MAX_CONFLICT_RETRIES = 20
_TRAILING_NUMBER = re.compile(r"^(.*?)(\d+)$")


def _is_sale(invoice_no: str, quantity: int, price: int) -> bool:
    return invoice_no[:1] not in ("C", "A") and quantity > 0 and price > 0


def _header_view(item: dict) -> InvoiceHeader:
    return InvoiceHeader(
        item["invoice_no"]["S"], datetime.fromisoformat(item["invoice_date"]["S"]),
        item.get("customer_id", {}).get("S"), item["country"]["S"], int(item["line_count"]["N"]),
        int(item["total_milli"]["N"]),
    )


def _arrival_order(event_id: str) -> tuple[str, int]:
    """`f…-10` after `f…-9`: ids derived from rows sort by row number."""
    match = _TRAILING_NUMBER.match(event_id)
    return (match.group(1), int(match.group(2))) if match else (event_id, -1)


class DynamoStore:
    def __init__(self, aws: Aws, table: str) -> None:
        self.aws, self.table = aws, table

    @property
    def _ddb(self):
        return self.aws.client("dynamodb")

    # -- writes ---------------------------------------------------------------------------

    def write(self, table: EventTable) -> int:
        if table.num_rows == 0:
            return 0
        table = first_occurrences(table, set())
        lines: dict[str, list[dict]] = defaultdict(list)
        columns = {name: table[name].to_pylist() for name in
                   ("event_id", "invoice_no", "stock_code", "description", "quantity", "unit_price_milli",
                    "customer_id", "country", "source")}
        columns["invoice_date"] = timestamp_text(table["invoice_date"])
        columns["received_at"] = timestamp_text(table["received_at"])
        for values in zip(*columns.values()):
            row = dict(zip(columns, values))
            lines[row["invoice_no"]].append(row)
        headers = self._headers(lines)
        uncounted = [line for no, rows in lines.items() for line in rows
                     if line["event_id"] not in headers.get(no, {}).get("ids", set())]
        batch_write(self.aws, self.table, [{"PutRequest": {"Item": _line_item(line)}} for line in uncounted])
        touched = sorted({line["invoice_no"] for line in uncounted})
        return sum(self.aws.map(lambda no: self._count(no, lines[no], headers.get(no)), touched))

    def _headers(self, invoices) -> dict[str, dict]:
        keys = [{"PK": s(f"INVOICE#{no}"), "SK": s("HEADER")} for no in invoices]
        return {item["invoice_no"]["S"]: _header_state(item) for item in batch_get(self.aws, self.table, keys)}

    def _count(self, invoice_no: str, rows: list[dict], state: dict | None) -> int:
        """Add the rows the header has not counted yet; returns how many it counted now."""
        for _ in range(MAX_CONFLICT_RETRIES):
            state = state or {"ids": set(), "version": 0, "line_count": 0, "total_milli": 0, "gross_milli": 0,
                              "invoice_date": None, "customer_id": None, "country": None}
            new = [r for r in rows if r["event_id"] not in state["ids"]]
            if not new:
                return 0
            item = _header_item(invoice_no, state, new)
            try:
                if state["version"]:
                    self._ddb.put_item(TableName=self.table, Item=item, ConditionExpression="version = :v",
                                       ExpressionAttributeValues={":v": n(state["version"])})
                else:
                    self._ddb.put_item(TableName=self.table, Item=item,
                                       ConditionExpression="attribute_not_exists(PK)")
                return len(new)
            except Exception as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
            response = self._ddb.get_item(TableName=self.table, ConsistentRead=True,
                                          Key={"PK": s(f"INVOICE#{invoice_no}"), "SK": s("HEADER")})
            state = _header_state(response["Item"]) if "Item" in response else None
        raise RuntimeError(f"invoice {invoice_no}: header still contended after {MAX_CONFLICT_RETRIES} tries")

    # -- reads ----------------------------------------------------------------------------

    def invoice(self, invoice_no: str) -> Invoice | None:
        items = list(paginate(self._ddb.query, TableName=self.table, ConsistentRead=True,
                              KeyConditionExpression="PK = :pk",
                              ExpressionAttributeValues={":pk": s(f"INVOICE#{invoice_no}")}))
        header = next((i for i in items if i["SK"]["S"] == "HEADER"), None)
        if header is None:
            return None
        counted = set(header["ids"]["SS"])
        lines = sorted((i for i in items if i["SK"]["S"].startswith("LINE#") and i["event_id"]["S"] in counted),
                       key=lambda i: (i["received_at"]["S"], _arrival_order(i["event_id"]["S"])))
        return Invoice(_header_view(header), [
            InvoiceLineView(i["event_id"]["S"], i["stock_code"]["S"], i.get("description", {}).get("S"),
                            int(i["quantity"]["N"]), int(i["unit_price_milli"]["N"]),
                            datetime.fromisoformat(i["invoice_date"]["S"]))
            for i in lines
        ])

    def _customer_headers(self, customer_id: str) -> list[tuple[InvoiceHeader, int]]:
        """Every header of the customer with its gross sales (sale lines), which the API does not show."""
        items = paginate(self._ddb.query, TableName=self.table, IndexName=CUSTOMER_INDEX,
                         KeyConditionExpression="GSI1PK = :pk", ScanIndexForward=False,
                         ExpressionAttributeValues={":pk": s(f"CUSTOMER#{customer_id}")})
        return [(_header_view(item), int(item["gross_milli"]["N"])) for item in items]

    def customer(self, customer_id: str) -> CustomerSummary | None:
        """METRICS.md "customer summary", from the customer's invoice headers."""
        rows = self._customer_headers(customer_id)
        if not rows:
            return None
        headers = [h for h, _ in rows]
        return CustomerSummary(
            customer_id,
            min(h.invoice_date for h in headers),
            max(h.invoice_date for h in headers),
            sum(1 for h in headers if not h.cancelled),
            sum(h.total_milli for h in headers),
            sum(h.total_milli for h in headers if h.cancelled),
            sum(gross for _, gross in rows),
        )

    def customer_invoices(self, customer_id: str, limit: int, cursor: str | None = None) -> InvoicePage | None:
        headers = [h for h, _ in self._customer_headers(customer_id)]
        if not headers:
            return None
        headers.sort(key=lambda h: (h.invoice_date, h.invoice_no), reverse=True)
        if cursor:
            after_date, after_no = decode_cursor(cursor)
            after = (datetime.fromisoformat(after_date), after_no)
            headers_after = [h for h in headers if (h.invoice_date, h.invoice_no) < after]
        else:
            headers_after = headers
        page = headers_after[:limit]
        next_cursor = encode_cursor(page[-1]) if len(headers_after) > limit else None
        return InvoicePage(page, next_cursor, len(headers), sum(h.total_milli for h in headers))

    def totals(self) -> Totals:
        def bucket(b: int) -> tuple[int, int]:
            items = list(paginate(self._ddb.query, TableName=self.table, IndexName=HEADERS_INDEX,
                                  KeyConditionExpression="GSI2PK = :pk",
                                  ExpressionAttributeValues={":pk": s(f"HEADERS#{b}")}))
            return (sum(int(i["line_count"]["N"]) for i in items), sum(int(i["total_milli"]["N"]) for i in items))

        parts = self.aws.map(bucket, range(HEADER_BUCKETS))
        return Totals(sum(p[0] for p in parts), sum(p[1] for p in parts))

    def close(self) -> None:
        self.aws.close()


def _line_item(line: dict) -> dict[str, Any]:
    item = {
        "PK": s(f"INVOICE#{line['invoice_no']}"), "SK": s(f"LINE#{line['event_id']}"),
        "event_id": s(line["event_id"]), "stock_code": s(line["stock_code"]), "quantity": n(line["quantity"]),
        "unit_price_milli": n(line["unit_price_milli"]), "invoice_date": s(line["invoice_date"]),
        "country": s(line["country"]), "received_at": s(line["received_at"]), "source": s(line["source"]),
    }
    if line["description"] is not None:
        item["description"] = s(line["description"])
    if line["customer_id"] is not None:
        item["customer_id"] = s(line["customer_id"])
    return item


def _header_state(item: dict) -> dict:
    return {
        "ids": set(item["ids"]["SS"]), "version": int(item["version"]["N"]),
        "line_count": int(item["line_count"]["N"]), "total_milli": int(item["total_milli"]["N"]),
        "gross_milli": int(item["gross_milli"]["N"]), "invoice_date": item["invoice_date"]["S"],
        "customer_id": item.get("customer_id", {}).get("S"), "country": item["country"]["S"],
    }


def _header_item(invoice_no: str, state: dict, new: list[dict]) -> dict[str, Any]:
    """The header with `new` lines counted: sums, min date, and the (single) customer of its lines."""
    dates = [r["invoice_date"] for r in new] + ([state["invoice_date"]] if state["invoice_date"] else [])
    customers = [r["customer_id"] for r in new if r["customer_id"]] + (
        [state["customer_id"]] if state["customer_id"] else [])
    countries = [r["country"] for r in new] + ([state["country"]] if state["country"] else [])
    date, customer = min(dates), (min(customers) if customers else None)
    item = {
        "PK": s(f"INVOICE#{invoice_no}"), "SK": s("HEADER"), "invoice_no": s(invoice_no),
        "invoice_date": s(date), "country": s(min(countries)),
        "line_count": n(state["line_count"] + len(new)),
        "total_milli": n(state["total_milli"] + sum(r["quantity"] * r["unit_price_milli"] for r in new)),
        "gross_milli": n(state["gross_milli"] + sum(
            r["quantity"] * r["unit_price_milli"] for r in new
            if _is_sale(invoice_no, r["quantity"], r["unit_price_milli"]))),
        "ids": {"SS": sorted(state["ids"] | {r["event_id"] for r in new})},
        "version": n(state["version"] + 1),
        "GSI2PK": s(f"HEADERS#{zlib.crc32(invoice_no.encode()) % HEADER_BUCKETS}"), "GSI2SK": s(invoice_no),
    }
    if customer:
        item |= {"customer_id": s(customer), "GSI1PK": s(f"CUSTOMER#{customer}"), "GSI1SK": s(f"{date}#{invoice_no}")}
    return item

