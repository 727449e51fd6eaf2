"""Warehouse contract: exact money, idempotent on event_id, visible to readers once published."""

import pyarrow as pa

from shopstream.domain.line import Totals
from tests.contract.conftest import FIXTURE_LINES, FIXTURE_MILLI, make_table


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
