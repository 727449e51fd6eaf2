"""Analytics fixtures: the hand-made fixture on DuckDB and PostgreSQL, the reference file on DuckDB."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from shopstream.adapters.local.warehouse import DuckDBSnapshotReader, DuckDBWarehouse
from shopstream.analytics import Analytics
from shopstream.domain.warehouse_sql import FACT_COLUMNS, FACT_TABLE
from tests.analytics import fixture, independent
from tests.analytics.postgres import PostgresAnalytics, create_database, drop_database
from tests.conftest import Stack, reference_file
from tests.contract.conftest import make_table
from tests.warehouse_data import load_csv

BACKENDS = ("duckdb", "postgresql")


def duckdb_warehouse(path, rows, prefix="fx"):
    writer = DuckDBWarehouse(path, snapshot_interval=3600)
    writer.write(make_table(rows, prefix=prefix))
    writer.publish()
    return writer


def fact_rows(reader: DuckDBSnapshotReader) -> list[tuple]:
    return reader.query(f"SELECT {', '.join(FACT_COLUMNS)} FROM {FACT_TABLE} ORDER BY event_id")


@pytest.fixture(scope="session")
def postgres_url():
    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def fixture_sources(tmp_path_factory, postgres_url):
    """backend name -> AnalyticsSource holding the fixture's lines (marts built)."""
    path = tmp_path_factory.mktemp("fixture") / "warehouse.duckdb"
    duckdb_warehouse(path, fixture.ROWS).close()
    local = DuckDBSnapshotReader(path)
    postgres = PostgresAnalytics(postgres_url)
    postgres.load(fact_rows(local))
    postgres.refresh()
    yield {"duckdb": local, "postgresql": postgres}
    local.close()
    postgres.close()


@pytest.fixture(params=BACKENDS)
def fixture_analytics(request, fixture_sources) -> Analytics:
    return Analytics(fixture_sources[request.param])


@pytest.fixture(scope="session")
def fixture_frame():
    return independent.frame(fixture.ROWS)


@pytest.fixture(scope="session")
def reference_warehouse(tmp_path_factory):
    """A DuckDB warehouse (file path) holding the reference file, marts built and published."""
    path = tmp_path_factory.mktemp("reference") / "warehouse.duckdb"
    writer = DuckDBWarehouse(path, snapshot_interval=3600)
    load_csv(writer, reference_file())
    writer.close()
    return path


@pytest.fixture(scope="session")
def reference_analytics(reference_warehouse):
    reader = DuckDBSnapshotReader(reference_warehouse)
    yield Analytics(reader)
    reader.close()


@pytest.fixture(scope="session")
def reference_postgres(reference_warehouse, postgres_url, tmp_path_factory):
    """The same reference lines in PostgreSQL (its own schema), marts built with the same SQL."""
    csv = tmp_path_factory.mktemp("reference-pg") / "fact.csv"
    conn = duckdb.connect()
    conn.execute(f"ATTACH '{reference_warehouse.with_name('warehouse.snapshot.duckdb')}' AS w (READ_ONLY)")
    conn.execute(f"COPY (SELECT {', '.join(FACT_COLUMNS)} FROM w.{FACT_TABLE}) TO '{csv}' (HEADER, DELIMITER ',')")
    conn.close()
    url = create_database()
    postgres = PostgresAnalytics(url)
    postgres.load_csv(csv)
    postgres.refresh()
    yield Analytics(postgres)
    postgres.close()
    drop_database(url)


@pytest.fixture(scope="session")
def reference_frame():
    return independent.read_reference(reference_file())


def copy_warehouse(source, data_dir):
    """Seed a data directory with a built warehouse (and its published snapshot)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in ("warehouse.duckdb", "warehouse.snapshot.duckdb"):
        shutil.copyfile(source.with_name(name), data_dir / name)


@pytest.fixture(scope="session")
def analytics_stack(tmp_path_factory, reference_warehouse):
    """`shopstream up` over a data directory whose warehouse already holds the reference file."""
    base = tmp_path_factory.mktemp("analytics-stack")
    copy_warehouse(reference_warehouse, base / "data")
    running = Stack(base / "data", base / "up.log").start()
    yield running
    assert running.stop() == 0, running.log_path.read_text()[-3000:]
