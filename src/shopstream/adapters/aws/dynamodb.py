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
from datetime import datetime
from typing import Any


from shopstream.adapters.aws.clients import Aws, batch_get, error_code, n, paginate, s
from shopstream.adapters.aws.resources import CUSTOMER_INDEX, HEADER_BUCKETS, HEADERS_INDEX
from shopstream.domain.columnar import EventTable, first_occurrences
from shopstream.domain.invoice_docs import InvoiceDoc, invoice_docs, line_views, lines_of, merged
from shopstream.domain.line import Totals
from shopstream.domain.views import (
    CustomerSummary,
    Invoice,
    InvoiceHeader,
    InvoicePage,
    decode_cursor,
    encode_cursor,
)

MAX_CONFLICT_RETRIES = 20


def _key(invoice_no: str) -> dict:
    return {"PK": s(f"INVOICE#{invoice_no}"), "SK": s("INVOICE")}


def _header_view(item: dict) -> InvoiceHeader:
    return InvoiceHeader(
        item["invoice_no"]["S"], datetime.fromisoformat(item["invoice_date"]["S"]),
        item.get("customer_id", {}).get("S"), item["country"]["S"], int(item["line_count"]["N"]),
        int(item["total_milli"]["N"]),
    )


def _lines(item: dict | None) -> list[list]:
    return lines_of(zlib.decompress(item["lines"]["B"])) if item else []


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
        return self.write_documents(invoice_docs(first_occurrences(table, set())))

    def write_documents(self, docs: list[InvoiceDoc]) -> int:
        if not docs:
            return 0
        by_invoice = {doc.invoice_no: doc for doc in docs}
        items = {item["invoice_no"]["S"]: item
                 for item in batch_get(self.aws, self.table, [_key(no) for no in by_invoice])}
        return sum(self.aws.map(lambda no: self._add(by_invoice[no], items.get(no)), sorted(by_invoice)))

    def _add(self, doc: InvoiceDoc, item: dict | None) -> int:
        """Add the document's lines the stored invoice does not have yet; returns how many it added."""
        for _ in range(MAX_CONFLICT_RETRIES):
            if item is None:
                put, added = doc, doc.figures.line_count
            elif (merge := merged(doc, _lines(item))) is None:
                return 0
            else:
                put, added = merge
            version = int(item["version"]["N"]) if item else 0
            try:
                self._ddb.put_item(
                    TableName=self.table, Item=_invoice_item(put, version + 1),
                    ConditionExpression="version = :v" if item else "attribute_not_exists(PK)",
                    **({"ExpressionAttributeValues": {":v": n(version)}} if item else {}),
                )
                return added
            except Exception as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
            item = self._ddb.get_item(TableName=self.table, Key=_key(doc.invoice_no), ConsistentRead=True).get("Item")
        raise RuntimeError(f"invoice {doc.invoice_no}: still contended after {MAX_CONFLICT_RETRIES} tries")

    # -- reads ----------------------------------------------------------------------------

    def invoice(self, invoice_no: str) -> Invoice | None:
        item = self._ddb.get_item(TableName=self.table, Key=_key(invoice_no), ConsistentRead=True).get("Item")
        if item is None:
            return None
        return Invoice(_header_view(item), line_views(_lines(item)))

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

    def flush(self) -> None:
        pass  # every write is done when it returns

    def close(self) -> None:
        self.aws.close()


def _invoice_item(doc: InvoiceDoc, version: int) -> dict[str, Any]:
    f = doc.figures
    item = _key(doc.invoice_no) | {
        "invoice_no": s(doc.invoice_no), "invoice_date": s(f.invoice_date), "country": s(f.country),
        "line_count": n(f.line_count), "total_milli": n(f.total_milli), "gross_milli": n(f.gross_milli),
        "lines": {"B": zlib.compress(doc.lines_json.encode(), 6)},
        "version": n(version),
        "GSI2PK": s(f"HEADERS#{zlib.crc32(doc.invoice_no.encode()) % HEADER_BUCKETS}"), "GSI2SK": s(doc.invoice_no),
    }
    if f.customer_id is not None:
        item |= {"customer_id": s(f.customer_id), "GSI1PK": s(f"CUSTOMER#{f.customer_id}"),
                 "GSI1SK": s(f"{f.invoice_date}#{doc.invoice_no}")}
    return item
