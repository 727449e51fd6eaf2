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


# -- the aws profile: moto's server and PostgreSQL (tests/awsenv.py starts them once) ---------


def _aws(tmp: Path):
    from shopstream.adapters.aws.clients import Aws
    from shopstream.adapters.aws.resources import Names
    from tests.awsenv import provisioned

    settings = provisioned()
    return settings, Aws.from_settings(settings), Names.from_settings(settings)


def aws_stream(tmp: Path):
    from shopstream.adapters.aws.kinesis import KinesisStream

    settings, aws, names = _aws(tmp)
    return KinesisStream(aws, names.stream, names.ledger_table, names.lease_table, hash_groups=16,
                         poll_seconds=0.05, lease_seconds=settings.lease_seconds)


def aws_lake(tmp: Path):
    from shopstream.adapters.aws.s3 import S3Lake

    _, aws, names = _aws(tmp)
    return S3Lake(aws, names.bucket, names.prefix, names.lake_index_table)


def aws_store(tmp: Path):
    from shopstream.adapters.aws.dynamodb import DynamoStore

    _, aws, names = _aws(tmp)
    return DynamoStore(aws, names.table)


def aws_dead_letters(tmp: Path):
    from shopstream.adapters.aws.s3 import S3DeadLetters

    _, aws, names = _aws(tmp)
    return S3DeadLetters(aws, names.bucket, names.prefix)


def postgres_warehouse(tmp: Path) -> WarehousePair:
    import sqlalchemy as sa

    from shopstream.adapters.aws.redshift import SqlWarehouse
    from tests.awsenv import pg_url, unique

    url, schema = pg_url(), unique("w").replace("-", "_")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    writer = SqlWarehouse(url, schema)
    writer.create_schema()
    return WarehousePair(writer, lambda: SqlWarehouse(url, schema))


STREAMS["aws"] = aws_stream
LAKES["aws"] = aws_lake
STORES["aws"] = aws_store
WAREHOUSES["postgres"] = postgres_warehouse
DEAD_LETTERS["aws"] = aws_dead_letters
