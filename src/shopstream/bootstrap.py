"""The one place that picks adapters: settings in, ports out.

Services ask the container for the ports they use; each is built on first use, so a
consumer process opens only its own sink.
"""

from __future__ import annotations

from functools import cached_property

from shopstream.auth.keyring import KeyRing
from shopstream.config import Settings
from shopstream.ports import AnalyticsSource, DeadLetters, RawLake, Store, Stream, Warehouse


class Container:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        if self.settings.profile != "local":
            raise NotImplementedError(
                f"profile {self.settings.profile!r} is not available yet; use SHOPSTREAM_PROFILE=local"
            )

    @cached_property
    def stream(self) -> Stream:
        from shopstream.adapters.local.log import LocalLog

        s = self.settings
        return LocalLog(s.stream_path, s.partitions, s.stream_sync)

    @cached_property
    def dead_letters(self) -> DeadLetters:
        from shopstream.adapters.local.dead_letters import LocalDeadLetters

        return LocalDeadLetters(self.settings.dead_letters_path, self.settings.stream_sync)

    @cached_property
    def lake(self) -> RawLake:
        from shopstream.adapters.local.lake import LocalLake

        return LocalLake(self.settings.lake_dir)

    @cached_property
    def store(self) -> Store:
        from shopstream.adapters.local.store import SqliteStore

        return SqliteStore(self.settings.store_path, busy_timeout=self.settings.sqlite_busy_timeout_seconds)

    @cached_property
    def warehouse(self) -> Warehouse:
        """The writer: only the warehouse-loader (or a bulk load) opens this."""
        from shopstream.adapters.local.warehouse import DuckDBWarehouse

        s = self.settings
        return DuckDBWarehouse(s.warehouse_path, s.snapshot_interval_seconds, s.marts_interval_seconds)

    @cached_property
    def warehouse_reader(self) -> Warehouse:
        from shopstream.adapters.local.warehouse import DuckDBSnapshotReader

        return DuckDBSnapshotReader(self.settings.warehouse_path)

    @cached_property
    def analytics(self) -> AnalyticsSource:
        """Read-only metric queries (analytics-api): the snapshot reader answers them."""
        return self.warehouse_reader

    @cached_property
    def keyring(self) -> KeyRing:
        """API keys and customer tokens from every configured source (docs/security.md)."""
        s = self.settings
        return KeyRing(s.api_keys, s.keys_file, s.api_keys_secret_arn, s.api_keys_refresh_seconds).start()

    def close(self) -> None:
        self.__dict__.pop("analytics", None)  # the warehouse reader, closed below
        for name in ("stream", "dead_letters", "lake", "store", "warehouse", "warehouse_reader", "keyring"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()
