"""The metric SQL on PostgreSQL (the aws profile's Redshift stand-in), through SQLAlchemy.

A test-side stand-in for the aws warehouse adapter's analytics half: the fact table,
the marts refreshed with `metrics.MART_REFRESH`, and `query` as the AnalyticsSource port
asks. The databases it makes compare text byte-wise (LC_COLLATE 'C'), as metrics.py requires.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shopstream.domain.metrics import EARLIEST, MART_DDL, MART_REFRESH
from shopstream.domain.warehouse_sql import FACT_COLUMNS, FACT_DDL, FACT_TABLE

SERVER_URL = os.environ.get("SHOPSTREAM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def create_database() -> str:
    """A fresh database with a unique name; returns its URL."""
    name = f"shopstream_analytics_{uuid.uuid4().hex[:12]}"
    server = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(sa.text(
                f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"))
    except sa.exc.OperationalError as error:
        raise RuntimeError(f"PostgreSQL is not reachable at {SERVER_URL} (set SHOPSTREAM_TEST_POSTGRES_URL): "
                           f"{error}") from None
    finally:
        server.dispose()
    return sa.engine.make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = sa.engine.make_url(url).database
    server = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    server.dispose()


class PostgresAnalytics:
    def __init__(self, url: str, schema: str | None = None) -> None:
        if schema:  # a fresh schema of its own, first on the search path
            setup = sa.create_engine(url)
            with setup.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            setup.dispose()
        self.engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"} if schema else {})
        with self.engine.begin() as conn:
            conn.execute(sa.text(FACT_DDL))
            for ddl in MART_DDL:
                conn.execute(sa.text(ddl))

    def load(self, fact_rows: list[tuple]) -> None:
        """Rows of fact_sales_line (FACT_COLUMNS order), e.g. as the DuckDB warehouse holds them."""
        insert = sa.text(f"INSERT INTO {FACT_TABLE} ({', '.join(FACT_COLUMNS)}) "
                         f"VALUES ({', '.join(':' + c for c in FACT_COLUMNS)})")
        with self.engine.begin() as conn:
            conn.execute(insert, [dict(zip(FACT_COLUMNS, row)) for row in fact_rows])

    def load_csv(self, path) -> None:
        """A CSV of fact_sales_line rows (header, FACT_COLUMNS order), by COPY."""
        raw = self.engine.raw_connection()
        try:
            with raw.cursor() as cursor, open(path, "rb") as f:
                with cursor.copy(f"COPY {FACT_TABLE} ({', '.join(FACT_COLUMNS)}) FROM STDIN "
                                 "WITH (FORMAT csv, HEADER true)") as copy:
                    while chunk := f.read(1 << 20):
                        copy.write(chunk)
            raw.commit()
        finally:
            raw.close()

    def refresh(self, since: datetime = EARLIEST) -> None:
        with self.engine.begin() as conn:
            for statement in MART_REFRESH:
                conn.execute(sa.text(statement), {"since": since})

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), dict(params or {}))]

    def close(self) -> None:
        self.engine.dispose()
