"""The one place that picks adapters: settings in, ports out.

Services ask the container for the ports they use; each is built on first use, so a
consumer process opens only its own sink.
"""

from __future__ import annotations

from functools import cached_property

from shopstream.auth.keyring import KeyRing
from shopstream.config import Settings
from shopstream.ports import (
    AnalyticsSource,
    DeadLetters,
    FileSource,
    Inbox,
    RawLake,
    Store,
    Stream,
    Warehouse,
)


class Container:
    def __init__(self, settings: Settings | None = None, bulk: bool = False) -> None:
        """`bulk`: for a bulk load (the CLI's or the bulk-loader's), which publishes the
        warehouse less often than the streaming loader."""
        self.settings = settings or Settings()
        self.aws_profile = self.settings.profile == "aws"
        self.bulk = bulk
        # SQLite page cache per connection: a bulk load writes mostly new pages in key order;
        # at 16 MB it loaded the 10x file as fast as at 64 MB, with ~110 MB less RSS
        self.sqlite_cache_mb = 16 if bulk else 64

    def _aws(self):
        """A fresh client holder per port: each closes its own thread pool."""
        try:
            from shopstream.adapters.aws.clients import Aws
            from shopstream.adapters.aws.resources import Names
        except ImportError as error:
            raise RuntimeError(f"the aws profile needs the aws extra: pip install 'shopstream[aws]' ({error})") from None
        return Aws.from_settings(self.settings), Names.from_settings(self.settings)

    def init_resources(self) -> list[str]:
        """Create whatever is missing (stream, lake, store, warehouse); idempotent. Returns what it created."""
        if not self.aws_profile:
            for port in ("stream", "dead_letters", "lake", "store", "warehouse"):
                getattr(self, port)
            return []
        from shopstream.adapters.aws.resources import create_missing

        aws, names = self._aws()
        created = create_missing(aws, names, self.settings.kinesis_shards)
        self.warehouse.create_schema()
        return created

    @cached_property
    def stream(self) -> Stream:
        if self.aws_profile:
            from shopstream.adapters.aws.kinesis import KinesisStream

            aws, names = self._aws()
            s = self.settings
            return KinesisStream(aws, names.stream, names.ledger_table, names.lease_table, s.kinesis_hash_groups,
                                 s.kinesis_poll_seconds, s.lease_seconds)
        from shopstream.adapters.local.log import LocalLog

        s = self.settings
        return LocalLog(s.stream_path, s.partitions, s.stream_sync, cache_mb=self.sqlite_cache_mb)

    @cached_property
    def dead_letters(self) -> DeadLetters:
        if self.aws_profile:
            from shopstream.adapters.aws.s3 import S3DeadLetters

            aws, names = self._aws()
            return S3DeadLetters(aws, names.bucket, names.prefix)
        from shopstream.adapters.local.dead_letters import LocalDeadLetters

        return LocalDeadLetters(self.settings.dead_letters_path, self.settings.stream_sync,
                                cache_mb=self.sqlite_cache_mb)

    @cached_property
    def lake(self) -> RawLake:
        if self.aws_profile:
            from shopstream.adapters.aws.s3 import S3Lake

            aws, names = self._aws()
            return S3Lake(aws, names.bucket, names.prefix, names.lake_index_table)
        from shopstream.adapters.local.lake import LocalLake

        return LocalLake(self.settings.lake_dir)

    @cached_property
    def store(self) -> Store:
        if self.aws_profile:
            from shopstream.adapters.aws.dynamodb import DynamoStore

            aws, names = self._aws()
            return DynamoStore(aws, names.table)
        from shopstream.adapters.local.store import SqliteStore

        return SqliteStore(self.settings.store_path, busy_timeout=self.settings.sqlite_busy_timeout_seconds,
                           cache_mb=self.sqlite_cache_mb)

    @cached_property
    def warehouse(self) -> Warehouse:
        """The writer: only the warehouse-loader (or a bulk load) opens this."""
        if self.aws_profile:
            from shopstream.adapters.aws.redshift import SqlWarehouse

            s = self.settings
            stage = None
            if s.warehouse_url.startswith("redshift") and s.warehouse_copy_role_arn:
                from shopstream.adapters.aws.redshift_copy import S3ParquetCopy

                stage = S3ParquetCopy(self._aws()[0], s.staging, s.warehouse_copy_role_arn)
            return SqlWarehouse(s.warehouse_dsn, marts_interval=s.marts_interval_seconds, stage=stage)
        from shopstream.adapters.local.warehouse import DuckDBWarehouse

        s = self.settings
        interval = s.bulk_snapshot_interval_seconds if self.bulk else s.snapshot_interval_seconds
        return DuckDBWarehouse(s.warehouse_path, interval, s.marts_interval_seconds,
                               memory_limit=s.warehouse_memory_limit, publish_on_open=not self.bulk,
                               publish_share=10.0 if self.bulk else 0.0)

    @cached_property
    def files(self) -> FileSource:
        """Where `bulk-load` reads a file from: paths; s3:// URIs too on the aws profile."""
        if self.aws_profile:
            from shopstream.adapters.aws.s3_files import S3Files

            return S3Files(self._aws()[0])
        from shopstream.adapters.local.inbox import LocalFiles

        return LocalFiles()

    @cached_property
    def inbox(self) -> Inbox:
        """The bulk-loader's inbox: an S3 prefix (aws profile) or a directory."""
        s = self.settings
        if s.bulk_inbox_uri.startswith("s3://"):
            if not self.aws_profile:
                raise RuntimeError(f"SHOPSTREAM_BULK_INBOX={s.bulk_inbox_uri}: "
                                   "an S3 inbox needs SHOPSTREAM_PROFILE=aws")
            from shopstream.adapters.aws.inbox import S3Inbox

            aws, names = self._aws()
            return S3Inbox(aws, s.bulk_inbox_uri, names.lease_table, s.bulk_settle_seconds,
                           s.bulk_claim_seconds)
        from shopstream.adapters.local.inbox import LocalInbox

        return LocalInbox(s.bulk_inbox_dir, s.bulk_settle_seconds)

    @cached_property
    def warehouse_reader(self) -> Warehouse:
        if self.aws_profile:  # Redshift/PostgreSQL serve readers beside the writer
            from shopstream.adapters.aws.redshift import SqlWarehouse

            return SqlWarehouse(self.settings.warehouse_dsn, marts_interval=self.settings.marts_interval_seconds)
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
        return KeyRing(s.api_keys, s.keys_file, s.api_keys_secret_arn, s.api_keys_refresh_seconds,
                       accepted_key=s.api_key).start()

    def close(self) -> None:
        self.__dict__.pop("analytics", None)  # the warehouse reader, closed below
        for name in ("stream", "dead_letters", "lake", "store", "warehouse", "warehouse_reader", "keyring"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()
