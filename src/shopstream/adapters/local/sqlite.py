"""SQLite connections shared by the local adapters: WAL, so readers never block the writer."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def connect(
    path: Path, synchronous: str = "NORMAL", read_only: bool = False, busy_timeout: float = 30.0,
    cache_mb: int = 64, page_size: int | None = None,
) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False, cached_statements=256
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    if not read_only:
        if page_size:  # only a new (empty) database takes it, and only before WAL mode is set
            conn.execute(f"PRAGMA page_size = {int(page_size)}")
        conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a committed transaction survives any process crash (SIGKILL);
    # FULL also survives power loss, at an fsync per commit.
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute(f"PRAGMA cache_size = -{cache_mb * 1024}")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class PerThread:
    """One connection per thread (FastAPI runs sync endpoints on a thread pool)."""

    def __init__(
        self, path: Path, synchronous: str = "NORMAL", setup: str | None = None, busy_timeout: float = 30.0,
        cache_mb: int = 64, page_size: int | None = None,
    ) -> None:
        self.path = path
        self.page_size = page_size
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.cache_mb = cache_mb
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if setup:
            conn = self.get()
            conn.executescript(setup)

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, self.synchronous, busy_timeout=self.busy_timeout,
                                                  cache_mb=self.cache_mb, page_size=self.page_size)
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
