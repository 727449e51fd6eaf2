"""A file's accepted ids as runs of row numbers (the local ledger's compact form)."""

import pyarrow as pa

from shopstream.adapters.local.id_runs import MAX_GAP, PrefixRuns, Run, as_runs, file_rows

FILE = "f0123456789abcdef-"


def table(ids, quantity=2, price_milli=1500):
    n = len(ids)
    return pa.table({"event_id": pa.array(ids, pa.string()), "quantity": pa.array([quantity] * n, pa.int32()),
                     "unit_price_milli": pa.array([price_milli] * n, pa.int64())})


def test_a_chunk_with_dead_letters_is_one_run_with_its_holes():
    runs = as_runs(table([f"{FILE}{row}" for row in (7, *range(3, 5), 9, *range(10, 30))]))
    assert runs == [Run(FILE, 3, 29, [5, 6, 8], 24, 24 * 3000)]
    assert runs[0].row() == (FILE, 3, 29, "[5,6,8]", 24, 72000)


def test_blocks_far_apart_are_runs_of_their_own():
    far = 40 + MAX_GAP + 1
    runs = as_runs(table([f"{FILE}{row}" for row in [*range(far, far + 20), *range(1, 40)]]))
    assert [(run.first_row, run.last_row, run.lines) for run in runs] == [(1, 39, 39), (far, far + 19, 20)]


def test_ids_that_are_not_one_files_rows_are_no_run():
    dense = [f"{FILE}{row}" for row in range(2, 40)]
    assert as_runs(table(dense)) is not None
    assert as_runs(table([])) is None
    assert as_runs(table(["e-1", "e-2"])) is None
    assert as_runs(table([*dense, "f0123456789abcdee-1"])) is None  # two files
    assert as_runs(table([*dense, f"{FILE}01"])) is None  # "01" is not how a row is written
    assert as_runs(table([*dense, f"{FILE}x"])) is None
    assert as_runs(table([*dense, f"{FILE}5"])) is None  # an id twice
    assert as_runs(table([f"{FILE}{row * 1000}" for row in range(1, 40)])) is None  # a run every row


def test_runs_answer_for_their_rows_only():
    runs = PrefixRuns([(11, 20, "[]"), (1, 10, "[4]")])
    assert [row for row in range(0, 23) if runs.holds(row)] == [1, 2, 3, *range(5, 21)]
    assert runs.overlaps(20, 25) and runs.overlaps(0, 1) and not runs.overlaps(21, 30)
    assert not PrefixRuns([]).holds(1) and not PrefixRuns([]).overlaps(1, 2)


def test_file_rows_picks_the_ids_of_the_files_asked_for():
    ids = [f"{FILE}12", f"{FILE}012", f"{FILE}1a", "f0123456789abcdee-3", "e-1", f"{FILE}", f"{FILE}٣"]
    assert file_rows(ids, {FILE}) == {FILE: [(12, f"{FILE}12")]}


def test_rows_that_are_mostly_holes_stay_text_ids():
    assert as_runs(table([f"{FILE}{row}" for row in range(1, 61_441, 200)])) is None
    assert as_runs(table([f"{FILE}{row}" for row in range(1, 61_441, 2)])) is not None  # half: a run
