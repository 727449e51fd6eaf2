"""Settings: one typed place, read from SHOPSTREAM_* environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_", extra="ignore", populate_by_name=True)

    profile: Literal["local", "aws"] = "local"
    data_dir: Path = Path("shopstream-data")

    # network
    host: str = "127.0.0.1"
    ingest_port: int = 8000
    invoice_port: int = 8001
    analytics_port: int = 8002

    # ingest
    # processes serving the ingest API (uvicorn workers on one port): parsing is Python, so
    # one process uses one core; on the aws profile scale tasks instead
    ingest_workers: int = Field(1, ge=1, le=32)
    max_body_bytes: int = 16 * 1024 * 1024  # compressed and decompressed
    max_lines_per_request: int = 100_000
    shop_timezone: str = "Europe/London"

    # stream
    partitions: int = 8
    stream_sync: Literal["NORMAL", "FULL"] = "NORMAL"  # NORMAL survives SIGKILL; FULL power loss

    # consumers
    consumer_batch_size: int = 20_000
    consumer_poll_seconds: float = 0.05
    snapshot_interval_seconds: float = 1.0  # how often the warehouse publishes for readers
    marts_interval_seconds: float = 5.0  # while loading, how often the analytics marts catch up
    warehouse_memory_limit: str = "160MB"  # DuckDB's buffer pool for the writer; beyond it, it spills to disk
    # each consumer's operations HTTP server (/health, /ready, /metrics); 0 = none
    s3_archiver_port: int = 0
    dynamo_writer_port: int = 0
    warehouse_loader_port: int = 0
    sqlite_busy_timeout_seconds: float = 30.0  # a locked store: wait this long, then fail and back off

    # security and operations (docs/security.md)
    auth_enabled: bool = True
    api_keys: str | None = None  # JSON key records (hashed), e.g. from an ECS secret
    # a client's key (send, verify...); services accept it too, scope admin: the compose dev key
    api_key: str | None = None
    api_keys_file: Path | None = None  # default <data_dir>/api-keys.json
    api_keys_secret_arn: str | None = None  # AWS Secrets Manager secret holding key records
    api_keys_refresh_seconds: float = 60.0  # how often the secret is re-read
    rate_limit_per_second: float = 100.0  # per key and service process; 0 = no limit
    rate_limit_burst: int = 200
    cors_origins: list[str] = []  # none: CORS off
    public_docs: bool = False  # /docs, /redoc and /openapi.json without a key
    log_format: Literal["json", "text"] = "json"

    @cached_property
    def keys_file(self) -> Path:
        return self.api_keys_file or self.data_dir / "api-keys.json"

    @cached_property
    def dev_key_path(self) -> Path:
        return self.data_dir / "dev-api-key"

    # aws profile (docs/aws.md). Endpoint, region and credentials are the standard AWS ones.
    aws_endpoint_url: str | None = Field(None, validation_alias=AliasChoices("AWS_ENDPOINT_URL", "aws_endpoint_url"))
    aws_region: str | None = Field(
        None, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "aws_region")
    )
    stream_name: str = "shopstream"  # Kinesis
    lake_uri: str = "s3://shopstream-lake"  # s3://bucket[/prefix]
    table_name: str = "shopstream"  # DynamoDB; companions <name>-ledger, -lake-index, -leases
    warehouse_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/shopstream"  # or redshift+redshift_connector://
    warehouse_password: str | None = None  # replaces the URL's password (an ECS secret)
    kinesis_shards: int = 4  # what `init` creates
    kinesis_hash_groups: int = 64  # invoices map to this many explicit hash keys (the most shards that get load)
    kinesis_poll_seconds: float = 1.0  # wait before polling a caught-up shard again (5 reads/s/shard on AWS)
    lease_seconds: float = 10.0  # a dead consumer task's shards are taken over after this

    # bulk loads on the aws profile (docs/aws.md "Bulk loads")
    warehouse_copy_role_arn: str | None = None  # Redshift: COPY staged Parquet from S3 with this IAM role
    staging_uri: str | None = None  # s3://bucket[/prefix] for staged Parquet; default <lake URI>/staging

    # bulk-loader (the inbox service)
    bulk_inbox: str | None = None  # a directory or s3://bucket/prefix/ (aws); default <data_dir>/inbox
    bulk_schedule: str = "* * * * *"  # cron; a 6th field is seconds ("* * * * * */10")
    bulk_settle_seconds: float = 2.0  # a file must be unchanged this long (still being copied?)
    bulk_once: bool = False  # scan the inbox once and exit (a scheduled ECS task) instead of the schedule
    bulk_claim_seconds: float = 60.0  # an S3 inbox claim's lease, renewed while loading
    bulk_max_attempts: int = 5  # a file whose load fails this often (a sink keeps failing) goes to failed/
    # how often a bulk load publishes the warehouse mid-file (it always does when done): each
    # publish refreshes the marts and copies the database, which at the streaming interval
    # (1 s) cost a bulk load of the reference file a third of its time
    bulk_snapshot_interval_seconds: float = 30.0

    @cached_property
    def bulk_inbox_uri(self) -> str:
        return self.bulk_inbox or str(self.data_dir / "inbox")

    @cached_property
    def warehouse_dsn(self) -> str:
        """warehouse_url with warehouse_password merged in, if one is set."""
        if self.warehouse_password is None:
            return self.warehouse_url
        from sqlalchemy.engine import make_url

        return make_url(self.warehouse_url).set(password=self.warehouse_password).render_as_string(hide_password=False)

    @cached_property
    def bulk_inbox_dir(self) -> Path:
        return Path(self.bulk_inbox_uri)

    @cached_property
    def staging(self) -> str:
        return self.staging_uri or self.lake_uri.rstrip("/") + "/staging"

    @cached_property
    def bulk_heartbeat_path(self) -> Path:
        return self.data_dir / "bulk-loader.heartbeat"

    @cached_property
    def stream_path(self) -> Path:
        return self.data_dir / "stream.sqlite3"

    @cached_property
    def dead_letters_path(self) -> Path:
        return self.data_dir / "dead-letters.sqlite3"

    @cached_property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @cached_property
    def store_path(self) -> Path:
        return self.data_dir / "store.sqlite3"

    @cached_property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"
