"""The local stream: a durable append-only log in one SQLite file (WAL mode).

- `records`: one row per (request, partition) group of events, the way Kinesis
  aggregation packs many user records into one (an Arrow IPC stream of
  EVENT_SCHEMA); `seq` orders all records.
- `ledger`: every accepted event id and its money, written in the same transaction
  as the records. It makes appends idempotent (an event id already accepted is not
  appended again) and gives `verify` the accepted totals. A file's rows (a bulk load's
  chunk, a `send` request) go in as runs of row numbers instead, in `ledger_runs`
  (id_runs.py): the ledger is both tables, and an id is in one of them at most.
- `checkpoints`: one per consumer group, the last `seq` whose batch its sink committed.

Several processes may append and read at once; a commit survives SIGKILL.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import pyarrow as pa

from shopstream.adapters.local import id_runs
from shopstream.adapters.local.sqlite import connect, transaction
from shopstream.domain.columnar import EventTable, first_occurrences, from_ipc, line_totals_milli, to_ipc
from shopstream.domain.events import by_partition
from shopstream.domain.line import Totals
from shopstream.ports import AppendResult, Batch, GroupStatus

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    partition INTEGER NOT NULL,
    count INTEGER NOT NULL,
    appended_at REAL NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    event_id TEXT PRIMARY KEY,
    amount_milli INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    grp TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
"""


class LocalLog:
    def __init__(self, path: Path, partitions: int = 8, synchronous: str = "NORMAL", cache_mb: int = 64) -> None:
        self.path = path
        self.partitions = partitions
        self.synchronous = synchronous
        self._conn = connect(path, synchronous, cache_mb=cache_mb)
        self._conn.executescript(SCHEMA + id_runs.SCHEMA)
        self._lock = threading.Lock()

    def append(self, table: EventTable) -> AppendResult:
        if table.num_rows == 0:
            return AppendResult(0)
        now = time.time()
        with self._lock, transaction(self._conn, immediate=True) as conn:
            fresh, known = _add_to_ledger(conn, table)
            conn.executemany(
                "INSERT INTO records (partition, count, appended_at, payload) VALUES (?, ?, ?, ?)",
                [(p, part.num_rows, now, to_ipc(part)) for p, part in by_partition(fresh, self.partitions)],
            )
        return AppendResult(fresh.num_rows, known)

    @staticmethod
    def _known(conn: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
        rows = conn.execute(
            "SELECT l.event_id FROM json_each(?) j JOIN ledger l ON l.event_id = j.value", (orjson.dumps(ids),)
        )
        return {row[0] for row in rows} | _known_in_runs(conn, ids)

    def accepted_among(self, event_ids: Sequence[str]) -> set[str]:
        with self._lock:
            return self._known(self._conn, event_ids)

    def holds_prefix(self, prefix: str) -> bool | None:
        with self._lock:
            return _holds_prefix(self._conn, prefix)

    def record_accepted(self, table: EventTable) -> int:
        with self._lock, transaction(self._conn, immediate=True) as conn:
            return _add_to_ledger(conn, table)[0].num_rows

    def reader(self, group: str) -> LocalLogReader:
        return LocalLogReader(self.path, group, self.synchronous)

    def accepted(self) -> Totals:
        lines, amount = self._conn.execute(
            "SELECT (SELECT count(*) FROM ledger) + (SELECT coalesce(sum(lines), 0) FROM ledger_runs), "
            "(SELECT coalesce(sum(amount_milli), 0) FROM ledger) + (SELECT coalesce(sum(amount_milli), 0) "
            "FROM ledger_runs)"
        ).fetchone()
        return Totals(lines, amount)

    def status(self, groups: Sequence[str]) -> list[GroupStatus]:
        out = []
        for group in groups:
            row = self._conn.execute("SELECT seq FROM checkpoints WHERE grp = ?", (group,)).fetchone()
            seq = row[0] if row else 0
            (lag,) = self._conn.execute(
                "SELECT coalesce(sum(count), 0) FROM records WHERE seq > ?", (seq,)
            ).fetchone()
            out.append(GroupStatus(group, str(seq), lag))
        return out

    def close(self) -> None:
        self._conn.close()


def _holds_prefix(conn: sqlite3.Connection, prefix: str) -> bool | None:
    """Text ids starting with `prefix`, or runs of a file whose ids all do (its prefix
    starts with `prefix`): True. A longer prefix (`f<hash>-12`) of a file with runs: None,
    since telling would take the rows' digits (the port allows "cannot tell")."""
    if _holds_text_of(conn, prefix) or conn.execute(
            "SELECT 1 FROM ledger_runs WHERE prefix >= ? AND prefix < ? LIMIT 1", (prefix, id_runs.prefix_end(prefix))).fetchone():
        return True
    if len(prefix) > id_runs.PREFIX_LENGTH and conn.execute(
            "SELECT 1 FROM ledger_runs WHERE prefix = ? LIMIT 1", (prefix[:id_runs.PREFIX_LENGTH],)).fetchone():
        return None
    return False


def _add_to_ledger(conn: sqlite3.Connection, table: EventTable) -> tuple[EventTable, set[str]]:
    """Record the lines of `table` the ledger does not hold (each id once); returns them
    and the ids it held. One file's rows (a bulk load's chunk, a `send` request) go in as
    runs, without a lookup per id, when the ledger holds no text id of that file and no
    run spanning their rows; anything else id by id."""
    distinct = first_occurrences(table, set())
    runs = id_runs.as_runs(distinct)
    if runs is not None and not _holds_text_of(conn, runs[0].prefix):
        held = _runs_of(conn, runs[0].prefix)
        if not any(held.overlaps(run.first_row, run.last_row) for run in runs):
            conn.executemany("INSERT INTO ledger_runs (prefix, first_row, last_row, missing, lines, amount_milli) "
                             "VALUES (?, ?, ?, ?, ?, ?)", [run.row() for run in runs])
            return distinct, set()
    known = LocalLog._known(conn, distinct["event_id"].to_pylist())
    fresh = first_occurrences(distinct, known)
    conn.executemany("INSERT INTO ledger (event_id, amount_milli) VALUES (?, ?)", _ledger_rows(fresh))
    return fresh, known


def _holds_text_of(conn: sqlite3.Connection, prefix: str) -> bool:
    (text,) = conn.execute("SELECT EXISTS (SELECT 1 FROM ledger WHERE event_id >= ? AND event_id < ?)",
                           (prefix, id_runs.prefix_end(prefix))).fetchone()
    return bool(text)


def _runs_of(conn: sqlite3.Connection, prefix: str) -> id_runs.PrefixRuns:
    return id_runs.PrefixRuns(conn.execute(
        "SELECT first_row, last_row, missing FROM ledger_runs WHERE prefix = ?", (prefix,)).fetchall())


def _known_in_runs(conn: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
    """The ids of `ids` that runs hold (none without a single run: one probe)."""
    if not ids or conn.execute("SELECT 1 FROM ledger_runs LIMIT 1").fetchone() is None:
        return set()
    prefixes = {event_id[:id_runs.PREFIX_LENGTH] for event_id in ids if event_id[:1] == "f"}
    with_runs = {p for (p,) in conn.execute(
        "SELECT DISTINCT prefix FROM ledger_runs WHERE prefix IN (SELECT value FROM json_each(?))",
        (orjson.dumps(sorted(prefixes)),))}
    known = set()
    for prefix, rows in id_runs.file_rows(ids, with_runs).items():
        runs = _runs_of(conn, prefix)
        known.update(event_id for row, event_id in rows if runs.holds(row))
    return known


def _ledger_rows(table: EventTable) -> list[tuple[str, int]]:
    """(event_id, money) in key order: the B-tree then takes them page by page (~25 % less CPU)."""
    rows = pa.table({"event_id": table["event_id"], "amount": line_totals_milli(table)}).sort_by("event_id")
    return list(zip(rows["event_id"].to_pylist(), rows["amount"].to_pylist()))


class LocalLogReader:
    """Reads the whole log in `seq` order for one consumer group."""

    def __init__(self, path: Path, group: str, synchronous: str) -> None:
        self.group = group
        # It reads each page once, in order: a big page cache would only hold pages already
        # consumed (64 MB of them in every consumer); the OS's file cache serves re-reads.
        self._conn = connect(path, synchronous, cache_mb=4)
        self._conn.executescript(SCHEMA)
        row = self._conn.execute("SELECT seq FROM checkpoints WHERE grp = ?", (group,)).fetchone()
        self._checkpoint = row[0] if row else 0

    def read(self, max_events: int) -> Batch | None:
        # Which records make the batch, from their counts alone; then only their payloads
        # (fetching a thousand payloads to use a few dozen read the log's tail again and again).
        counts = self._conn.execute(
            "SELECT seq, count FROM records WHERE seq > ? ORDER BY seq LIMIT 1000", (self._checkpoint,),
        ).fetchall()
        last, total = None, 0
        for seq, count in counts:
            if last is not None and total + count > max_events:
                break
            last, total = seq, total + count
        if last is None:
            return None
        first = counts[0][0]
        # A short read transaction: the WAL can be checkpointed between reads.
        payloads = [payload for (payload,) in self._conn.execute(
            "SELECT payload FROM records WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last))]
        return Batch(batch_id=f"{first:012d}", table=from_ipc(payloads), position=last)

    def commit(self, batch: Batch) -> None:
        self._conn.execute(
            "INSERT INTO checkpoints (grp, seq, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (grp) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at "
            "WHERE excluded.seq > checkpoints.seq",
            (self.group, batch.position, time.time()),
        )
        self._checkpoint = max(self._checkpoint, batch.position)

    def close(self) -> None:
        self._conn.close()
