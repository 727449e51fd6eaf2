"""One configuration per adapter: the contract suites run against each (as Feast's universal tests do).

Adding a backend means adding a factory here, nothing else. A factory takes a fresh
temporary directory and returns the port (or, for the warehouse, writer and reader).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from shopstream.adapters.local.dead_letters import LocalDeadLetters
from shopstream.adapters.local.lake import LocalLake
from shopstream.adapters.local.log import LocalLog
from shopstream.adapters.local.store import SqliteStore
from shopstream.adapters.local.warehouse import DuckDBSnapshotReader, DuckDBWarehouse


@dataclass
class WarehousePair:
    writer: Any
    reader_factory: Callable[[], Any]


def local_warehouse(tmp: Path) -> WarehousePair:
    path = tmp / "warehouse.duckdb"
    return WarehousePair(DuckDBWarehouse(path, snapshot_interval=3600), lambda: DuckDBSnapshotReader(path))


# name -> factory(tmp_path)
STREAMS: dict[str, Callable[[Path], Any]] = {"local": lambda tmp: LocalLog(tmp / "stream.sqlite3", partitions=4)}
LAKES: dict[str, Callable[[Path], Any]] = {"local": lambda tmp: LocalLake(tmp / "lake")}
STORES: dict[str, Callable[[Path], Any]] = {"local": lambda tmp: SqliteStore(tmp / "store.sqlite3")}
WAREHOUSES: dict[str, Callable[[Path], WarehousePair]] = {"local": local_warehouse}
DEAD_LETTERS: dict[str, Callable[[Path], Any]] = {"local": lambda tmp: LocalDeadLetters(tmp / "dl.sqlite3")}
