"""The marts stay equal to a full rebuild however lines arrive: in date order, out of
order, after a crash between a write and a publish; on DuckDB and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest

from shopstream.adapters.local.warehouse import DuckDBSnapshotReader, DuckDBWarehouse
from shopstream.domain.metrics import MART_TABLES
from tests.analytics import fixture
from tests.analytics.conftest import duckdb_warehouse, fact_rows
from tests.analytics.postgres import PostgresAnalytics
from tests.contract.conftest import make_table

EARLY, LATE = fixture.ROWS[:9], fixture.ROWS[9:]  # December; January and February


def marts(source) -> dict[str, list[tuple]]:
    return {table: sorted(source.query(f"SELECT * FROM {table}"), key=repr) for table in MART_TABLES}


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    """The marts of the whole fixture written at once."""
    path = tmp_path_factory.mktemp("whole") / "warehouse.duckdb"
    duckdb_warehouse(path, fixture.ROWS).close()
    reader = DuckDBSnapshotReader(path)
    yield marts(reader)
    reader.close()


@pytest.mark.parametrize("first, then", [(EARLY, LATE), (LATE, EARLY)], ids=["in-order", "late-lines-first"])
def test_duckdb_marts_follow_every_publish(tmp_path, rebuilt, first, then):
    path = tmp_path / "warehouse.duckdb"
    writer = duckdb_warehouse(path, first, prefix="a")
    reader = DuckDBSnapshotReader(path)
    assert reader.query("SELECT lines FROM mart_meta") == [(len(first),)]
    writer.write(make_table(then, prefix="b"))
    writer.publish()
    assert marts(reader) == rebuilt
    writer.close()


def test_a_crash_between_write_and_publish_is_caught_up_on_restart(tmp_path, rebuilt):
    path = tmp_path / "warehouse.duckdb"
    writer = duckdb_warehouse(path, EARLY, prefix="a")
    writer.write(make_table(LATE, prefix="b"))
    writer._conn.close()  # killed before it published: the lines are in, the marts are behind
    writer._turn.release()  # (the kernel drops a killed process's lock)
    DuckDBWarehouse(path, snapshot_interval=3600).close()
    assert marts(DuckDBSnapshotReader(path)) == rebuilt


def test_marts_of_another_version_are_rebuilt(tmp_path, rebuilt):
    path = tmp_path / "warehouse.duckdb"
    writer = duckdb_warehouse(path, fixture.ROWS)
    conn = writer._open()  # publish() gave up the file; take it back, as the next writer would
    conn.execute("UPDATE mart_meta SET marts_version = 0")
    conn.execute("DELETE FROM mart_rfm")
    conn.close()
    writer._turn.release()
    DuckDBWarehouse(path, snapshot_interval=3600).close()
    assert marts(DuckDBSnapshotReader(path)) == rebuilt


def test_postgresql_marts_refreshed_from_a_date_equal_a_rebuild(tmp_path, postgres_url, rebuilt):
    path = tmp_path / "warehouse.duckdb"
    duckdb_warehouse(path, fixture.ROWS).close()
    rows = fact_rows(DuckDBSnapshotReader(path))
    late = [r for r in rows if r[5] >= datetime(2011, 1, 1)]
    postgres = PostgresAnalytics(postgres_url, schema="incremental")
    try:
        postgres.load([r for r in rows if r not in late])
        postgres.refresh()
        postgres.load(late)
        postgres.refresh(since=datetime(2011, 1, 10, 9, 15))
        assert marts(postgres) == rebuilt
    finally:
        postgres.close()


def test_while_lines_keep_coming_the_marts_catch_up_on_their_interval_and_when_idle(tmp_path, rebuilt):
    path = tmp_path / "warehouse.duckdb"
    writer = DuckDBWarehouse(path, snapshot_interval=0, marts_interval=3600)
    reader = DuckDBSnapshotReader(path)
    writer.write(make_table(EARLY, prefix="a"))  # each write publishes at once (interval 0)...
    writer.write(make_table(LATE, prefix="b"))
    assert reader.totals().lines == len(fixture.ROWS)
    assert reader.query("SELECT lines FROM mart_meta") == [(0,)]  # ...but the marts were built at start
    writer.publish()  # what the loader does when it is idle
    assert marts(reader) == rebuilt
    writer.close()


def test_duckdbs_top_product_per_bucket_is_the_portable_querys(tmp_path):
    from shopstream.domain.metrics import GRAINS, _top_product_per_bucket

    tie = [("536999", "22222", "TIE A", 7, "2010-12-01 08:26:00", "1.00", "17850", "United Kingdom"),
           ("536999", "11111", "TIE B", 7, "2010-12-01 08:26:00", "1.00", "17850", "United Kingdom")]
    path = tmp_path / "warehouse.duckdb"
    duckdb_warehouse(path, fixture.ROWS + tie).close()
    reader = DuckDBSnapshotReader(path)
    for grain in GRAINS:
        portable = sorted(reader.query(_top_product_per_bucket(grain)))
        assert sorted(reader.query(_top_product_per_bucket(grain, dialect="duckdb"))) == portable, grain
        assert portable
    reader.close()
