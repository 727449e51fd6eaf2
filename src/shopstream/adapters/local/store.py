"""The local operational store: SQLite, laid out for the invoice API's reads.

The same model as the DynamoDB store (docs/data-model.md): one record per invoice,
its figures in `invoices` (indexed by customer and date for "newest first") and its
lines as one JSON document in `invoice_lines` (domain/invoice_docs.py), plus one
summary per customer in `customers`, recomputed from the headers of the customers a
batch touched, in the batch's transaction. A line is counted iff its event id is in
its invoice's document, so a replayed batch changes nothing. One row per invoice, not
per line: a bulk load writes ~20x fewer rows, and an invoice is read in one lookup.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from shopstream.adapters.local.sqlite import PerThread, transaction
from shopstream.domain.columnar import EVENT_SCHEMA, EventTable, first_occurrences
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

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS invoice_lines (
    invoice_no TEXT PRIMARY KEY,
    lines TEXT NOT NULL  -- JSON: [[event_id, stock_code, description, quantity, unit_price_milli, ...], ...]
);
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

_ADD_TO_CUSTOMERS = """
INSERT INTO customers (customer_id, first_invoice_date, last_invoice_date, invoices, all_invoices, net_milli,
                       returns_milli, gross_milli)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (customer_id) DO UPDATE SET
    first_invoice_date = min(first_invoice_date, excluded.first_invoice_date),
    last_invoice_date = max(last_invoice_date, excluded.last_invoice_date),
    invoices = invoices + excluded.invoices,
    all_invoices = all_invoices + excluded.all_invoices,
    net_milli = net_milli + excluded.net_milli,
    returns_milli = returns_milli + excluded.returns_milli,
    gross_milli = gross_milli + excluded.gross_milli
"""

_HEADER_COLUMNS = "invoice_no, invoice_date, customer_id, country, line_count, total_milli"


def _header(row: tuple) -> InvoiceHeader:
    no, date, customer, country, count, total = row
    return InvoiceHeader(no, datetime.fromisoformat(date), customer, country, count, total)


# SQLite's largest page: a bulk load's documents (~60 bytes a line, up to ~60 KB an
# invoice) go into ~16x fewer B-tree pages than at the default 4 KB: the reference file's
# store writes 0.86 -> 0.5 CPU-s (bench/bulk_load.py --breakdown). A store created before
# keeps its page size (SQLite changes it only by VACUUM).
PAGE_SIZE = 65_536


class SqliteStore:
    local_reads = True  # WAL point reads never wait for the writer

    def __init__(self, path: Path, synchronous: str = "NORMAL", busy_timeout: float = 30.0,
                 cache_mb: int = 64) -> None:
        self._db = PerThread(path, synchronous, setup=SCHEMA, busy_timeout=busy_timeout, cache_mb=cache_mb,
                             page_size=PAGE_SIZE)
        _fold_line_rows(self._db.get())

    def write(self, table: EventTable) -> int:
        if table.num_rows == 0:
            return 0
        return self.write_documents(invoice_docs(first_occurrences(table, set())))  # outside the transaction

    def write_documents(self, docs: list[InvoiceDoc]) -> int:
        if not docs:
            return 0
        conn = self._db.get()
        with transaction(conn, immediate=True):
            return self._put(conn, docs)

    @staticmethod
    def _put(conn: sqlite3.Connection, docs: list[InvoiceDoc]) -> int:
        """Add the documents' lines to the stored invoices; returns how many lines were new."""
        # the stored documents of these invoices, and whom each belongs to now
        found = conn.execute(
            "SELECT invoice_no, lines, customer_id FROM invoice_lines LEFT JOIN invoices USING (invoice_no) "
            "WHERE invoice_no IN (SELECT value FROM json_each(?))",
            (orjson.dumps([doc.invoice_no for doc in docs]),)).fetchall()
        stored = {no: lines for no, lines, _ in found}
        owner = {no: customer for no, _, customer in found}
        new, changed = 0, []
        for doc in docs:
            if doc.invoice_no in stored:  # an invoice spanning batches, or a replay
                merge = merged(doc, lines_of(stored[doc.invoice_no]))
                if merge is None:
                    continue
                doc, added = merge
            else:
                added = doc.figures.line_count
            new += added
            changed.append(doc)
        if not changed:
            return 0
        conn.executemany("INSERT OR REPLACE INTO invoice_lines (invoice_no, lines) VALUES (?, ?)",
                         [(doc.invoice_no, doc.lines_json) for doc in changed])
        conn.executemany(
            "INSERT OR REPLACE INTO invoices (invoice_no, customer_id, country, invoice_date, line_count, "
            "total_milli, gross_milli) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(doc.invoice_no, *doc.figures) for doc in changed])
        # an invoice that grew may have changed hands (its customer is the smallest on its lines)
        recount = {c for doc in changed if doc.invoice_no in stored
                   for c in (owner[doc.invoice_no], doc.figures.customer_id) if c is not None}
        SqliteStore._count_customers(conn, changed, recount)
        return new

    @staticmethod
    def _count_customers(conn: sqlite3.Connection, changed: list[InvoiceDoc], recount: set[str]) -> None:
        """Bring the summaries of the customers of `changed` up to date: a new invoice adds to
        its customer's figures; the customers in `recount` (an invoice of theirs grew, or
        changed hands) are recomputed from their invoices. Recomputing every touched customer
        read all their invoices per batch: at 10x the reference file, most of the store's time."""
        added: dict[str, list] = {}
        for doc in changed:
            f = doc.figures
            if f.customer_id is None or f.customer_id in recount:
                continue
            cancelled = doc.invoice_no.startswith("C")
            row = added.get(f.customer_id)
            if row is None:
                row = added[f.customer_id] = [f.customer_id, f.invoice_date, f.invoice_date, 0, 0, 0, 0, 0]
            row[1], row[2] = min(row[1], f.invoice_date), max(row[2], f.invoice_date)
            row[3] += not cancelled
            row[4] += 1
            row[5] += f.total_milli
            row[6] += f.total_milli if cancelled else 0
            row[7] += f.gross_milli
        if added:
            conn.executemany(_ADD_TO_CUSTOMERS, list(added.values()))
        if recount:
            conn.execute(_REFRESH_CUSTOMERS, (orjson.dumps(sorted(recount)),))

    def invoice(self, invoice_no: str) -> Invoice | None:
        row = self._db.get().execute(
            f"SELECT {_HEADER_COLUMNS}, lines FROM invoices JOIN invoice_lines USING (invoice_no) "
            "WHERE invoice_no = ?", (invoice_no,)).fetchone()
        if row is None:
            return None
        return Invoice(_header(row[:6]), line_views(lines_of(row[6])))

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
            "SELECT coalesce(sum(line_count), 0), coalesce(sum(total_milli), 0) FROM invoices"
        ).fetchone()
        return Totals(lines, amount)

    def flush(self) -> None:
        # a bulk load's ~50 MB of WAL: ~0.3 s to copy, otherwise paid by close() after the load
        self._db.get().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        self._db.close()


_OLD_LINE_COLUMNS = ("event_id", "invoice_no", "stock_code", "description", "quantity", "invoice_date",
                     "unit_price_milli", "customer_id", "country", "received_at", "source")


def _fold_line_rows(conn: sqlite3.Connection) -> None:
    """Stores written before invoice documents kept a `lines` table, one row per line:
    fold it into documents, once (whoever opens the store first)."""
    has_rows = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lines'"
    if conn.execute(has_rows).fetchone() is None:
        return
    with transaction(conn, immediate=True):
        if conn.execute(has_rows).fetchone() is None:  # another process folded it meanwhile
            return
        rows = conn.execute(f"SELECT {', '.join(_OLD_LINE_COLUMNS)} FROM lines ORDER BY rowid")
        while chunk := rows.fetchmany(50_000):
            columns = dict(zip(_OLD_LINE_COLUMNS, zip(*chunk)))
            table = pa.table({
                name: pc.strptime(pa.array(values, pa.string()), "%Y-%m-%d %H:%M:%S", "us")
                if name in ("invoice_date", "received_at") else pa.array(values, EVENT_SCHEMA.field(name).type)
                for name, values in columns.items()})
            SqliteStore._put(conn, invoice_docs(table))
        conn.execute("DROP TABLE lines")
