"""A bulk load writes the warehouse in whole DuckDB row groups (bulk/load.py: _RowGroups)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest

from shopstream.bulk import load
from shopstream.bulk.load import _RowGroups


def rows(first: int, n: int) -> pa.Table:
    return pa.table({"row": pa.array(range(first, first + n), pa.int64())})


@pytest.fixture
def groups(monkeypatch):
    monkeypatch.setattr(load, "WAREHOUSE_ROWS", 10)
    written, gate = [], threading.Event()

    def write(table):
        gate.wait(5)
        written.append(table["row"].to_pylist())
        return table.num_rows

    pool = ThreadPoolExecutor(1)
    yield _RowGroups(write, pool), written, gate
    gate.set()
    pool.shutdown()


def test_chunks_go_in_whole_row_groups_and_each_is_done_once_all_its_rows_are(groups):
    row_groups, written, gate = groups
    a, b, c = row_groups.add(rows(0, 6)), row_groups.add(rows(6, 6)), row_groups.add(rows(12, 6))
    assert row_groups.holds(b) and row_groups.holds(c) and not row_groups.holds(a)  # rows 0-9 went; 10-17 wait
    gate.set()
    a.result(5)
    assert not b.done()  # rows 10 and 11 are not written yet
    row_groups.flush()
    b.result(5), c.result(5)
    assert written == [list(range(10)), list(range(10, 18))]
    assert not row_groups.holds(c)
    row_groups.flush()  # nothing held: no write
    assert len(written) == 2


def test_a_failed_write_fails_every_chunk_with_rows_in_it(groups):
    row_groups, written, gate = groups
    ok, failing = row_groups.add(rows(0, 4)), row_groups.add(rows(4, 4))
    row_groups._write = lambda table: 1 / 0
    gate.set()
    row_groups.add(rows(8, 4))  # rows 0-9 in one write, which fails
    row_groups.flush()
    for future in (ok, failing):
        with pytest.raises(ZeroDivisionError):
            future.result(5)
