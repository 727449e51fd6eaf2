"""Settings: one typed place, read from SHOPSTREAM_* environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_", extra="ignore")

    profile: Literal["local", "aws"] = "local"
    data_dir: Path = Path("shopstream-data")

    # network
    host: str = "127.0.0.1"
    ingest_port: int = 8000
    invoice_port: int = 8001
    analytics_port: int = 8002

    # ingest
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
