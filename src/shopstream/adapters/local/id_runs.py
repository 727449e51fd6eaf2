"""A file's accepted event ids as runs of row numbers, for the local ledger.

A bulk load accepts a file's rows a chunk at a time, and `send` posts them in blocks;
their ids are the file's (`f<hash16>-<row>`, domain/events.py): thousands of consecutive
rows but for a few dead letters. Looking each id up in the ledger's B-tree and inserting
it cost ~2 µs a line (~0.7 CPU-s of a bulk load of the reference file, ~1 s of the
ingest API's single core for a send of it). A run keeps the same facts in
one row: the file's id prefix, the first and last row, the rows in between that were
not accepted (`missing`), and the run's line count and money. The ledger answers for
both forms: an id is accepted iff it is a text row or inside a run and not missing.

Runs of one prefix never overlap (LocalLog checks before it adds one), so finding the
run that may hold a row is a bisection.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from shopstream.domain.columnar import ascii_slice, line_totals_milli

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_runs (
    prefix TEXT NOT NULL,          -- f<hash16>-
    first_row INTEGER NOT NULL,
    last_row INTEGER NOT NULL,
    missing TEXT NOT NULL,         -- JSON array: the rows between first and last not accepted
    lines INTEGER NOT NULL,
    amount_milli INTEGER NOT NULL,
    PRIMARY KEY (prefix, first_row)
) WITHOUT ROWID;
"""

_PREFIX = re.compile(r"f[0-9a-f]{16}-")
PREFIX_LENGTH = 18
# A row number as file_event_id writes it: no sign, no leading zero (so text <-> row is 1:1).
_ROW = "[1-9][0-9]{0,17}"
_ROW_TEXT = re.compile(_ROW)
# A gap of more rows than this between two of a table's rows starts another run (a group
# commit of requests that are not consecutive blocks of the file, say); smaller gaps (dead
# letters) are kept in `missing`. A table that would need a run per few rows stays text.
MAX_GAP = 256
_MIN_LINES_PER_RUN = 16


@dataclass(frozen=True)
class Run:
    prefix: str
    first_row: int
    last_row: int
    missing: list[int]
    lines: int
    amount_milli: int

    def row(self) -> tuple:
        return (self.prefix, self.first_row, self.last_row, orjson.dumps(self.missing).decode(), self.lines,
                self.amount_milli)


def as_runs(table: pa.Table) -> list[Run] | None:
    """The table's lines as runs of one file's rows (ascending): None unless every id is a
    row of one file, each once, and the rows are dense enough for runs to be smaller."""
    ids = table["event_id"].combine_chunks()
    if len(ids) < _MIN_LINES_PER_RUN:  # a single-line POST, say: not worth the checks
        return None
    prefix = ids[0].as_py()[:PREFIX_LENGTH]
    if not _PREFIX.fullmatch(prefix) or not pc.all(pc.starts_with(ids, prefix)).as_py():
        return None
    suffixes = ascii_slice(ids, PREFIX_LENGTH)  # the prefix is ASCII (checked above), so bytes = characters
    if not pc.all(pc.match_substring_regex(suffixes, f"^{_ROW}$")).as_py():
        return None
    numbers = suffixes.cast(pa.int64())
    order = pc.sort_indices(numbers)
    rows = numbers.take(order)
    # a Python loop over the gaps only (dead letters, block boundaries), not over the rows
    steps = pc.subtract(rows[1:], rows[:-1])
    if pc.any(pc.equal(steps, 0)).as_py():
        return None  # an id given twice
    breaks = [i + 1 for i in pc.indices_nonzero(pc.greater(steps, MAX_GAP)).to_pylist()]
    if (len(breaks) + 1) * _MIN_LINES_PER_RUN > len(rows):
        return None
    # (i, row i, row i + 1) where rows between i and i + 1 are missing
    gaps = [(i, rows[i].as_py(), rows[i + 1].as_py()) for i in
            pc.indices_nonzero(pc.and_(pc.greater(steps, 1), pc.less_equal(steps, MAX_GAP))).to_pylist()]
    if sum(after - before - 1 for _, before, after in gaps) > len(rows):
        return None  # mostly holes (every 200th row, say): the missing rows would outweigh the ids
    amounts = pc.cumulative_sum(line_totals_milli(table).take(order))
    runs, gap_at = [], 0
    for start, end in zip([0, *breaks], [*breaks, len(rows)]):
        missing = []
        while gap_at < len(gaps) and gaps[gap_at][0] < end - 1:
            _, before, after = gaps[gap_at]
            missing.extend(range(before + 1, after))
            gap_at += 1
        amount = amounts[end - 1].as_py() - (amounts[start - 1].as_py() if start else 0)
        runs.append(Run(prefix, rows[start].as_py(), rows[end - 1].as_py(), missing, end - start, amount))
    return runs


def prefix_end(prefix: str) -> str:
    """The ids starting with `prefix` are the keys from prefix up to (not including) this."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def file_rows(ids: Iterable[str], prefixes: set[str]) -> dict[str, list[tuple[int, str]]]:
    """(row, id) of each id that is a row of a file in `prefixes`, by prefix."""
    out: dict[str, list[tuple[int, str]]] = {}
    for event_id in ids:
        prefix, row = event_id[:PREFIX_LENGTH], event_id[PREFIX_LENGTH:]
        if prefix in prefixes and _ROW_TEXT.fullmatch(row):
            out.setdefault(prefix, []).append((int(row), event_id))
    return out


class PrefixRuns:
    """The runs of one prefix (rows: first_row, last_row, missing JSON), sorted by first_row."""

    def __init__(self, rows: list[tuple[int, int, str]]) -> None:
        rows = sorted(rows)
        self.firsts = [r[0] for r in rows]
        self.lasts = [r[1] for r in rows]
        self._missing_json = [r[2] for r in rows]
        self._missing: dict[int, set[int]] = {}

    def holds(self, row: int) -> bool:
        i = bisect_right(self.firsts, row) - 1
        if i < 0 or row > self.lasts[i]:
            return False
        missing = self._missing.get(i)
        if missing is None:
            missing = self._missing[i] = set(orjson.loads(self._missing_json[i]))
        return row not in missing

    def overlaps(self, first: int, last: int) -> bool:
        i = bisect_right(self.firsts, last) - 1
        return i >= 0 and self.lasts[i] >= first
