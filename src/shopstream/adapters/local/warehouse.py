"""The local warehouse: DuckDB.

DuckDB lets one process write a database file, and no other process read it
meanwhile. Two processes write it: the warehouse-loader (from the stream) and a bulk
load (from files). They take turns (`FileTurn`): a writer holds the file while it has
work and nobody else waits, and lets go after its current batch when someone does, or
when it goes idle; it leaves the metric marts matching the facts when it lets go.
After it commits, the holder publishes a copy, `warehouse.snapshot.duckdb`, which
readers (analytics-api, verify) open read-only; they reopen when a newer copy appears.
Publishing is throttled (SHOPSTREAM_SNAPSHOT_INTERVAL_SECONDS) and always happens when
a writer goes idle, so readers lag the writers by at most that interval.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.compute as pc

from shopstream.adapters.local import id_runs
from shopstream.adapters.local.file_turn import FileTurn
from shopstream.domain.columnar import EventTable, first_occurrences
from shopstream.domain.line import Totals
from shopstream.domain.metrics import (
    EARLIEST,
    MART_DDL,
    MART_REBUILD_DUCKDB,
    MART_REFRESH_DUCKDB,
    MART_TABLES,
    MARTS_STATE,
    MARTS_VERSION,
)
from shopstream.domain.warehouse_sql import FACT_COLUMNS, FACT_DDL, FACT_TABLE, TOTALS_SQL
from shopstream.ports import WarehouseNotReady

log = logging.getLogger("shopstream.warehouse")

# DuckDB's pool lets go of the file's written blocks every this many rows written (see
# _uncache): 4 whole row groups, ~11 MiB of cached blocks of generated lines.
UNCACHE_EVERY_ROWS = 4 * 122_880

# Insert only event ids the table does not have yet (the batch's ids are distinct). The
# range on f.event_id filters the fact rows before the anti-join hashes them: against 5
# million rows, 70 -> 35 ms for a 50,000-line chunk (DuckDB's string zone maps keep only 8
# bytes, so it prunes no row groups: every id of one file shares them).
_INSERT = f"""
INSERT INTO {FACT_TABLE} ({", ".join(FACT_COLUMNS)})
SELECT event_id, invoice_no, stock_code, description, quantity, invoice_date,
       CAST(unit_price_milli * CAST(0.001 AS DECIMAL(4,3)) AS DECIMAL(18,3)),
       CAST(quantity * unit_price_milli * CAST(0.001 AS DECIMAL(4,3)) AS DECIMAL(18,3)),
       customer_id, country,
       invoice_no LIKE 'C%', invoice_no LIKE 'A%',
       stock_code IN ('POST', 'DOT', 'C2', 'M', 'm', 'D', 'S', 'B', 'CRUK',
                      'BANK CHARGES', 'AMAZONFEE', 'PADS'),
       invoice_no NOT LIKE 'C%' AND invoice_no NOT LIKE 'A%' AND quantity > 0 AND unit_price_milli > 0,
       received_at, source
FROM batch b
"""
_MERGE = _INSERT + f"""WHERE NOT EXISTS (SELECT 1 FROM {FACT_TABLE} f
                  WHERE f.event_id = b.event_id AND f.event_id BETWEEN $first_id AND $last_id)
"""
_HOLDS_PREFIX = f"SELECT EXISTS (SELECT 1 FROM {FACT_TABLE} WHERE event_id >= $1 AND event_id < $2)"


class _WrittenFiles:
    """Which rows of which files this connection has inserted, for files the table held no
    row of when the connection first met them: a batch of other rows of such a file is new
    without the anti-join (which scans every fact's event id: for the reference file ~20 %
    of the warehouse's CPU, and it grows with the table). Sound while the connection holds
    the turn, so forgotten whenever it lets go; any batch that is not one file's rows
    (id_runs.as_runs) makes it forget everything, as it may hold rows of any file."""

    def __init__(self) -> None:
        self._spans: dict[str, list[tuple[int, int]]] = {}  # prefix -> (first, last) rows inserted
        self._held: set[str] = set()  # prefixes the table held rows of (or may hold)

    def fresh(self, conn: duckdb.DuckDBPyConnection, table: EventTable) -> list[id_runs.Run] | None:
        """The batch's runs if none of its rows can be in the table yet, else None."""
        runs = id_runs.as_runs(table)
        if runs is None:
            self.forget()
            return None
        prefix = runs[0].prefix
        if prefix in self._held:
            return None
        spans = self._spans.get(prefix)
        if spans is None:
            if conn.execute(_HOLDS_PREFIX, [prefix, id_runs.prefix_end(prefix)]).fetchall()[0][0]:
                self._held.add(prefix)
                return None
            spans = self._spans[prefix] = []
        written = id_runs.PrefixRuns([(first, last, "[]") for first, last in spans])
        if any(written.overlaps(run.first_row, run.last_row) for run in runs):
            self._held.add(prefix)  # a batch again (a retry): the anti-join from now on
            del self._spans[prefix]
            return None
        return runs

    def inserted(self, runs: list[id_runs.Run]) -> None:
        self._spans[runs[0].prefix].extend((run.first_row, run.last_row) for run in runs)

    def forget(self) -> None:
        self._spans.clear()
        self._held.clear()


class DuckDBWarehouse:
    """Writer. Use `DuckDBSnapshotReader` to read from elsewhere."""

    def __init__(self, path: Path, snapshot_interval: float = 1.0, marts_interval: float = 5.0,
                 turn_timeout: float = 600.0, memory_limit: str = "256MB", publish_on_open: bool = True,
                 publish_share: float = 0.0) -> None:
        self.path = path
        self.snapshot_path = snapshot_path_for(path)
        self.snapshot_interval = snapshot_interval
        self.marts_interval = marts_interval
        self.turn_timeout = turn_timeout
        self.memory_limit = memory_limit  # DuckDB caches up to 80% of RAM by default
        path.parent.mkdir(parents=True, exist_ok=True)
        self._turn = FileTurn(path)
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._written = _WrittenFiles()
        self._marts_stale_since: datetime | None = None
        # Publish once on start: a loader killed after a commit but before publishing
        # would otherwise leave readers on an older snapshot until new lines arrive. (A bulk
        # load publishes when it ends, failed or not: it skips this, and keeps the file.)
        self._dirty = True
        self._published_at = 0.0
        self._marts_refreshed_at = 0.0
        self._written_at = 0.0
        # publish from write() no more often than publish_share x what the last one took (a
        # bulk load: 10): a publish copies the file and the marts' refresh reads the table,
        # both growing with it (a 16M-line load spent ~9 s on them every 30 s)
        self.publish_share = publish_share
        self._publish_seconds = 0.0
        self._rows_cached = 0  # written since DuckDB's pool last let go of written blocks
        self._open()
        if publish_on_open:
            self.publish()
        else:  # the first publish one interval after opening, not at the first write
            self._published_at = self._marts_refreshed_at = time.monotonic()

    def _open(self) -> duckdb.DuckDBPyConnection:
        """Take the turn and open the file (a fresh instance: it sees the other writer's work)."""
        if self._conn is None:
            self._turn.acquire(self.turn_timeout)
            try:
                # a bigger WAL before an automatic checkpoint (publishing checkpoints anyway):
                # per-chunk commits of a bulk load cost less than at the default 16 MB.
                # Writes on one thread: a second one made an insert no faster (its Arrow scan
                # and compression are one pipeline) but cost ~15 % more CPU, which a bulk load's
                # other sinks need; the marts' refresh gets every core (_all_cores).
                self._conn = duckdb.connect(str(self.path), config={"memory_limit": self.memory_limit,
                                                                    "checkpoint_threshold": "64MB",
                                                                    "threads": 1})
                self._conn.execute(FACT_DDL)
                if self._create_marts():
                    self._marts_stale_since = EARLIEST
            except BaseException:
                self._conn = None
                self._turn.release()
                raise
        return self._conn

    def release(self) -> None:
        """Bring the marts up to date, close the file and give up the turn (what was
        written stays unpublished until publish())."""
        if self._conn is not None and self._marts_stale_since is not None:
            self.refresh_marts()  # the next writer finds marts that match the facts
        self._let_go()

    def _let_go(self) -> None:
        """Close the file (checkpointing: the file alone holds every commit) and give up the turn."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
        self._written.forget()  # another writer may write the file now
        self._turn.release()

    def write(self, table: EventTable) -> int:
        if table.num_rows == 0:
            return 0
        table = first_occurrences(table, set())
        conn = self._open()
        fresh = self._written.fresh(conn, table)
        conn.register("batch", table)
        try:
            earliest = pc.min(table["invoice_date"]).as_py()
            conn.execute("BEGIN")
            if fresh:
                new = conn.execute(_INSERT).fetchone()[0]
            else:
                ids = pc.min_max(table["event_id"])
                new = conn.execute(_MERGE, {"first_id": ids["min"].as_py(), "last_id": ids["max"].as_py()}).fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._written.forget()
            raise
        finally:
            conn.unregister("batch")
        if fresh:
            self._written.inserted(fresh)
        if new:
            self._dirty = True
            stale = self._marts_stale_since
            self._marts_stale_since = earliest if stale is None else min(stale, earliest)
            self._rows_cached += new
            if self._rows_cached >= UNCACHE_EVERY_ROWS:
                self._uncache(conn)
            now = self._written_at = time.monotonic()
            if now - self._published_at >= max(self.snapshot_interval, self.publish_share * self._publish_seconds):
                # while lines keep coming, the marts catch up every marts_interval (their
                # refresh costs more than a snapshot); once they stop, caught_up() refreshes
                self._publish(refresh=now - self._marts_refreshed_at >= self.marts_interval)
                self._publish_seconds = time.monotonic() - now
        if self._turn.others_waiting():
            self.release()
        return new

    def _uncache(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Let DuckDB's pool drop the blocks it keeps of what was written (they are in the
        file): it keeps every one up to its limit, so a long load's RSS grew with its rows
        (~22 MiB a million lines: 122 MiB at 5.4M). Lowering the limit evicts them; it is
        set back at once. Evicting less than asked (pinned blocks) is no error here."""
        self._rows_cached = 0
        try:
            conn.execute("SET memory_limit = '1MB'")
        except duckdb.OutOfMemoryException:
            pass  # what could be evicted was
        finally:
            conn.execute(f"SET memory_limit = '{self.memory_limit}'")

    def caught_up(self) -> None:
        """The loader has read everything (it calls this often while idle): publish what is
        unpublished once snapshot_interval has passed since the last publish, with the marts
        once lines have stopped for that long (or marts_interval has passed), and let go of
        the file when another writer waits. Publishing at every catch-up instead (the loader
        catches up between requests) refreshed the marts, checkpointed, copied the file and
        reopened it ~30 times for the reference file: more than the writes themselves."""
        if self._turn.others_waiting():
            self.publish()
            return
        now = time.monotonic()
        if now - self._published_at < self.snapshot_interval:
            return
        stale = self._marts_stale_since is not None
        refresh = stale and (now - self._written_at >= self.snapshot_interval
                             or now - self._marts_refreshed_at >= self.marts_interval)
        if self._dirty or refresh:
            self._publish(refresh=refresh)

    def publish(self, keep: bool = False) -> None:
        """Bring the marts up to date, copy the checkpointed file to the snapshot path
        atomically, then, unless `keep`, let go of the file (what a writer calls when idle)."""
        self._publish(refresh=True)
        if not keep:
            self.release()

    def _publish(self, refresh: bool) -> None:
        if refresh and self._marts_stale_since is not None:
            self._open()
            self.refresh_marts()
            self._dirty = True
        if not self._dirty:
            return
        conn = self._open()
        conn.execute("CHECKPOINT")
        tmp = self.snapshot_path.with_name(f".{self.snapshot_path.name}.tmp-{os.getpid()}")
        shutil.copyfile(self.path, tmp)
        os.replace(tmp, self.snapshot_path)
        self._dirty = False
        self._published_at = time.monotonic()

    def _create_marts(self) -> bool:
        """Create the marts; True if they must be rebuilt (new, of another version, or behind
        the facts after a crash between a write and a publish)."""
        conn = self._conn
        try:
            version, built_from, lines = conn.execute(MARTS_STATE).fetchone()
        except (duckdb.CatalogException, duckdb.BinderException):  # no marts, or older ones
            version, built_from, lines = -1, None, None
        if version not in (None, MARTS_VERSION):
            for table in MART_TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            version = None
        for ddl in MART_DDL:
            conn.execute(ddl)
        return version is None or built_from != lines

    def refresh_marts(self, since: datetime | None = None) -> None:
        """Recompute what lines written since the last refresh changed (or everything from
        `since` on), in one transaction."""
        stale = self._marts_stale_since
        since = stale if since is None else min(since, stale or since)
        if since is None:
            return
        self._open()
        try:
            self._refresh_marts_from(since)
        except duckdb.OutOfMemoryException:
            # after a long run of appends the writer's buffer pool holds what it cannot
            # evict (a 16M-line bulk load's last refresh failed at 160 MB, where the same
            # refresh on a fresh connection needed less than 100): reopen, try once more
            log.warning("the marts' refresh ran out of DuckDB's memory (%s): reopening to try again",
                        self.memory_limit)
            self._let_go()
            self._open()
            self._refresh_marts_from(since)
        self._marts_stale_since = None
        self._marts_refreshed_at = time.monotonic()

    def _refresh_marts_from(self, since: datetime) -> None:
        conn = self._conn
        with _all_cores(conn):
            conn.execute("BEGIN")
            try:
                for statement in MART_REBUILD_DUCKDB if since <= EARLIEST else MART_REFRESH_DUCKDB:
                    conn.execute(*_bind(statement, {"since": since}))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def totals(self) -> Totals:
        lines, amount = self._open().execute(TOTALS_SQL).fetchone()
        if self._turn.others_waiting():
            self.release()
        return Totals(lines, int(amount * 1000))

    def close(self) -> None:
        self.publish()


@contextmanager
def _all_cores(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Queries (the marts' aggregates) scale with threads, where the writes did not."""
    conn.execute(f"SET threads = {os.cpu_count() or 1}")
    try:
        yield
    finally:
        conn.execute("SET threads = 1")


_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=256)
def duckdb_sql(sql: str) -> tuple[str, frozenset[str]]:
    """The domain's `:name` parameters in DuckDB's spelling, `$name`, and their names."""
    return _PARAMETER.sub(r"$\1", sql), frozenset(_PARAMETER.findall(sql))


def _bind(sql: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    text, names = duckdb_sql(sql)
    # DuckDB rejects unused parameters; SQLAlchemy ignores them, and so do we
    return text, ({name: params[name] for name in names} if names else None)


def snapshot_path_for(path: Path) -> Path:
    return path.with_name(path.stem + ".snapshot" + path.suffix)


class DuckDBSnapshotReader:
    """Reads the latest published snapshot; reopens it when the loader publishes anew."""

    def __init__(self, path: Path) -> None:
        self.snapshot_path = snapshot_path_for(path)
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._identity: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def connection(self) -> duckdb.DuckDBPyConnection | None:
        """A cursor on the newest snapshot (thread-safe), or None before the first one."""
        try:
            st = os.stat(self.snapshot_path)
        except FileNotFoundError:
            return None
        identity = (st.st_ino, st.st_mtime_ns)
        with self._lock:
            if identity != self._identity:
                # ATTACH into a fresh in-memory database: duckdb.connect(path) would hand
                # back the cached instance of the file this process opened before.
                # The old connection is dropped, not closed: cursors other threads still
                # use keep it alive until they finish.
                conn = duckdb.connect(":memory:")
                quoted = str(self.snapshot_path).replace("'", "''")
                conn.execute(f"ATTACH '{quoted}' AS warehouse (READ_ONLY)")
                self._conn = conn
                self._identity = identity
            cursor = self._conn.cursor()
        cursor.execute("USE warehouse")
        return cursor

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        conn = self.connection()
        if conn is None:
            raise WarehouseNotReady("the warehouse has published nothing yet: is the warehouse-loader running?")
        try:
            return conn.execute(*_bind(sql, params)).fetchall()
        except (duckdb.CatalogException, duckdb.BinderException) as error:
            # a snapshot from before these marts (the loader rebuilds them when it starts)
            raise WarehouseNotReady(f"the published warehouse's marts are out of date ({error})") from None
        finally:
            conn.close()

    def write(self, table: EventTable) -> int:
        raise PermissionError("the warehouse snapshot is read-only; the warehouse-loader writes")

    def publish(self) -> None:
        pass

    def caught_up(self) -> None:
        pass

    def totals(self) -> Totals:
        conn = self.connection()
        if conn is None:
            return Totals(0, 0)
        try:
            lines, amount = conn.execute(TOTALS_SQL).fetchone()
        finally:
            conn.close()
        return Totals(lines, int(amount * 1000))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
