"""Operational store contract: the invoice API's access patterns, exact and idempotent."""

from datetime import datetime

import pytest

from shopstream.domain.invoice_docs import invoice_docs
from shopstream.domain.line import Totals
from shopstream.ports import InvalidCursor
from tests.contract.conftest import FIXTURE_LINES, FIXTURE_MILLI, ROWS, make_table


def test_lines_and_money(store):
    assert store.write(make_table()) == FIXTURE_LINES
    assert store.totals() == Totals(FIXTURE_LINES, FIXTURE_MILLI)


def test_writing_again_changes_nothing(store):
    table = make_table()
    store.write(table)
    assert store.write(table) == 0
    assert store.write(table.slice(1, 2)) == 0
    assert store.totals() == Totals(FIXTURE_LINES, FIXTURE_MILLI)
    assert store.customer("17850").net_spend_milli == 15_300 + 20_340 + 11_100 + 1 - 27_500


def test_invoice_with_its_lines(store):
    store.write(make_table())
    invoice = store.invoice("536366")
    assert invoice.header.invoice_date == datetime(2010, 12, 1, 8, 28)  # min over its lines
    assert invoice.header.line_count == 2 and invoice.header.total_milli == 11_101
    assert invoice.header.customer_id == "17850" and not invoice.header.cancelled
    assert [(x.stock_code, x.quantity, x.unit_price_milli) for x in invoice.lines] == [
        ("22633", 6, 1850),
        ("22632", 1, 1),
    ]
    assert invoice.as_dict()["total"] == "11.101"
    assert store.invoice("C536379").header.cancelled
    assert store.invoice("999999") is None


def test_an_invoice_growing_across_batches(store):
    store.write(make_table(ROWS[:1]))
    store.write(make_table(ROWS[1:2], prefix="later"))
    header = store.invoice("536365").header
    assert (header.line_count, header.total_milli) == (2, 35_640)


def test_documents_built_ahead_are_written_like_their_lines(store):
    table = make_table()
    assert store.write_documents(invoice_docs(table.slice(0, 3))) == 3  # as a bulk load writes
    assert store.write_documents(invoice_docs(table)) == FIXTURE_LINES - 3
    assert store.write(table) == 0 and store.write_documents([]) == 0
    assert store.totals() == Totals(FIXTURE_LINES, FIXTURE_MILLI)
    assert [line.event_id for line in store.invoice("536366").lines] == ["e-2", "e-3"]


def test_flush_after_a_run_of_writes_keeps_every_line(store):
    """What a bulk load calls after its last write; writing on afterwards still works."""
    table = make_table()
    store.write(table.slice(0, 3))
    store.flush()
    assert store.totals().lines == 3
    store.write(table)
    store.flush()
    assert store.totals() == Totals(FIXTURE_LINES, FIXTURE_MILLI)
    assert [line.event_id for line in store.invoice("536366").lines] == ["e-2", "e-3"]


def test_customer_summary(store):
    store.write(make_table())
    summary = store.customer("17850")
    assert summary.first_invoice_date == datetime(2010, 12, 1, 8, 26)
    assert summary.last_invoice_date == datetime(2010, 12, 1, 9, 41)
    assert summary.invoices == 2  # non-cancellation invoices
    assert summary.net_spend_milli == 19_241  # every line, cancellation included
    assert summary.returns_milli == -27_500
    assert summary.gross_sales_milli == 46_741
    assert summary.average_order_value_milli == 23_371  # 46.741 / 2, half up
    assert store.customer("nobody") is None


def test_customer_summaries_add_up_across_batches(store):
    """Line by line (an invoice growing across batches, a guest's invoice gaining a customer,
    a replay in between), the summaries end as one batch of everything makes them."""
    rows = ROWS + [
        ("536367", "22086", "PAPER CHAIN KIT", 1, "2010-12-01 07:00:00", "2.55", "12583", "France"),  # earlier, and a customer
        ("536401", "22086", "PAPER CHAIN KIT", 2, "2010-12-04 12:00:00", "2.55", "12583", "France"),
    ]
    table = make_table(rows)
    for i in range(table.num_rows):
        store.write(table.slice(i, 1))
        if i == 3:
            store.write(table.slice(0, 4))  # a replay
    summaries = {c: store.customer(c) for c in ("17850", "12583")}
    assert summaries["17850"].invoices == 2 and summaries["17850"].returns_milli == -27_500
    assert summaries["12583"].invoices == 3  # 536400, 536401 and 536367, which it now heads
    assert summaries["12583"].first_invoice_date == datetime(2010, 12, 1, 7, 0)
    assert summaries["12583"].last_invoice_date == datetime(2010, 12, 4, 12, 0)
    assert summaries["12583"].net_spend_milli == 12_500 + 6_300 + 18_000 + 2_550 + 5_100
    assert summaries["12583"].gross_sales_milli == 12_500 + 6_300 + 18_000 + 2_550 + 5_100


def test_customer_invoices_newest_first_in_pages(store):
    store.write(make_table())
    first = store.customer_invoices("17850", limit=2)
    assert [h.invoice_no for h in first.invoices] == ["C536379", "536366"]
    assert (first.total_invoices, first.net_spend_milli) == (3, 19_241)
    second = store.customer_invoices("17850", limit=2, cursor=first.next_cursor)
    assert [h.invoice_no for h in second.invoices] == ["536365"]
    assert second.next_cursor is None
    assert store.customer_invoices("nobody", limit=2) is None
    with pytest.raises(InvalidCursor):
        store.customer_invoices("17850", limit=2, cursor="not-a-cursor")


def test_guests_have_no_customer_record(store):
    store.write(make_table())
    assert store.invoice("536367").header.customer_id is None
    assert store.customer_invoices("None", limit=5) is None


def test_a_store_of_one_row_per_line_is_folded_into_invoice_documents(tmp_path):
    """Stores written before invoice documents (a `lines` table) open with every line."""
    import sqlite3

    from shopstream.adapters.local.store import SqliteStore

    path = tmp_path / "store.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE lines (event_id TEXT PRIMARY KEY, invoice_no TEXT NOT NULL, stock_code TEXT NOT NULL,
            description TEXT, quantity INTEGER NOT NULL, invoice_date TEXT NOT NULL,
            unit_price_milli INTEGER NOT NULL, customer_id TEXT, country TEXT NOT NULL,
            received_at TEXT NOT NULL, source TEXT NOT NULL);
        INSERT INTO lines VALUES
            ('e-0', '536365', '85123A', 'WHITE HANGING HEART T-LIGHT HOLDER', 6, '2010-12-01 08:26:00', 2550,
             '17850', 'United Kingdom', '2026-11-25 10:00:00', 'test'),
            ('e-2', 'C536379', 'D', NULL, -1, '2010-12-01 09:41:00', 27500, '17850', 'United Kingdom',
             '2026-11-25 10:00:00', 'test'),
            ('e-1', '536365', '71053', 'WHITE METAL LANTERN', 6, '2010-12-01 08:26:00', 3390, '17850',
             'United Kingdom', '2026-11-25 10:00:00', 'test');
    """)
    old.commit()
    old.close()
    store = SqliteStore(path)
    assert store.totals() == Totals(3, 15_300 + 20_340 - 27_500)
    assert [line.event_id for line in store.invoice("536365").lines] == ["e-0", "e-1"]
    assert store.customer("17850").returns_milli == -27_500
    assert store.write(make_table(ROWS[:2])) == 0  # the same lines under the fixture's ids "e-0", "e-1"
    store.close()
    tables = {name for (name,) in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "lines" not in tables
