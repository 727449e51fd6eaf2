"""The bulk path on the aws profile, against moto's server and PostgreSQL: `bulk-load s3://...`
and `verify` exact in S3, DynamoDB and the warehouse; the S3 inbox with two loaders."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import time

import boto3
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.awsenv import PG_ADMIN_URL, aws_env, aws_settings
from tests.bulk_files import reference_rows, totals, write_csv
from tests.conftest import reference_file
from tests.e2e.test_reference_pipeline import verify_rows

LINES = 10_000  # 20,000 measured ~15 s for the first load alone (docs/bulk-load.md): moto's ~0.5 ms per item


def cli(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shopstream", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """A fresh aws profile (bucket, tables, a warehouse database of its own) after `shopstream init`."""
    import os

    settings = aws_settings()
    url = make_url(settings.warehouse_url)
    settings.warehouse_url = url.set(database=f"{url.database}_bulk").render_as_string(hide_password=False)
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200", SHOPSTREAM_DATA_DIR=str(tmp_path_factory.mktemp("data")),
               **aws_env(settings))
    init = cli(env, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    s3 = boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region)
    yield env, settings, s3
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(settings.warehouse_url).database}" WITH (FORCE)')
    engine.dispose()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The first reference lines as a .csv.gz, and their count and money (computed with Decimal)."""
    folder = tmp_path_factory.mktemp("sample")
    plain = folder / f"first-{LINES}.csv"
    write_csv(plain, list(reference_rows(reference_file(), LINES)))
    path = folder / f"first-{LINES}.csv.gz"
    with open(plain, "rb") as src, gzip.open(path, "wb") as out:
        shutil.copyfileobj(src, out)
    lines, money = totals(reference_rows(reference_file(), LINES))
    return path, lines, f"{money:,.3f}"


def sinks_match(settings) -> bool:
    """`verify` in-process (a CLI start costs seconds on this machine)."""
    from shopstream.bootstrap import Container
    from shopstream.verify import measure

    container = Container(settings)
    try:
        report = measure(container)
    finally:
        container.close()
    assert report.ok, report
    return report.ok


def bucket_of(settings) -> str:
    return settings.lake_uri.removeprefix("s3://").split("/", 1)[0]


def test_bulk_load_from_s3_is_exact_in_every_sink_and_loading_again_changes_nothing(aws, sample):
    env, settings, s3 = aws
    path, lines, money = sample
    assert lines == LINES
    uri = f"s3://{bucket_of(settings)}/drops/{path.name}"
    s3.upload_file(str(path), bucket_of(settings), f"drops/{path.name}")

    started = time.perf_counter()
    first = cli(env, "bulk-load", uri)
    seconds = time.perf_counter() - started
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{LINES:,} loaded, 0 already present" in first.stdout, first.stdout
    print(f"bulk-load of {LINES:,} lines from S3 (moto + PostgreSQL): {seconds:.1f}s wall")
    check = cli(env, "verify")
    assert check.returncode == 0, check.stdout + check.stderr
    assert set(verify_rows(check.stdout).values()) == {(f"{LINES:,}", money)}, check.stdout

    # the same S3 object again, then the same bytes from a local path: the same event ids
    for source in (uri, str(path)):
        again = cli(env, "bulk-load", source)
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"0 loaded, {LINES:,} already present" in again.stdout, again.stdout
    check = cli(env, "verify")
    assert set(verify_rows(check.stdout).values()) == {(f"{LINES:,}", money)}, check.stdout


def test_bulk_load_of_a_missing_object_is_a_clear_error(aws):
    env, settings, _ = aws
    result = cli(env, "bulk-load", f"s3://{bucket_of(settings)}/drops/nothing-here.csv")
    assert result.returncode == 1 and "no such object" in result.stdout, result.stdout + result.stderr


def test_two_loaders_on_an_s3_inbox_load_each_file_once(aws, tmp_path):
    env, settings, s3 = aws
    bucket, inbox = bucket_of(settings), "inbox/"
    rows = list(reference_rows(reference_file(), LINES + 900))[LINES:]  # lines the other test does not load
    expected = {}
    for i in range(3):
        part = rows[i * 300:(i + 1) * 300]
        path = tmp_path / f"day-{i}.csv"
        write_csv(path, part)
        s3.upload_file(str(path), bucket, f"{inbox}{path.name}")
        expected[path.name] = totals(iter(part))
    s3.put_object(Bucket=bucket, Key=f"{inbox}notes.txt", Body=b"this is not a transaction file\n")
    s3.put_object(Bucket=bucket, Key=f"{inbox}arriving.csv.part", Body=b"still being copied")
    loader_env = env | {"SHOPSTREAM_BULK_INBOX": f"s3://{bucket}/{inbox}", "SHOPSTREAM_BULK_SCHEDULE": "* * * * * *",
                        "SHOPSTREAM_BULK_SETTLE_SECONDS": "0"}
    loaders = [subprocess.Popen([sys.executable, "-m", "shopstream", "service", "bulk-loader"], env=loader_env,
                                stdout=open(tmp_path / f"loader-{i}.log", "wb"), stderr=subprocess.STDOUT)
               for i in range(2)]

    def keys(folder: str) -> list[str]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{inbox}{folder}", Delimiter="/")
        return sorted(o["Key"].removeprefix(f"{inbox}{folder}") for o in listed.get("Contents", []))

    try:
        deadline = time.monotonic() + 90
        while len(keys("processed/")) < 6 or len(keys("failed/")) < 2:
            assert time.monotonic() < deadline, (keys(""), [(tmp_path / f"loader-{i}.log").read_text() for i in (0, 1)])
            assert all(p.poll() is None for p in loaders), "a loader died"
            time.sleep(0.5)
    finally:
        for p in loaders:
            p.terminate()
        codes = [p.wait(60) for p in loaders]
    assert codes == [0, 0]
    names = sorted(expected)
    assert keys("processed/") == sorted(names + [f"{n}.report.json" for n in names])
    assert keys("failed/") == ["notes.txt", "notes.txt.report.json"]
    assert keys("") == ["arriving.csv.part"]  # partial uploads are left alone
    for name in names:
        report = orjson.loads(s3.get_object(Bucket=bucket, Key=f"{inbox}processed/{name}.report.json")["Body"].read())
        lines, money = expected[name]
        assert (report["status"], report["rows"], report["loaded"], report["already_present"]) == (
            "processed", lines, lines, 0), report
        assert report["amount_milli"] == int(money * 1000)
    failed = orjson.loads(s3.get_object(Bucket=bucket, Key=f"{inbox}failed/notes.txt.report.json")["Body"].read())
    assert failed["status"] == "failed" and "lacks" in failed["error"]
    leases = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region)
    claims = leases.scan(TableName=f"{settings.table_name}-leases")["Items"]
    assert [c for c in claims if c["PK"]["S"].startswith("CLAIM#")] == []  # every claim let go
    assert sinks_match(settings)



def test_a_loader_killed_mid_file_leaves_it_to_another_which_loads_it_exactly_once(aws, tmp_path):
    import signal

    env, settings, s3 = aws
    bucket = bucket_of(settings)
    rows = list(reference_rows(reference_file(), LINES + 3_900))[LINES + 900:]
    path = tmp_path / "big.csv"
    write_csv(path, rows)
    s3.upload_file(str(path), bucket, "inbox-kill/big.csv")
    loader_env = env | {"SHOPSTREAM_BULK_INBOX": f"s3://{bucket}/inbox-kill/", "SHOPSTREAM_BULK_SETTLE_SECONDS": "0",
                        "SHOPSTREAM_BULK_SCHEDULE": "* * * * * *", "SHOPSTREAM_BULK_CLAIM_SECONDS": "2"}

    def loader(name: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "shopstream", "service", "bulk-loader"], env=loader_env,
                                stdout=open(tmp_path / f"{name}.log", "wb"), stderr=subprocess.STDOUT)

    ddb = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region)
    claim_key = {"PK": {"S": f"CLAIM#{bucket}/inbox-kill/big.csv"}, "SK": {"S": "CLAIM"}}
    first = loader("first")
    deadline = time.monotonic() + 60
    while "Item" not in ddb.get_item(TableName=f"{settings.table_name}-leases", Key=claim_key):
        assert time.monotonic() < deadline and first.poll() is None, (tmp_path / "first.log").read_text()
        time.sleep(0.1)
    time.sleep(0.5)  # somewhere in the load
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    second = loader("second")
    try:
        report_key = "inbox-kill/processed/big.csv.report.json"
        deadline = time.monotonic() + 60
        while s3.list_objects_v2(Bucket=bucket, Prefix=report_key).get("KeyCount", 0) == 0:
            assert time.monotonic() < deadline and second.poll() is None, (tmp_path / "second.log").read_text()
            time.sleep(0.5)
    finally:
        second.terminate()
        assert second.wait(60) == 0
    report = orjson.loads(s3.get_object(Bucket=bucket, Key=report_key)["Body"].read())
    assert f".{second.pid}." in report["loader"], report  # the first loader did not finish it
    assert report["rows"] == report["loaded"] + report["already_present"] == 3_000, report
    assert "Item" not in ddb.get_item(TableName=f"{settings.table_name}-leases", Key=claim_key)
    assert sinks_match(settings)  # every sink = the accepted lines, exactly

def test_an_s3_claim_is_held_while_renewed_and_taken_over_once_it_expires():
    from shopstream.adapters.aws.clients import Aws
    from shopstream.adapters.aws.inbox import S3Inbox
    from tests.awsenv import provisioned

    settings = provisioned()
    aws = Aws.from_settings(settings)
    bucket = bucket_of(settings)
    aws.client("s3").put_object(Bucket=bucket, Key="inbox/day.csv", Body=b"InvoiceNo\n")
    first, second = (S3Inbox(aws, f"s3://{bucket}/inbox/", f"{settings.table_name}-leases", 0, claim_seconds=1.2)
                     for _ in range(2))
    [entry] = first.pending()
    held = first.claim(entry)
    assert held is not None and second.claim(entry) is None
    time.sleep(2.0)  # longer than the lease: the heartbeat kept it
    assert second.claim(entry) is None
    held.ref.stop.set()  # the first loader stalls (no more heartbeats)
    time.sleep(1.6)
    taken = second.claim(entry)
    assert taken is not None and first.claim(entry) is None
    with second.fetch(taken) as local:
        assert local.path.read_bytes() == b"InvoiceNo\n" and local.label == f"s3://{bucket}/inbox/day.csv"
    second.release(taken)
    aws.close()


@pytest.fixture
def fresh(tmp_path):
    """A Container on fresh aws resources and a warehouse database of its own (in-process loads)."""
    from shopstream.bootstrap import Container
    from tests.awsenv import provisioned, unique

    settings = provisioned()
    url = make_url(settings.warehouse_url)
    settings.warehouse_url = url.set(database=unique("bulk").replace("-", "_")).render_as_string(
        hide_password=False)
    container = Container(settings)
    container.warehouse.create_schema()
    yield container
    container.close()
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(settings.warehouse_url).database}" WITH (FORCE)')
    engine.dispose()


def load_from_s3(container, path, key: str):
    from shopstream.bulk.load import load_file

    bucket = bucket_of(container.settings)
    container.files.aws.client("s3").upload_file(str(path), bucket, key)
    with container.files.open(f"s3://{bucket}/{key}") as local:
        return load_file(local.path, container, chunk_rows=600, digest=local.digest, label=local.label)


@pytest.mark.parametrize("fmt", ["xlsx", "parquet"])
def test_xlsx_and_parquet_objects_give_the_figures_of_their_rows(fresh, tmp_path, fmt):
    from shopstream.domain.line import Totals
    from shopstream.files import content_hash
    from shopstream.verify import measure
    from tests.bulk_files import write_parquet, write_xlsx

    limit = 1_000
    path = tmp_path / f"Online Retail.{fmt}"
    (write_xlsx if fmt == "xlsx" else write_parquet)(reference_file(), path, limit)
    summary = load_from_s3(fresh, path, f"drops/{path.name}")
    assert (summary.format, summary.rows, summary.loaded, summary.rejected) == (fmt, limit, limit, 0)
    assert summary.content_hash == content_hash(path)  # hashed while downloading: the local file's hash
    lines, money = totals(reference_rows(reference_file(), limit))
    report = measure(fresh)
    assert {report.accepted, *report.sinks.values()} == {Totals(lines, int(money * 1000))}


def test_broken_rows_of_an_s3_object_are_dead_lettered_with_their_row_numbers(fresh, tmp_path):
    from shopstream.verify import measure

    good = next(reference_rows(reference_file(), 1))
    rows = [good, good[:3] + ["six"] + good[4:], good, good[:5] + ["1.2345"] + good[6:], good]
    path = tmp_path / "broken.csv"
    write_csv(path, rows)
    summary = load_from_s3(fresh, path, "drops/broken.csv")
    assert (summary.rows, summary.loaded, summary.rejected) == (5, 3, 2)
    assert summary.rejected_by_reason == {"Quantity: must be an integer": 1,
                                          "UnitPrice: has more than 3 decimal places": 1}
    assert sorted(d.index for d in fresh.dead_letters.recent(10)) == [2, 4]
    report = measure(fresh)
    assert report.dead_letters == 2 and report.accepted.lines == 3 and report.ok


def test_the_ledger_goes_to_dynamodb_in_batch_write_items_of_at_most_25(fresh, monkeypatch):
    """On moto's server (which never leaves items unprocessed: test_aws_units covers the retries)."""
    from shopstream.adapters.aws import clients
    from shopstream.domain.columnar import events_to_table
    from shopstream.domain.line import Totals
    from tests.contract.conftest import FIXTURE_LINES, FIXTURE_MILLI, make_events

    real = clients._client
    sizes = []

    class Counting:
        def __init__(self, client):
            self.client = client

        def __getattr__(self, name):
            return getattr(self.client, name)

        def batch_write_item(self, RequestItems):
            sizes.extend(len(requests) for requests in RequestItems.values())
            return self.client.batch_write_item(RequestItems=RequestItems)

    monkeypatch.setattr(clients, "_client", lambda *key: Counting(real(*key)))
    table = events_to_table([e for i in range(10) for e in make_events(prefix=f"b{i}")])
    assert fresh.stream.record_accepted(table) == table.num_rows
    assert sizes and max(sizes) <= 25 and sum(sizes) == table.num_rows
    assert fresh.stream.accepted() == Totals(10 * FIXTURE_LINES, 10 * FIXTURE_MILLI)
