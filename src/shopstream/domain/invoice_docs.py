"""An invoice as the operational store keeps it: its figures and its lines, one document.

Both stores keep one record per invoice (SQLite locally, a DynamoDB item on aws;
docs/data-model.md): the header figures the invoice API lists, and the lines as a JSON
array of arrays in LINE_FIELDS order, in arrival order. A line is counted iff its event
id is among the document's lines, which makes every write idempotent.

A line's last five fields (date, customer, country, received_at, source) are nearly
always its invoice's, so a line that shares all five with the line before it leaves
them out: `[event_id, stock_code, description, quantity, unit_price_milli]`. That makes
documents ~2.5x smaller (~150 -> ~60 bytes a line), which is what a bulk load's store
writes and a lookup reads; `lines_of` puts them back. Documents written before this
have every line whole, and read back the same.

`invoice_docs` builds a batch's documents with Arrow kernels (no Python object per
line: for a bulk load that is most of the store's cost); `merged` adds a batch's lines
to a stored document, in Python, for the (few) invoices that span batches.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from shopstream.domain.columnar import EventTable, flat, framed_texts, json_value_texts, timestamp_texts
from shopstream.domain.views import InvoiceLineView

# What a document keeps of each line, in this order (arrays, not objects: half the size).
LINE_FIELDS = ("event_id", "stock_code", "description", "quantity", "unit_price_milli", "invoice_date",
               "customer_id", "country", "received_at", "source")
_EVENT_ID, _STOCK_CODE, _DESCRIPTION, _QUANTITY, _PRICE, _DATE, _CUSTOMER, _COUNTRY = range(8)
_SHARED = _DATE  # fields from here on may be left to the line before


class InvoiceFigures(NamedTuple):
    """The header, derived from all of an invoice's lines (METRICS.md "invoice date"), in
    the store's column order. (Tuples, not frozen dataclasses: a bulk load builds one per
    invoice, and a frozen dataclass's __init__ took twice as long.)"""

    customer_id: str | None  # the smallest non-null customer on its lines (there is one, or none)
    country: str  # the smallest country on its lines
    invoice_date: str  # min over its lines, `YYYY-MM-DD HH:MM:SS`
    line_count: int
    total_milli: int
    gross_milli: int  # sale lines only


class InvoiceDoc(NamedTuple):
    invoice_no: str
    lines_json: str  # JSON array of LINE_FIELDS arrays
    figures: InvoiceFigures

    def lines(self) -> list[list]:
        return lines_of(self.lines_json)


def lines_of(document: str | bytes) -> list[list]:
    """A stored document's lines, each whole."""
    lines = orjson.loads(document)
    for i in range(1, len(lines)):
        if len(lines[i]) == _SHARED:
            lines[i] = lines[i] + lines[i - 1][_SHARED:]
    return lines


def document_of(lines: list[list]) -> str:
    """Whole lines as a stored document: a line that shares its last fields with the line
    before leaves them out (what invoice_docs builds with Arrow, too)."""
    return orjson.dumps([line if i == 0 or line[_SHARED:] != lines[i - 1][_SHARED:] else line[:_SHARED]
                         for i, line in enumerate(lines)]).decode()


def is_sale(invoice_no: str, quantity: int, unit_price_milli: int) -> bool:
    """METRICS.md: not a cancellation or adjustment, quantity > 0, unit price > 0."""
    return invoice_no[:1] not in ("C", "A") and quantity > 0 and unit_price_milli > 0


def figures_of(invoice_no: str, lines: list[list]) -> InvoiceFigures:
    totals = [line[_QUANTITY] * line[_PRICE] for line in lines]
    customers = [line[_CUSTOMER] for line in lines if line[_CUSTOMER] is not None]
    return InvoiceFigures(
        min(customers) if customers else None,
        min(line[_COUNTRY] for line in lines),
        min(line[_DATE] for line in lines),
        len(lines),
        sum(totals),
        sum(t for t, line in zip(totals, lines) if is_sale(invoice_no, line[_QUANTITY], line[_PRICE])),
    )


def merged(doc: InvoiceDoc, stored: list[list]) -> tuple[InvoiceDoc, int] | None:
    """The stored lines plus the document's lines they lack, and how many those are;
    None when the stored lines hold every one (a replayed batch)."""
    counted = {line[_EVENT_ID] for line in stored}
    new = [line for line in doc.lines() if line[_EVENT_ID] not in counted]
    if not new:
        return None
    lines = stored + new
    return InvoiceDoc(doc.invoice_no, document_of(lines), figures_of(doc.invoice_no, lines)), len(new)


def line_views(lines: list[list]) -> list[InvoiceLineView]:
    return [
        InvoiceLineView(line[_EVENT_ID], line[_STOCK_CODE], line[_DESCRIPTION], line[_QUANTITY], line[_PRICE],
                        datetime.fromisoformat(line[_DATE]))
        for line in lines
    ]


def invoice_docs(table: EventTable) -> list[InvoiceDoc]:
    """One document per invoice of `table` (event ids distinct), its lines in table order.

    The JSON is what document_of makes of the same lists (tests/unit check it), so
    documents built here and merged ones read back alike."""
    if table.num_rows == 0:
        return []
    table = table.combine_chunks()
    invoices = pc.dictionary_encode(table["invoice_no"].chunk(0))  # codes in order of first appearance
    codes = invoices.indices
    # each invoice's lines together, in table order (a stable sort of small integers)
    order = pc.sort_indices(codes)
    grouped = table.select(LINE_FIELDS).take(order)
    figures = _figures(table, codes)  # one row per code, in code order: the order of the groups
    offsets = pa.concat_arrays([pa.array([0], pa.int64()), flat(pc.cumulative_sum(figures["line_count"]))])
    shared = _shares_with_previous(grouped, codes.take(order))
    lines = flat(pc.binary_join_element_wise(*_line_json_parts(grouped, shared), ""))
    docs = pc.binary_join_element_wise("[", pc.binary_join(pa.LargeListArray.from_arrays(offsets, lines), ","),
                                       "]", "")
    columns = [figures[name].to_pylist() for name in InvoiceFigures._fields]
    return [InvoiceDoc(no, doc, InvoiceFigures._make(f))
            for no, doc, f in zip(invoices.dictionary.to_pylist(), docs.to_pylist(), zip(*columns))]


def _line_json_parts(t: pa.Table, shared: pa.Array) -> list:
    """The pieces of each line's JSON array, to join element-wise (event ids need no
    escaping: letters, digits and . _ : - only). The last fields' text is built only for
    the lines that do not share them (about one per invoice)."""
    own = pc.invert(shared)
    tail = t.filter(own)
    tails = pc.binary_join_element_wise(
        ',"', timestamp_texts(tail["invoice_date"]), '",', _json_text(tail["customer_id"]), ",",
        _json_text(tail["country"]), ',"', timestamp_texts(tail["received_at"]), '",', _json_text(tail["source"]), "")
    tails = pc.replace_with_mask(pa.repeat(pa.scalar("", pa.string()), t.num_rows), own, tails)
    # separators go with a column's distinct texts where they can: a join costs by the part
    return ['["', t["event_id"], _json_text(t["stock_code"], '",', ","), _json_text(t["description"], after=","),
            t["quantity"].cast(pa.string()), ",", t["unit_price_milli"].cast(pa.string()), tails, "]"]


def _shares_with_previous(t: pa.Table, codes: pa.Array) -> pa.Array:
    """Whether each line's last fields (as written: dates to the second) are the line
    before's, in the same invoice (`codes`: each line's invoice; lines grouped by it)."""
    n = t.num_rows
    if n < 2:
        return pa.repeat(False, n)
    same = pc.equal(codes[1:], codes[:-1])
    for name in LINE_FIELDS[_SHARED:]:
        column = flat(t[name])
        if pa.types.is_timestamp(column.type):
            column = pc.floor_temporal(column, unit="second")
        before, after = column[:-1], column[1:]
        equal = pc.equal(after, before)
        if column.null_count:  # null = null here
            equal = pc.if_else(pc.and_(pc.is_null(after), pc.is_null(before)), True, pc.fill_null(equal, False))
        same = pc.and_(same, equal)
    return pa.concat_arrays([pa.array([False]), same])


def _json_text(column: pa.ChunkedArray, before: str = "", after: str = "") -> pa.Array:
    """Each value's JSON text (null: `null`), between `before` and `after`."""
    encoded = pc.dictionary_encode(flat(column))
    return framed_texts(json_value_texts(encoded.dictionary), encoded.indices, before, after)


def _figures(t: pa.Table, codes: pa.Array) -> pa.Table:
    """InvoiceFigures' columns, one row per invoice code, in code order."""
    no, quantity, price = t["invoice_no"], t["quantity"], t["unit_price_milli"]
    total = pc.multiply_checked(quantity, price)
    sale = pc.and_(pc.invert(pc.or_(pc.starts_with(no, "C"), pc.starts_with(no, "A"))),
                   pc.and_(pc.greater(quantity, 0), pc.greater(price, 0)))
    per_invoice = pa.table({
        "code": codes, "customer": t["customer_id"], "country": t["country"],
        "date": t["invoice_date"], "total": total, "gross": pc.if_else(sale, total, 0),
    }).group_by("code", use_threads=False).aggregate(
        [("customer", "min"), ("country", "min"), ("date", "min"), ("total", "count"), ("total", "sum"),
         ("gross", "sum")]).sort_by("code")
    # the earliest timestamp, as text: what the smallest text would be (~3x cheaper per line)
    per_invoice = per_invoice.set_column(per_invoice.schema.get_field_index("date_min"), "date_min",
                                         timestamp_texts(per_invoice["date_min"]))
    names = ["customer_min", "country_min", "date_min", "total_count", "total_sum", "gross_sum"]
    return per_invoice.select(names).rename_columns(list(InvoiceFigures._fields))
