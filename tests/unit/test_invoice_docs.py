"""Invoice documents (what both stores keep per invoice): built from a batch with Arrow,
they must read back exactly as the same lines serialised by orjson, with exact figures."""

from __future__ import annotations

from datetime import datetime

import orjson
import pyarrow as pa

from shopstream.domain.columnar import EVENT_SCHEMA
from shopstream.domain.invoice_docs import (
    InvoiceFigures,
    document_of,
    figures_of,
    invoice_docs,
    line_views,
    lines_of,
    merged,
)

AT = datetime(2026, 12, 2, 9, 30, 15, 123456)


def batch(rows: list[tuple]) -> pa.Table:
    """(event_id, invoice_no, stock_code, description, quantity, invoice_date, price_milli, customer, country)"""
    columns = list(zip(*rows))
    return pa.Table.from_arrays([
        pa.array(columns[0]), pa.array([AT] * len(rows), pa.timestamp("us")), pa.array(["bulk:\"x\".csv"] * len(rows)),
        pa.array(columns[1]), pa.array(columns[2]), pa.array(columns[3], pa.string()), pa.array(columns[4], pa.int64()),
        pa.array(columns[5], pa.timestamp("us")), pa.array(columns[6], pa.int64()), pa.array(columns[7], pa.string()),
        pa.array(columns[8]), pa.array(["{}"] * len(rows)),
    ], schema=EVENT_SCHEMA)


D1, D2 = datetime(2010, 12, 1, 8, 26), datetime(2010, 12, 1, 8, 27)
ROWS = [
    ("e-1", "536365", "85123A", 'quote " back\\slash £ ü 😀', 6, D2, 2550, "17850", "United Kingdom"),
    ("e-2", "C536379", "D", "Discount", -1, D1, 27500, "17850", "United Kingdom"),
    ("e-3", "536365", "POST", None, 1, D1, 18000, None, "United Kingdom"),
    ("e-4", "536367", "84879", "", 3, D1, 0, None, "France"),
    ("e-5", "536365", "71053", "WHITE METAL LANTERN", -2, D2, 3390, "17850", "EIRE"),
]


def test_documents_are_the_lines_in_arrival_order_as_document_of_writes_them():
    docs = {doc.invoice_no: doc for doc in invoice_docs(batch(ROWS))}
    assert list(docs) == ["536365", "C536379", "536367"]  # order of first appearance
    expected = [["e-1", "85123A", 'quote " back\\slash £ ü 😀', 6, 2550, "2010-12-01 08:27:00", "17850",
                 "United Kingdom", "2026-12-02 09:30:15", 'bulk:"x".csv'],
                ["e-3", "POST", None, 1, 18000, "2010-12-01 08:26:00", None, "United Kingdom", "2026-12-02 09:30:15",
                 'bulk:"x".csv'],
                ["e-5", "71053", "WHITE METAL LANTERN", -2, 3390, "2010-12-01 08:27:00", "17850", "EIRE",
                 "2026-12-02 09:30:15", 'bulk:"x".csv']]
    assert docs["536365"].lines_json == document_of(expected) == orjson.dumps(expected).decode()  # none shared
    assert docs["536365"].lines() == expected


def test_a_line_leaves_out_the_last_fields_it_shares_with_the_line_before():
    rows = [ROWS[4], ("e-6", "536365", "22", "x", 1, D2, 100, "17850", "EIRE"), ROWS[0],
            ("e-7", "536365", "23", None, 2, D2, 5, "17850", "United Kingdom"),
            ("e-8", "536999", "24", "y", 1, D2, 5, "17850", "United Kingdom"),  # another invoice: whole
            ("e-9", "536365", "25", "z", 1, D2, 5, None, "United Kingdom"), ("e-10", "536365", "26", "", 1, D2, 5,
                                                                               None, "United Kingdom")]
    docs = {doc.invoice_no: doc for doc in invoice_docs(batch(rows))}
    tail = ["2010-12-01 08:27:00", "17850", "EIRE", "2026-12-02 09:30:15", 'bulk:"x".csv']
    written = orjson.loads(docs["536365"].lines_json)
    assert written[:2] == [["e-5", "71053", "WHITE METAL LANTERN", -2, 3390, *tail], ["e-6", "22", "x", 1, 100]]
    assert [len(line) for line in written] == [10, 5, 10, 5, 10, 5]  # a null customer shared too
    whole = docs["536365"].lines()
    assert whole[1] == ["e-6", "22", "x", 1, 100, *tail] and all(len(line) == 10 for line in whole)
    assert docs["536365"].lines_json == document_of(whole)
    assert lines_of(document_of(whole)) == whole
    assert lines_of(orjson.dumps(whole)) == whole  # documents from before: every line whole


def test_figures_are_exact_and_match_the_ones_computed_from_the_lines():
    docs = invoice_docs(batch(ROWS))
    assert [doc.figures for doc in docs] == [
        # customer: the one on its lines; country and date: the smallest; gross: sale lines only
        InvoiceFigures("17850", "EIRE", "2010-12-01 08:26:00", 3, 15300 + 18000 - 6780, 15300 + 18000),
        InvoiceFigures("17850", "United Kingdom", "2010-12-01 08:26:00", 1, -27500, 0),  # a cancellation
        InvoiceFigures(None, "France", "2010-12-01 08:26:00", 1, 0, 0),  # a guest; price 0 is no sale
    ]
    assert all(figures_of(doc.invoice_no, doc.lines()) == doc.figures for doc in docs)


def test_merging_adds_only_the_lines_the_stored_document_lacks():
    stored = invoice_docs(batch(ROWS[:1]))[0].lines()
    doc = invoice_docs(batch(ROWS))[0]
    grown, added = merged(doc, stored)
    assert added == 2 and [line[0] for line in grown.lines()] == ["e-1", "e-3", "e-5"]
    assert grown.figures == doc.figures
    assert merged(doc, grown.lines()) is None  # a replay adds nothing


def test_line_views_keep_exact_money_and_dates():
    view = line_views(invoice_docs(batch(ROWS))[0].lines())[2]
    assert view.as_dict() == {"event_id": "e-5", "stock_code": "71053", "description": "WHITE METAL LANTERN",
                              "quantity": -2, "unit_price": "3.39", "line_total": "-6.78",
                              "invoice_date": "2010-12-01 08:27:00"}
