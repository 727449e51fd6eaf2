"""The aws profile's test environment: moto's server and a PostgreSQL database, once per session.

Both start on first use (the contract backends, the aws tests) and stop when the
session ends. moto runs as its own process (`moto_server`), like the emulator in the
docker-compose setup, so its CPU does not share the test process's GIL. Each test
names its own stream, bucket, tables and warehouse schema, so tests never share state.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.conftest import free_port

REGION = "eu-west-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
PG_ADMIN_URL = os.environ.get("SHOPSTREAM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

_moto: dict[str, object] = {}
_pg: dict[str, str] = {}


def moto_endpoint() -> str:
    if "url" not in _moto:
        os.environ.update(CREDENTIALS)  # boto3 in this process signs requests with these
        port = free_port()
        log = open(os.devnull, "wb")
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto's server did not start on {url} (is moto[server] installed?)")
                time.sleep(0.1)
        _moto.update(url=url, process=process)
        atexit.register(_stop_moto)
    return str(_moto["url"])


@contextmanager
def moto_at(url: str) -> Iterator[None]:
    """Within this block, every aws test resource lives on the moto server at `url` (e.g. a container)."""
    saved = dict(_moto)
    os.environ.update(CREDENTIALS)
    _moto.clear()
    _moto["url"] = url
    try:
        yield
    finally:
        _moto.clear()
        _moto.update(saved)


def _stop_moto() -> None:
    process = _moto.get("process")
    if isinstance(process, subprocess.Popen):
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def pg_url() -> str:
    """A database of this session's own on the local PostgreSQL (dropped at exit)."""
    if "url" not in _pg:
        import sqlalchemy as sa
        from sqlalchemy.engine import make_url

        name = f"shopstream_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except sa.exc.OperationalError as error:
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (set SHOPSTREAM_TEST_PG_URL): {error}")
        admin.dispose()
        _pg["name"] = name
        _pg["url"] = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        atexit.register(_drop_database)
    return _pg["url"]


def _drop_database() -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{_pg["name"]}" WITH (FORCE)')
    admin.dispose()


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def aws_settings(**overrides):
    """Settings for a fresh set of aws resources on the session's moto server and database."""
    from shopstream.config import Settings

    name = unique()
    values = dict(
        profile="aws", aws_endpoint_url=moto_endpoint(), aws_region=REGION, stream_name=name,
        lake_uri=f"s3://{name}/lake", table_name=name, warehouse_url=pg_url(), kinesis_shards=4,
        kinesis_poll_seconds=0.1, lease_seconds=3.0,
    )
    return Settings(**(values | overrides))


def aws_env(settings) -> dict[str, str]:
    """The same settings as environment variables, for processes (`shopstream up`, consumers)."""
    return CREDENTIALS | {
        "SHOPSTREAM_PROFILE": "aws",
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
        "AWS_REGION": settings.aws_region,
        "SHOPSTREAM_STREAM_NAME": settings.stream_name,
        "SHOPSTREAM_LAKE_URI": settings.lake_uri,
        "SHOPSTREAM_TABLE_NAME": settings.table_name,
        "SHOPSTREAM_WAREHOUSE_URL": settings.warehouse_url,
        "SHOPSTREAM_KINESIS_SHARDS": str(settings.kinesis_shards),
        "SHOPSTREAM_KINESIS_POLL_SECONDS": str(settings.kinesis_poll_seconds),
        "SHOPSTREAM_LEASE_SECONDS": str(settings.lease_seconds),
    }


def provisioned(**overrides):
    """Settings whose stream, bucket and tables exist (what `shopstream init` creates)."""
    from shopstream.adapters.aws.clients import Aws
    from shopstream.adapters.aws.resources import Names, create_missing

    settings = aws_settings(**overrides)
    aws = Aws.from_settings(settings)
    create_missing(aws, Names.from_settings(settings), settings.kinesis_shards)
    aws.close()
    return settings
