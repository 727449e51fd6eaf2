"""Warehouse contract: exact money, idempotent on event_id, visible to readers once published."""

import pyarrow as pa

from shopstream.domain.line import Totals
from shopstream.domain.columnar import events_to_table, line_totals_milli
from tests.contract.conftest import FIXTURE_LINES, FIXTURE_MILLI, file_events, make_table


def test_written_lines_reach_readers(warehouse):
    assert warehouse.writer.write(make_table()) == FIXTURE_LINES
    warehouse.writer.publish()
    assert warehouse.reader_factory().totals() == Totals(FIXTURE_LINES, FIXTURE_MILLI)


def test_writing_again_changes_nothing(warehouse):
    table = make_table()
    warehouse.writer.write(table)
    assert warehouse.writer.write(table) == 0
    assert warehouse.writer.write(pa.concat_tables([table, make_table(prefix="x")])) == FIXTURE_LINES
    warehouse.writer.publish()
    assert warehouse.reader_factory().totals() == Totals(2 * FIXTURE_LINES, 2 * FIXTURE_MILLI)


def test_a_files_rows_count_once_across_batches_and_writers(warehouse, tmp_path):
    """A bulk load's batches are one file's rows (the DuckDB writer skips the anti-join for
    rows it knows are new): overlapping batches, a retried one, rows another writer added
    before, and a batch of other ids in between all count each row once."""
    def rows(first, last):
        return events_to_table(file_events(range(first, last + 1)))

    writer = warehouse.writer
    assert writer.write(rows(1, 100)) == 100
    assert writer.write(rows(101, 200)) == 100
    assert writer.write(rows(101, 200)) == 0  # retried
    assert writer.write(rows(150, 300)) == 100  # overlapping
    assert writer.write(make_table()) == FIXTURE_LINES  # other ids
    assert writer.write(rows(250, 400)) == 100
    writer.publish()  # lets go of the file: the next write finds what is there
    assert writer.write(rows(1, 450)) == 50
    writer.publish()
    every = rows(1, 450)
    expected = Totals(450 + FIXTURE_LINES, pc_sum(line_totals_milli(every)) + FIXTURE_MILLI)
    assert warehouse.reader_factory().totals() == expected


def pc_sum(array):
    import pyarrow.compute as pc

    return pc.sum(array).as_py()


def test_duplicate_ids_in_one_batch_count_once(warehouse):
    table = make_table()
    assert warehouse.writer.write(pa.concat_tables([table, table])) == FIXTURE_LINES


def test_a_reader_sees_newer_data_without_reopening(warehouse):
    reader = warehouse.reader_factory()
    warehouse.writer.write(make_table())
    warehouse.writer.publish()
    assert reader.totals().lines == FIXTURE_LINES
    warehouse.writer.write(make_table(prefix="x"))
    warehouse.writer.publish()
    assert reader.totals().lines == 2 * FIXTURE_LINES


def test_duckdb_opened_without_publishing_first_publishes_one_interval_later(tmp_path):
    """A bulk load's warehouse: readers get its lines every snapshot_interval and at the end,
    not a snapshot (and a refresh of the marts) at its first write."""
    from shopstream.adapters.local.warehouse import DuckDBSnapshotReader, DuckDBWarehouse

    writer = DuckDBWarehouse(tmp_path / "w.duckdb", snapshot_interval=3600, publish_on_open=False)
    assert writer.write(events_to_table(file_events(range(1, 101)))) == 100
    assert not writer.snapshot_path.exists()
    writer.publish()
    reader = DuckDBSnapshotReader(tmp_path / "w.duckdb")
    assert reader.totals().lines == 100
    reader.close()
    writer.close()


def test_duckdb_rows_another_writer_added_meanwhile_count_once(tmp_path):
    """The DuckDB writer trusts what it inserted only while it holds the file: once it lets
    go, another writer may add rows of the same file."""
    from shopstream.adapters.local.warehouse import DuckDBWarehouse

    def rows(first, last):
        return events_to_table(file_events(range(first, last + 1)))

    first = DuckDBWarehouse(tmp_path / "w.duckdb", publish_on_open=False)
    assert first.write(rows(1, 100)) == 100
    first.publish()  # lets go of the file
    second = DuckDBWarehouse(tmp_path / "w.duckdb")
    assert second.write(rows(101, 200)) == 100
    second.publish()
    assert first.write(rows(101, 300)) == 100
    first.publish()
    assert first.totals().lines == 300
    first.close()
    second.close()


def test_duckdb_lets_go_of_the_blocks_it_wrote_as_a_long_load_goes_on(tmp_path):
    """DuckDB's pool keeps every block written, up to its limit: a bulk load's memory grew with
    its rows (122 MiB of cached blocks at 5.4M lines) until the writer let it evict them."""
    from shopstream.adapters.local.warehouse import DuckDBWarehouse

    writer = DuckDBWarehouse(tmp_path / "w.duckdb", snapshot_interval=3600, publish_on_open=False)
    rows = events_to_table(file_events(range(1, 122_881)))
    event_id = rows.schema.get_field_index("event_id")
    for batch in range(6):  # 6 whole row groups: 12 MiB cached if nothing is let go
        ids = pa.array([f"b{batch}-{row}" for row in range(rows.num_rows)])
        assert writer.write(rows.set_column(event_id, "event_id", ids)) == rows.num_rows
    (cached,), = writer._conn.execute(
        "SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'").fetchall()
    assert cached <= 5 * 2**20
    assert writer.totals().lines == 6 * 122_880
    writer.close()
