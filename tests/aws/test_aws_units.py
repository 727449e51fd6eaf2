"""What moto cannot show: Redshift DDL (compiled, no connection), portable merge SQL, settings
names, and the retry paths of batched calls (partial failures, at the boto3 boundary)."""

from __future__ import annotations

import random
import string

import duckdb
import pyarrow as pa
from sqlalchemy.dialects import postgresql
from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector

from shopstream.adapters.aws import clients
from shopstream.adapters.aws.clients import Aws, batch_get, batch_write, parse_s3_uri
from shopstream.adapters.aws.kinesis import MAX_CALL_RECORDS, KinesisStream, encode_records, record_count
from shopstream.adapters.aws.redshift import _MERGE, STAGE, fact_ddl
from shopstream.config import Settings
from shopstream.domain.columnar import events_to_table, from_ipc
from shopstream.domain.warehouse_sql import FACT_COLUMNS, FACT_DDL, FACT_TABLE
from tests.contract.conftest import FIXTURE_LINES, FIXTURE_MILLI, make_events, make_table


def test_redshift_ddl_has_distkey_and_sortkey():
    ddl = fact_ddl(RedshiftDialect_redshift_connector())
    assert ddl.startswith(f"CREATE TABLE {FACT_TABLE} (")
    assert ddl.endswith("DISTSTYLE KEY DISTKEY (invoice_no) SORTKEY (invoice_date)")
    assert "unit_price NUMERIC(18, 3) NOT NULL" in ddl and "line_total NUMERIC(18, 3) NOT NULL" in ddl
    assert "DISTKEY" not in fact_ddl(postgresql.dialect())


def test_the_sqlalchemy_fact_table_is_facts_ddl_column_for_column():
    """PostgreSQL/Redshift get the same columns, types and nullability as DuckDB's FACT_DDL."""
    def columns(ddl: str):
        conn = duckdb.connect()
        conn.execute(ddl)
        return conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            f"WHERE table_name = '{FACT_TABLE}' ORDER BY ordinal_position").fetchall()

    plain = fact_ddl(postgresql.dialect()).replace("TIMESTAMP WITHOUT TIME ZONE", "TIMESTAMP")
    assert columns(plain) == columns(FACT_DDL)
    assert [c[0] for c in columns(plain)] == list(FACT_COLUMNS)


def test_the_merge_is_portable_sql_and_keeps_each_event_once():
    """The staging merge runs unchanged on DuckDB too (no engine-only functions)."""
    from shopstream.adapters.aws.redshift import _fact_rows

    conn = duckdb.connect()
    conn.execute(FACT_DDL)
    table = make_table()
    for attempt in range(2):
        conn.execute(f"CREATE TEMPORARY TABLE {STAGE} AS SELECT * FROM {FACT_TABLE} LIMIT 0")
        conn.executemany(f"INSERT INTO {STAGE} VALUES ({', '.join('?' * len(FACT_COLUMNS))})",
                         _fact_rows(pa.concat_tables([table, table])))
        conn.execute(_MERGE)
        conn.execute(f"DROP TABLE {STAGE}")
    count, money = conn.execute(f"SELECT count(*), sum(line_total) FROM {FACT_TABLE}").fetchone()
    assert (count, int(money * 1000)) == (FIXTURE_LINES, FIXTURE_MILLI)


def test_settings_names_are_the_interface(monkeypatch):
    for name, value in {"SHOPSTREAM_PROFILE": "aws", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
                        "AWS_DEFAULT_REGION": "eu-west-2", "SHOPSTREAM_STREAM_NAME": "orders",
                        "SHOPSTREAM_LAKE_URI": "s3://lake-bucket/raw-zone", "SHOPSTREAM_TABLE_NAME": "shop",
                        "SHOPSTREAM_WAREHOUSE_URL": "redshift+redshift_connector://u:p@h:5439/dev"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_REGION", raising=False)
    s = Settings()
    assert (s.profile, s.aws_endpoint_url, s.aws_region, s.stream_name, s.table_name) == (
        "aws", "http://127.0.0.1:4566", "eu-west-2", "orders", "shop")
    assert parse_s3_uri(s.lake_uri) == ("lake-bucket", "raw-zone/")
    monkeypatch.setenv("AWS_REGION", "us-west-2")  # AWS_REGION wins, as in the AWS SDKs
    assert Settings().aws_region == "us-west-2"


class FlakyDynamo:
    """Leaves the last item of each call unprocessed the first time it sees it."""

    def __init__(self):
        self.calls, self.seen, self.stored = [], set(), {}

    def batch_write_item(self, RequestItems):
        (table, requests), = RequestItems.items()
        assert len(requests) <= 25, "BatchWriteItem takes at most 25 items"
        self.calls.append(len(requests))
        last = requests[-1]["PutRequest"]["Item"]["event_id"]["S"]
        done = requests if last in self.seen else requests[:-1]
        self.seen.add(last)
        for r in done:
            self.stored[r["PutRequest"]["Item"]["event_id"]["S"]] = r
        rest = [r for r in requests if r not in done]
        return {"UnprocessedItems": {table: rest} if rest else {}}

    def batch_get_item(self, RequestItems):
        (table, request), = RequestItems.items()
        assert len(request["Keys"]) <= 100 and request["ConsistentRead"]
        keys = request["Keys"]
        found = [{"event_id": k["event_id"]} for k in keys[:-1] if k["event_id"]["S"] in self.stored]
        unprocessed = {table: dict(request, Keys=keys[-1:])} if len(keys) > 1 else {}
        if len(keys) == 1 and keys[0]["event_id"]["S"] in self.stored:
            found.append({"event_id": keys[0]["event_id"]})
        return {"Responses": {table: found}, "UnprocessedKeys": unprocessed}


def test_batch_writes_and_gets_are_chunked_and_retry_unprocessed_items(monkeypatch):
    fake = FlakyDynamo()
    monkeypatch.setattr(clients, "_client", lambda *a: fake)
    monkeypatch.setattr(clients, "backoff", lambda attempt, **kw: 0.0)
    aws = Aws("eu-west-1")
    ids = [f"e{i}" for i in range(60)]
    batch_write(aws, "t", [{"PutRequest": {"Item": {"event_id": {"S": i}}}} for i in ids])
    assert set(fake.stored) == set(ids)
    assert max(fake.calls) == 25 and len(fake.calls) == 6  # 25 + 25 + 10, each retried once for its last item
    keys = [{"event_id": {"S": i}} for i in ids + ["missing"]]
    assert {item["event_id"]["S"] for item in batch_get(aws, "t", keys)} == set(ids)
    aws.close()


class FlakyKinesis:
    def __init__(self):
        self.calls, self.delivered = [], []

    def put_records(self, StreamName, Records):
        assert len(Records) <= 500 and sum(len(r["Data"]) + len(r["PartitionKey"]) for r in Records) <= 5_000_000
        self.calls.append(len(Records))
        results = []
        for i, record in enumerate(Records):
            if len(self.calls) == 1 and i % 3 == 0:
                results.append({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow"})
            else:
                self.delivered.append(record)
                results.append({"SequenceNumber": "1", "ShardId": "shardId-0"})
        return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}


class NoLedger:
    def known(self, ids):
        return set()

    def record(self, table):
        self.recorded = table.num_rows


def test_put_records_resends_only_the_failed_records_and_aggregates(monkeypatch):
    from shopstream.adapters.aws import kinesis

    monkeypatch.setattr(kinesis, "backoff", lambda attempt, **kw: 0.0)
    fake = FlakyKinesis()
    stream = KinesisStream(Aws("eu-west-1"), "s", "ledger", "leases", hash_groups=1024, kinesis=fake)
    stream.ledger = NoLedger()
    events = make_events([(str(536000 + i), "X", None, 1, "2010-12-01 08:00:00", "1", None, "France")
                          for i in range(2000)])
    assert stream.append(events_to_table(events)).appended == 2000
    assert fake.calls[0] == MAX_CALL_RECORDS  # 500 records a call
    assert stream.ledger.recorded == 2000
    got = from_ipc([r["Data"][8:] for r in fake.delivered])
    assert sorted(got["event_id"].to_pylist()) == sorted(e.event_id for e in events)  # each once
    keys = {r["PartitionKey"]: r["ExplicitHashKey"] for r in fake.delivered}
    assert all(0 <= int(k) < 2**128 for k in keys.values())


def test_a_record_never_exceeds_one_megabyte():
    rng = random.Random(1)  # random text: records are compressed, so repeated text would fit in one
    big = events_to_table(make_events([
        ("536365", "X", "".join(rng.choice(string.ascii_letters) for _ in range(190)), 1, "2010-12-01 08:00:00",
         "1", None, "France") for _ in range(8000)]))
    records = encode_records(big)
    assert len(records) > 1 and all(len(r) < 1_000_000 for r in records)
    assert sum(record_count(r) for r in records) == 8000
