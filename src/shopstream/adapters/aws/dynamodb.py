"""The operational store on DynamoDB: one table, shaped by the invoice API (docs/data-model.md).

    invoice   PK INVOICE#<no>  SK INVOICE   GSI1 CUSTOMER#<id> / <date>#<no>   GSI2 HEADERS#<b> / <no>

One item per invoice holds its header (date, customer, country, line count, totals)
and its lines (a zlib-compressed JSON array; ~20 bytes a line, so even a 10,000-line
invoice stays far below DynamoDB's 400 KB item limit). The lines are also what makes
writes exact: a line is counted iff its event id is among the item's lines. A write
reads the touched invoices (BatchGetItem), adds the lines each does not have, and puts
each back with a condition on its version (optimistic locking; a conflict re-reads and
retries). No transactions, no queries on the write path: one read and at most one
write per invoice per batch, whatever the number of lines.

Reads: an invoice is one GetItem. A customer's summary and invoice pages come from one
Query of GSI1 (header attributes only; a customer's invoices fit in a page or two).
Totals sum the headers through GSI2, spread over a few partitions.
Idempotency is per invoice: the stream's ledger already lets each event id in once, so
an event id never belongs to two invoices.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from datetime import datetime
from typing import Any

import orjson

from shopstream.adapters.aws.clients import Aws, batch_get, error_code, n, paginate, s
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

MAX_CONFLICT_RETRIES = 20
# What a line keeps, in this order, in the item's `lines` (JSON arrays, not objects: half the size).
LINE_FIELDS = ("event_id", "stock_code", "description", "quantity", "unit_price_milli", "invoice_date",
               "customer_id", "country", "received_at", "source")


def _key(invoice_no: str) -> dict:
    return {"PK": s(f"INVOICE#{invoice_no}"), "SK": s("INVOICE")}


def _is_sale(invoice_no: str, quantity: int, price: int) -> bool:
    return invoice_no[:1] not in ("C", "A") and quantity > 0 and price > 0


def _header_view(item: dict) -> InvoiceHeader:
    return InvoiceHeader(
        item["invoice_no"]["S"], datetime.fromisoformat(item["invoice_date"]["S"]),
        item.get("customer_id", {}).get("S"), item["country"]["S"], int(item["line_count"]["N"]),
        int(item["total_milli"]["N"]),
    )


def _lines(item: dict | None) -> list[list]:
    return orjson.loads(zlib.decompress(item["lines"]["B"])) if item else []


class DynamoStore:
    local_reads = False  # every read is a network round trip: the invoice API reads on a worker thread

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
        columns = [table[name].to_pylist() if name not in ("invoice_date", "received_at")
                   else timestamp_text(table[name]) for name in LINE_FIELDS]
        by_invoice: dict[str, list[list]] = defaultdict(list)
        for invoice_no, line in zip(table["invoice_no"].to_pylist(), zip(*columns)):
            by_invoice[invoice_no].append(list(line))
        items = {item["invoice_no"]["S"]: item
                 for item in batch_get(self.aws, self.table, [_key(no) for no in by_invoice])}
        return sum(self.aws.map(lambda no: self._add(no, by_invoice[no], items.get(no)), sorted(by_invoice)))

    def _add(self, invoice_no: str, lines: list[list], item: dict | None) -> int:
        """Add the lines the invoice does not have yet; returns how many it added."""
        for _ in range(MAX_CONFLICT_RETRIES):
            have = _lines(item)
            counted = {line[0] for line in have}
            new = [line for line in lines if line[0] not in counted]
            if not new:
                return 0
            version = int(item["version"]["N"]) if item else 0
            try:
                self._ddb.put_item(
                    TableName=self.table, Item=_invoice_item(invoice_no, have + new, version + 1),
                    ConditionExpression="version = :v" if item else "attribute_not_exists(PK)",
                    **({"ExpressionAttributeValues": {":v": n(version)}} if item else {}),
                )
                return len(new)
            except Exception as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
            item = self._ddb.get_item(TableName=self.table, Key=_key(invoice_no), ConsistentRead=True).get("Item")
        raise RuntimeError(f"invoice {invoice_no}: still contended after {MAX_CONFLICT_RETRIES} tries")

    # -- reads ----------------------------------------------------------------------------

    def invoice(self, invoice_no: str) -> Invoice | None:
        item = self._ddb.get_item(TableName=self.table, Key=_key(invoice_no), ConsistentRead=True).get("Item")
        if item is None:
            return None
        fields = {name: i for i, name in enumerate(LINE_FIELDS)}
        return Invoice(_header_view(item), [
            InvoiceLineView(line[fields["event_id"]], line[fields["stock_code"]], line[fields["description"]],
                            line[fields["quantity"]], line[fields["unit_price_milli"]],
                            datetime.fromisoformat(line[fields["invoice_date"]]))
            for line in _lines(item)
        ])

    def _customer_headers(self, customer_id: str) -> list[tuple[InvoiceHeader, int]]:
        """Every invoice header of the customer, with its gross sales (sale lines only)."""
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
        after = headers
        if cursor:
            date, no = decode_cursor(cursor)
            after = [h for h in headers if (h.invoice_date, h.invoice_no) < (datetime.fromisoformat(date), no)]
        page = after[:limit]
        next_cursor = encode_cursor(page[-1]) if len(after) > limit else None
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


def _invoice_item(invoice_no: str, lines: list[list], version: int) -> dict[str, Any]:
    """Header fields derived from all the lines: sums, min date, the (single) customer of its lines."""
    f = {name: i for i, name in enumerate(LINE_FIELDS)}
    totals = [line[f["quantity"]] * line[f["unit_price_milli"]] for line in lines]
    date = min(line[f["invoice_date"]] for line in lines)
    customers = [line[f["customer_id"]] for line in lines if line[f["customer_id"]]]
    item = _key(invoice_no) | {
        "invoice_no": s(invoice_no), "invoice_date": s(date),
        "country": s(min(line[f["country"]] for line in lines)),
        "line_count": n(len(lines)), "total_milli": n(sum(totals)),
        "gross_milli": n(sum(t for t, line in zip(totals, lines)
                             if _is_sale(invoice_no, line[f["quantity"]], line[f["unit_price_milli"]]))),
        "lines": {"B": zlib.compress(orjson.dumps(lines), 6)},
        "version": n(version),
        "GSI2PK": s(f"HEADERS#{zlib.crc32(invoice_no.encode()) % HEADER_BUCKETS}"), "GSI2SK": s(invoice_no),
    }
    if customers:
        customer = min(customers)
        item |= {"customer_id": s(customer), "GSI1PK": s(f"CUSTOMER#{customer}"), "GSI1SK": s(f"{date}#{invoice_no}")}
    return item
