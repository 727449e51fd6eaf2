"""Raw lake contract: every event archived once, a rewritten batch replaces its object."""

from shopstream.domain.line import Totals
from tests.contract.conftest import FIXTURE_LINES, FIXTURE_MILLI, ROWS, make_table


def test_written_batches_add_up(lake):
    assert lake.write("b1", make_table(ROWS[:4])) == 4
    assert lake.write("b2", make_table(ROWS[4:], prefix="x")) == FIXTURE_LINES - 4
    first_four = 15_300 + 20_340 + 11_100 + 1
    assert lake.totals() == Totals(FIXTURE_LINES, first_four + FIXTURE_MILLI - first_four)


def test_rewriting_a_batch_changes_nothing(lake):
    table = make_table()
    lake.write("b1", table)
    lake.write("b1", table)
    assert lake.totals() == Totals(FIXTURE_LINES, FIXTURE_MILLI)


def test_a_batch_rewritten_shorter_or_longer_after_a_crash(lake):
    table = make_table()
    lake.write("b1", table.slice(0, 5))  # a first attempt, then a crash before the checkpoint
    lake.write("b1", table.slice(0, 3))  # the retry happened to read fewer events
    lake.write("b2", table.slice(3))  # and the next batch has the rest
    assert lake.totals() == Totals(FIXTURE_LINES, FIXTURE_MILLI)
    lake.write("b2", table.slice(3, 2))  # shorter still, then the rest later
    lake.write("b3", table.slice(5))
    assert lake.totals() == Totals(FIXTURE_LINES, FIXTURE_MILLI)


def test_duplicate_ids_within_a_batch_count_once(lake):
    import pyarrow as pa

    table = make_table()
    assert lake.write("b1", pa.concat_tables([table, table])) == FIXTURE_LINES
    assert lake.totals() == Totals(FIXTURE_LINES, FIXTURE_MILLI)


def test_empty_lake(lake):
    assert lake.totals() == Totals(0, 0)
