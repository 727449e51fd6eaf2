"""The issue's acceptance run on the aws profile: moto's server + PostgreSQL, every service as a process.

`shopstream init && shopstream up`, send the first 20,000 reference lines, `verify` exact in
S3, DynamoDB and the warehouse; sending again changes nothing.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import defaultdict
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.awsenv import PG_ADMIN_URL, aws_env, aws_settings
from tests.conftest import Stack, reference_file, wait_for
from tests.e2e.test_reference_pipeline import verify_rows

pytestmark = pytest.mark.e2e
LINES = 20_000


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The first 20,000 reference lines as a CSV, and what they add up to (computed independently)."""
    path = tmp_path_factory.mktemp("sample") / "first-20000.csv"
    with gzip.open(reference_file(), "rt", encoding="utf-8", newline="") as src, \
            open(path, "w", encoding="utf-8", newline="") as out:
        header = src.readline()
        out.write(header)
        for _ in range(LINES):
            out.write(src.readline())
    money = Decimal(0)
    customer_invoices: dict[str, set[str]] = defaultdict(set)
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            money += Decimal(row["Quantity"]) * Decimal(row["UnitPrice"])
            if row["CustomerID"]:
                customer_invoices[row["CustomerID"].removesuffix(".0")].add(row["InvoiceNo"])
    return path, f"{money:,.3f}", customer_invoices


@pytest.fixture(scope="module")
def aws_stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("aws-stack")
    stack = Stack(base / "data", base / "up.log")
    # A database that does not exist yet: init creates it, as it does the stream, bucket and tables.
    settings = aws_settings(lease_seconds=10.0, kinesis_poll_seconds=1.0)  # the defaults: moto serves fewer polls
    warehouse = make_url(settings.warehouse_url)
    settings.warehouse_url = warehouse.set(database=f"{warehouse.database}_up").render_as_string(hide_password=False)
    stack.env.update(aws_env(settings))
    first = stack.cli("init")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created Kinesis stream" in first.stdout and "created DynamoDB table" in first.stdout
    again = stack.cli("init")
    assert again.returncode == 0 and "created" not in again.stdout and "ready" in again.stdout, again.stdout
    stack.start(timeout=120)
    yield stack
    assert stack.stop() == 0, stack.log_path.read_text()[-3000:]
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(settings.warehouse_url).database}" WITH (FORCE)')
    engine.dispose()


@pytest.fixture(scope="module")
def sent(aws_stack, sample):
    result = aws_stack.cli("send", str(sample[0]), "--url", aws_stack.ingest_url)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_every_line_is_accepted(sent):
    assert f"{LINES:,} accepted, 0 already there, 0 rejected" in sent.stdout


def test_verify_is_exact_in_s3_dynamodb_and_the_warehouse(aws_stack, sample, sent):
    result = aws_stack.cli("verify", "--wait", "240")
    assert result.returncode == 0, result.stdout + result.stderr + aws_stack.log_path.read_text()[-3000:]
    assert set(verify_rows(result.stdout).values()) == {(f"{LINES:,}", sample[1])}
    assert re.search(r"dead letters\s*│\s*0\s", result.stdout)


def test_the_invoice_api_reads_dynamodb(aws_stack, sample, sent):
    invoice = httpx.get(f"{aws_stack.invoice_url}/invoices/536365", headers=aws_stack.auth, timeout=30).json()
    assert (invoice["line_count"], invoice["total"], len(invoice["lines"])) == (7, "139.12", 7)
    assert invoice["invoice_date"] == "2010-12-01 08:26:00" and invoice["customer_id"] == "17850"
    expected = sample[2]["17850"]
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = httpx.get(f"{aws_stack.invoice_url}/customers/17850/invoices", params=params, headers=aws_stack.auth,
                         timeout=30).json()
        seen += page["invoices"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert {i["invoice_no"] for i in seen} == expected and len(seen) == len(expected)
    keys = [(i["invoice_date"], i["invoice_no"]) for i in seen]
    assert keys == sorted(keys, reverse=True)


def test_sending_again_changes_nothing(aws_stack, sample, sent):
    again = aws_stack.cli("send", str(sample[0]), "--url", aws_stack.ingest_url)
    assert f"0 accepted, {LINES:,} already there, 0 rejected" in again.stdout, again.stdout + again.stderr
    result = aws_stack.cli("verify", "--wait", "60")
    assert result.returncode == 0, result.stdout
    assert set(verify_rows(result.stdout).values()) == {(f"{LINES:,}", sample[1])}
    status = aws_stack.cli("status")
    assert status.returncode == 0, status.stdout + status.stderr
    for group in ("s3-archiver", "dynamo-writer", "warehouse-loader"):
        assert re.search(rf"{group}\s*│\s*4/4 shards checkpointed\s*│\s*0\s", status.stdout), status.stdout


def test_the_analytics_api_reads_the_sql_warehouse(aws_stack, sample, sent):
    expected = sample[1].replace(",", "")

    def summary():
        response = httpx.get(f"{aws_stack.analytics_url}/analytics/summary", headers=aws_stack.auth, timeout=30)
        return response.json() if response.status_code == 200 else {}

    assert wait_for(lambda: summary().get("lines") == LINES, 120)
    body = summary()
    assert body["metric"] == "summary"
    assert Decimal(body["net_revenue"]) == Decimal(expected)  # the money of the 20,000 lines, exactly
    months = httpx.get(f"{aws_stack.analytics_url}/analytics/sales", params={"grain": "month"},
                       headers=aws_stack.auth, timeout=30).json()
    assert sum(Decimal(b["net_revenue"]) for b in months["buckets"]) == Decimal(expected)
