"""The warehouse on Redshift (redshift+redshift_connector://) or PostgreSQL (postgresql+psycopg://).

The fact table is declared once with SQLAlchemy: on Redshift it compiles with
DISTKEY (invoice_no) and SORTKEY (invoice_date) (sqlalchemy-redshift), elsewhere as
the plain FACT_DDL of domain/warehouse_sql.py, column for column. A micro-batch is
loaded into a temporary staging table (COPY FROM STDIN on PostgreSQL; on Redshift COPY
of the batch staged as Parquet in S3, redshift_copy.py; row inserts elsewhere), then merged in one
transaction: only event ids the fact table does not have, each once, under a table
lock so two loader tasks cannot insert the same event between check and insert.
The SQL is portable: no engine-only functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from shopstream.domain.columnar import EventTable
from shopstream.domain.line import SERVICE_STOCK_CODES, Totals
from shopstream.domain.metrics import EARLIEST, MART_DDL, MART_REFRESH, MARTS_STATE, MARTS_VERSION
from shopstream.domain.warehouse_sql import FACT_COLUMNS, FACT_TABLE, TOTALS_SQL
from shopstream.ports import WarehouseNotReady

log = logging.getLogger("shopstream.warehouse")

metadata = sa.MetaData()
FACT = sa.Table(
    FACT_TABLE,
    metadata,
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("invoice_no", sa.String(16), nullable=False),
    sa.Column("stock_code", sa.String(32), nullable=False),
    sa.Column("description", sa.String(200)),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("invoice_date", sa.DateTime, nullable=False),
    sa.Column("unit_price", sa.Numeric(18, 3), nullable=False),
    sa.Column("line_total", sa.Numeric(18, 3), nullable=False),
    sa.Column("customer_id", sa.String(32)),
    sa.Column("country", sa.String(64), nullable=False),
    sa.Column("is_cancellation", sa.Boolean, nullable=False),
    sa.Column("is_adjustment", sa.Boolean, nullable=False),
    sa.Column("is_service", sa.Boolean, nullable=False),
    sa.Column("is_sale", sa.Boolean, nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    redshift_diststyle="KEY",
    redshift_distkey="invoice_no",  # an invoice's lines on one slice: invoice totals without redistribution
    redshift_sortkey=("invoice_date",),  # every metric filters or buckets by invoice_date
)
assert tuple(FACT.columns.keys()) == FACT_COLUMNS

STAGE = "stage_sales_line"
_COLUMNS = ", ".join(FACT_COLUMNS)
_MERGE = f"""
INSERT INTO {FACT_TABLE} ({_COLUMNS})
SELECT {_COLUMNS} FROM (
    SELECT s.*, row_number() OVER (PARTITION BY s.event_id ORDER BY s.received_at) AS arrival
    FROM {STAGE} s
) staged
WHERE arrival = 1
  AND NOT EXISTS (SELECT 1 FROM {FACT_TABLE} f WHERE f.event_id = staged.event_id)
"""


def fact_ddl(dialect: sa.engine.Dialect) -> str:
    """CREATE TABLE for the fact table, compiled for `dialect` without a connection."""
    return str(CreateTable(FACT).compile(dialect=dialect)).strip()


def _fact_rows(table: EventTable) -> list[tuple]:
    return list(zip(*fact_columns(table)))


def fact_columns(table: EventTable) -> list[list]:
    """The fact table's columns (FACT_COLUMNS order) as Python values: money as Decimal."""
    invoice, stock = table["invoice_no"], table["stock_code"]
    quantity, price = table["quantity"], table["unit_price_milli"]
    cancellation = pc.starts_with(invoice, "C")
    adjustment = pc.starts_with(invoice, "A")
    service = pc.is_in(stock, value_set=pa.array(sorted(SERVICE_STOCK_CODES)))
    sale = pc.and_(pc.and_(pc.invert(cancellation), pc.invert(adjustment)),
                   pc.and_(pc.greater(quantity, 0), pc.greater(price, 0)))
    prices = price.to_pylist()
    quantities = quantity.to_pylist()
    columns = [
        table["event_id"].to_pylist(), invoice.to_pylist(), stock.to_pylist(), table["description"].to_pylist(),
        quantities, table["invoice_date"].to_pylist(),
        [Decimal(p).scaleb(-3) for p in prices], [Decimal(q * p).scaleb(-3) for q, p in zip(quantities, prices)],
        table["customer_id"].to_pylist(), table["country"].to_pylist(),
        cancellation.to_pylist(), adjustment.to_pylist(), service.to_pylist(), sale.to_pylist(),
        table["received_at"].to_pylist(), table["source"].to_pylist(),
    ]
    return columns


Stager = Callable[[sa.Connection, EventTable], None]  # fills STAGE with the batch's fact rows


def copy_from_stdin(conn: sa.Connection, table: EventTable) -> None:
    """PostgreSQL: one COPY stream per batch (no statement per row)."""
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {STAGE} ({_COLUMNS}) FROM STDIN") as copy:
        for row in _fact_rows(table):
            copy.write_row(row)


def insert_rows(conn: sa.Connection, table: EventTable) -> None:
    """Anywhere else (Redshift without a COPY role): multi-row inserts, slow but plain."""
    stage = sa.table(STAGE, *(sa.column(c) for c in FACT_COLUMNS))
    conn.execute(stage.insert(), [dict(zip(FACT_COLUMNS, row)) for row in _fact_rows(table)])


class SqlWarehouse:
    """The warehouse on PostgreSQL/Redshift: the writer merges batches and keeps the metric
    marts up to date (as the DuckDB writer does); readers query the same database."""

    def __init__(self, url: str, schema: str | None = None, marts_interval: float = 5.0,
                 stage: Stager | None = None) -> None:
        self.engine = sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        # how a batch gets into the staging table: COPY FROM STDIN (PostgreSQL), COPY from
        # staged Parquet in S3 (Redshift, bootstrap passes it), else row inserts
        self.stage = stage or (copy_from_stdin if self.is_postgres else insert_rows)
        self.marts_interval = marts_interval
        self._marts_stale_since: datetime | None = None
        self._marts_checked = False
        self._marts_refreshed_at = 0.0
        if schema:  # tests: one schema each; the URL can also set search_path
            @sa.event.listens_for(self.engine, "connect")
            def _search_path(dbapi_connection, record):
                with dbapi_connection.cursor() as cursor:
                    cursor.execute(f'SET search_path TO "{schema}"')
                dbapi_connection.commit()

    def create_schema(self) -> None:
        """The fact table (and, on PostgreSQL, the database itself) if missing; idempotent."""
        if self.is_postgres:
            self._create_database()
        with self.engine.begin() as conn:
            if not self.engine.dialect.has_table(conn, FACT_TABLE):
                conn.exec_driver_sql(fact_ddl(self.engine.dialect))
            if self.is_postgres:  # the merge's anti-join probes it (Redshift has no indexes: sort keys)
                conn.exec_driver_sql(f"CREATE UNIQUE INDEX IF NOT EXISTS {FACT_TABLE}_event_id "
                                     f"ON {FACT_TABLE} (event_id)")
            for ddl in MART_DDL:
                conn.execute(sa.text(ddl))

    def _create_database(self) -> None:
        url = self.engine.url
        try:
            with self.engine.connect():
                return
        except sa.exc.OperationalError as error:
            if f'database "{url.database}" does not exist' not in str(error):
                raise
        admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                # byte-wise text order: the metrics' tie-breaks (metrics.py) compare that way
                conn.exec_driver_sql(f'CREATE DATABASE "{url.database}" ENCODING \'UTF8\' '
                                     "LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        except sa.exc.ProgrammingError as error:  # created meanwhile by another init
            if "already exists" not in str(error):
                raise
        finally:
            admin.dispose()

    def write(self, table: EventTable) -> int:
        if table.num_rows == 0:
            return 0
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {STAGE} (LIKE {FACT_TABLE})")
            self.stage(conn, table)
            # Readers keep reading; a second writer waits (Redshift's LOCK has no modes).
            conn.exec_driver_sql(f"LOCK TABLE {FACT_TABLE} IN SHARE ROW EXCLUSIVE MODE" if self.is_postgres
                                 else f"LOCK {FACT_TABLE}")
            new = conn.exec_driver_sql(_MERGE).rowcount
            conn.exec_driver_sql(f"DROP TABLE {STAGE}")
        if new:
            earliest = pc.min(table["invoice_date"]).as_py()
            stale = self._stale_since()
            self._marts_stale_since = earliest if stale is None else min(stale, earliest)
            if time.monotonic() - self._marts_refreshed_at >= self.marts_interval:
                self.refresh_marts()
        return new

    def _stale_since(self) -> datetime | None:
        """Once per process: marts of another version, or behind the facts after a crash
        between a write and a refresh, are rebuilt."""
        if not self._marts_checked:
            self._marts_checked = True
            with self.engine.connect() as conn:
                version, built_from, lines = conn.execute(sa.text(MARTS_STATE)).one()
            if version != MARTS_VERSION or built_from != lines:
                self._marts_stale_since = EARLIEST
        return self._marts_stale_since

    def refresh_marts(self) -> None:
        """Recompute what the lines written since the last refresh changed, in one transaction."""
        since = self._stale_since()
        if since is None:
            return
        with self.engine.begin() as conn:
            # several loader tasks may refresh at once: one at a time, or rows would double
            conn.exec_driver_sql("LOCK TABLE mart_meta IN EXCLUSIVE MODE" if self.is_postgres else "LOCK mart_meta")
            for statement in MART_REFRESH:
                conn.execute(sa.text(statement), {"since": since})
        self._marts_stale_since = None
        self._marts_refreshed_at = time.monotonic()

    def publish(self) -> None:
        """Committed rows are visible to every reader already; bring the marts up to date."""
        self.refresh_marts()

    def caught_up(self) -> None:
        self.publish()

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """AnalyticsSource: one SELECT of domain/metrics.py."""
        try:
            with self.engine.connect() as conn:
                return [tuple(row) for row in conn.execute(sa.text(sql), dict(params or {}))]
        except sa.exc.ProgrammingError as error:
            if "does not exist" in str(error):
                raise WarehouseNotReady("the warehouse has no tables yet: run `shopstream init`") from None
            raise

    def totals(self) -> Totals:
        with self.engine.connect() as conn:
            lines, amount = conn.exec_driver_sql(TOTALS_SQL).one()
        return Totals(lines, int(Decimal(amount) * 1000))

    def close(self) -> None:
        self.engine.dispose()
