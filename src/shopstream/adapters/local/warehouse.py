"""The local warehouse: DuckDB.

DuckDB lets one process write a database file, and no other process read it
meanwhile. So the warehouse-loader owns `warehouse.duckdb`, and after it commits it
publishes a copy, `warehouse.snapshot.duckdb`, which readers (analytics-api,
verify) open read-only; they reopen when a newer copy appears. Publishing is
throttled (SHOPSTREAM_SNAPSHOT_INTERVAL_SECONDS) and always happens when the loader
goes idle, so readers lag the loader by at most that interval.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import duckdb

from shopstream.domain.columnar import EventTable
from shopstream.domain.line import Totals
from shopstream.domain.warehouse_sql import FACT_COLUMNS, FACT_DDL, FACT_TABLE, TOTALS_SQL

# Insert only event ids the table does not have yet (and each once per batch).
_MERGE = f"""
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
WHERE NOT EXISTS (SELECT 1 FROM {FACT_TABLE} f WHERE f.event_id = b.event_id)
QUALIFY row_number() OVER (PARTITION BY event_id) = 1
"""


class DuckDBWarehouse:
    """Writer: owns the database file. Use `DuckDBSnapshotReader` to read from elsewhere."""

    def __init__(self, path: Path, snapshot_interval: float = 1.0) -> None:
        self.path = path
        self.snapshot_path = snapshot_path_for(path)
        self.snapshot_interval = snapshot_interval
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = duckdb.connect(str(path))
        self._conn.execute(FACT_DDL)
        # Publish once on start: a loader killed after a commit but before publishing
        # would otherwise leave readers on an older snapshot until new lines arrive.
        self._dirty = True
        self._published_at = 0.0
        self.publish()

    def write(self, table: EventTable) -> int:
        if table.num_rows == 0:
            return 0
        conn = self._conn
        conn.register("batch", table)
        try:
            conn.execute("BEGIN")
            new = conn.execute(_MERGE).fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.unregister("batch")
        if new:
            self._dirty = True
            if time.monotonic() - self._published_at >= self.snapshot_interval:
                self.publish()
        return new

    def publish(self) -> None:
        """Copy the checkpointed file to the snapshot path, atomically."""
        if not self._dirty:
            return
        self._conn.execute("CHECKPOINT")
        tmp = self.snapshot_path.with_name(f".{self.snapshot_path.name}.tmp-{os.getpid()}")
        shutil.copyfile(self.path, tmp)
        os.replace(tmp, self.snapshot_path)
        self._dirty = False
        self._published_at = time.monotonic()

    def totals(self) -> Totals:
        lines, amount = self._conn.execute(TOTALS_SQL).fetchone()
        return Totals(lines, int(amount * 1000))

    def close(self) -> None:
        self.publish()
        self._conn.close()


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

    def write(self, table: EventTable) -> int:
        raise PermissionError("the warehouse snapshot is read-only; the warehouse-loader writes")

    def publish(self) -> None:
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
