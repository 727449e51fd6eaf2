"""The local operational store: SQLite, laid out for the invoice API's reads.

Three tables mirror the items of a DynamoDB single-table design (docs/data-model.md):
`lines` (one per event, keyed by event_id), `invoices` (one header per invoice,
indexed by customer and date for "newest first") and `customers` (one summary per
customer). Headers and summaries are recomputed from the lines for just the
invoices and customers a batch touched, in the batch's transaction, so a replayed
batch changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson

from shopstream.adapters.local.sqlite import PerThread, transaction
from shopstream.domain.columnar import EventTable, timestamp_text
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

SCHEMA = """
CREATE TABLE IF NOT EXISTS lines (
    event_id TEXT PRIMARY KEY,
    invoice_no TEXT NOT NULL,
    stock_code TEXT NOT NULL,
    description TEXT,
    quantity INTEGER NOT NULL,
    invoice_date TEXT NOT NULL,
    unit_price_milli INTEGER NOT NULL,
    customer_id TEXT,
    country TEXT NOT NULL,
    received_at TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lines_invoice ON lines (invoice_no);
CREATE TABLE IF NOT EXISTS invoices (
    invoice_no TEXT PRIMARY KEY,
    customer_id TEXT,
    country TEXT NOT NULL,
    invoice_date TEXT NOT NULL,
    line_count INTEGER NOT NULL,
    total_milli INTEGER NOT NULL,
    gross_milli INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS invoices_customer ON invoices (customer_id, invoice_date DESC, invoice_no DESC);
CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    first_invoice_date TEXT NOT NULL,
    last_invoice_date TEXT NOT NULL,
    invoices INTEGER NOT NULL,
    all_invoices INTEGER NOT NULL,
    net_milli INTEGER NOT NULL,
    returns_milli INTEGER NOT NULL,
    gross_milli INTEGER NOT NULL
) WITHOUT ROWID;
"""

# A sale line (METRICS.md): not a cancellation or adjustment, quantity > 0, price > 0.
_SALE = "substr(invoice_no, 1, 1) NOT IN ('C', 'A') AND quantity > 0 AND unit_price_milli > 0"

_REFRESH_INVOICES = f"""
INSERT OR REPLACE INTO invoices
SELECT invoice_no, min(customer_id), min(country), min(invoice_date), count(*),
       sum(quantity * unit_price_milli),
       sum(CASE WHEN {_SALE} THEN quantity * unit_price_milli ELSE 0 END)
FROM lines WHERE invoice_no IN (SELECT value FROM json_each(?))
GROUP BY invoice_no
"""

_REFRESH_CUSTOMERS = """
INSERT OR REPLACE INTO customers
SELECT customer_id, min(invoice_date), max(invoice_date),
       count(*) FILTER (WHERE substr(invoice_no, 1, 1) <> 'C'), count(*),
       sum(total_milli),
       sum(CASE WHEN substr(invoice_no, 1, 1) = 'C' THEN total_milli ELSE 0 END),
       sum(gross_milli)
FROM invoices WHERE customer_id IN (SELECT value FROM json_each(?))
GROUP BY customer_id
"""

_LINE_COLUMNS = ("event_id", "invoice_no", "stock_code", "description", "quantity", "invoice_date",
                 "unit_price_milli", "customer_id", "country", "received_at", "source")
_HEADER_COLUMNS = "invoice_no, invoice_date, customer_id, country, line_count, total_milli"


def _header(row: tuple) -> InvoiceHeader:
    no, date, customer, country, count, total = row
    return InvoiceHeader(no, datetime.fromisoformat(date), customer, country, count, total)


class SqliteStore:
    local_reads = True  # WAL point reads never wait for the writer

    def __init__(self, path: Path, synchronous: str = "NORMAL", busy_timeout: float = 30.0) -> None:
        self._db = PerThread(path, synchronous, setup=SCHEMA, busy_timeout=busy_timeout)

    def write(self, table: EventTable) -> int:
        if table.num_rows == 0:
            return 0
        # Whole columns to Python at once (timestamps as text, formatted by Arrow).
        columns = [
            table[name].to_pylist()
            if name not in ("invoice_date", "received_at")
            else timestamp_text(table[name])
            for name in _LINE_COLUMNS
        ]
        invoices = sorted(set(columns[1]))
        customers = sorted(set(columns[7]) - {None})
        conn = self._db.get()
        with transaction(conn, immediate=True):
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO lines VALUES (?,?,?,?,?,?,?,?,?,?,?)", zip(*columns))
            new = conn.total_changes - before
            if new:
                conn.execute(_REFRESH_INVOICES, (orjson.dumps(invoices),))
                if customers:
                    conn.execute(_REFRESH_CUSTOMERS, (orjson.dumps(customers),))
        return new

    def invoice(self, invoice_no: str) -> Invoice | None:
        conn = self._db.get()
        row = conn.execute(
            f"SELECT {_HEADER_COLUMNS} FROM invoices WHERE invoice_no = ?", (invoice_no,)
        ).fetchone()
        if row is None:
            return None
        lines = [
            InvoiceLineView(event_id, code, desc, qty, price, datetime.fromisoformat(date))
            for event_id, code, desc, qty, price, date in conn.execute(
                "SELECT event_id, stock_code, description, quantity, unit_price_milli, invoice_date "
                "FROM lines WHERE invoice_no = ? ORDER BY rowid",
                (invoice_no,),
            )
        ]
        return Invoice(_header(row), lines)

    def customer(self, customer_id: str) -> CustomerSummary | None:
        row = self._db.get().execute(
            "SELECT customer_id, first_invoice_date, last_invoice_date, invoices, net_milli, "
            "returns_milli, gross_milli FROM customers WHERE customer_id = ?",
            (customer_id,),
        ).fetchone()
        if row is None:
            return None
        cid, first, last, invoices, net, returns, gross = row
        return CustomerSummary(
            cid, datetime.fromisoformat(first), datetime.fromisoformat(last), invoices, net, returns, gross
        )

    def customer_invoices(
        self, customer_id: str, limit: int, cursor: str | None = None
    ) -> InvoicePage | None:
        conn = self._db.get()
        totals = conn.execute(
            "SELECT all_invoices, net_milli FROM customers WHERE customer_id = ?", (customer_id,)
        ).fetchone()
        if totals is None:
            return None
        if cursor:
            after_date, after_no = decode_cursor(cursor)
            rows = conn.execute(
                f"SELECT {_HEADER_COLUMNS} FROM invoices WHERE customer_id = ? "
                "AND (invoice_date, invoice_no) < (?, ?) "
                "ORDER BY invoice_date DESC, invoice_no DESC LIMIT ?",
                (customer_id, after_date, after_no, limit + 1),
            ).fetchall()
        else:
            rows = conn.execute(
                f"SELECT {_HEADER_COLUMNS} FROM invoices WHERE customer_id = ? "
                "ORDER BY invoice_date DESC, invoice_no DESC LIMIT ?",
                (customer_id, limit + 1),
            ).fetchall()
        headers = [_header(r) for r in rows[:limit]]
        next_cursor = encode_cursor(headers[-1]) if len(rows) > limit else None
        return InvoicePage(headers, next_cursor, totals[0], totals[1])

    def totals(self) -> Totals:
        lines, amount = self._db.get().execute(
            "SELECT count(*), coalesce(sum(quantity * unit_price_milli), 0) FROM lines"
        ).fetchone()
        return Totals(lines, amount)

    def close(self) -> None:
        self._db.close()
