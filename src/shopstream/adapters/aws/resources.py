"""The aws profile's resources: their names, and `shopstream init` creating what is missing.

One DynamoDB table is the operational store (docs/data-model.md); three small
companions are named after it: `<table>-ledger` (accepted event ids: dedupe and
`verify`'s totals), `<table>-lake-index` (which lake batch holds which events, per invoice) and `<table>-leases`
(consumer shard leases, checkpoints and worker heartbeats). They are separate tables so
that each stays small for what scans it, and so the lease table can have its own
capacity, as KCL's does. In production the CDK app creates all of this; `init` is for
emulators and first deploys, and running it again changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shopstream.adapters.aws.clients import Aws, error_code, parse_s3_uri

log = logging.getLogger("shopstream.aws")

# The store's indexes. GSI1: a customer's invoice headers by date. GSI2: every header,
# spread over a few partitions, so totals read headers instead of scanning every line.
CUSTOMER_INDEX = "GSI1"
HEADERS_INDEX = "GSI2"
HEADER_BUCKETS = 4
HEADER_VIEW = ["invoice_no", "invoice_date", "customer_id", "country", "line_count", "total_milli", "gross_milli"]


@dataclass(frozen=True)
class Names:
    stream: str
    bucket: str
    prefix: str  # "" or ends with "/"
    table: str
    ledger_table: str
    lake_index_table: str
    lease_table: str

    @classmethod
    def from_settings(cls, settings) -> Names:
        bucket, prefix = parse_s3_uri(settings.lake_uri)
        table = settings.table_name
        return cls(settings.stream_name, bucket, prefix, table, f"{table}-ledger", f"{table}-lake-index",
                   f"{table}-leases")


def _key_schema(*names: str) -> dict:
    kinds = ("HASH", "RANGE")
    return {
        "KeySchema": [{"AttributeName": name, "KeyType": kind} for name, kind in zip(names, kinds)],
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in names],
    }


def _index(name: str, hash_key: str, range_key: str, attributes: list[str]) -> dict:
    return {
        "IndexName": name,
        "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                      {"AttributeName": range_key, "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": attributes},
    }


def table_definitions(names: Names) -> dict[str, dict]:
    store = _key_schema("PK", "SK")
    store["AttributeDefinitions"] += [
        {"AttributeName": a, "AttributeType": "S"} for a in ("GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")
    ]
    store["GlobalSecondaryIndexes"] = [
        _index(CUSTOMER_INDEX, "GSI1PK", "GSI1SK", HEADER_VIEW),
        _index(HEADERS_INDEX, "GSI2PK", "GSI2SK", ["line_count", "total_milli"]),
    ]
    return {
        names.table: store,
        names.ledger_table: _key_schema("event_id"),
        names.lake_index_table: _key_schema("invoice_no"),
        names.lease_table: _key_schema("PK", "SK"),
    }


def create_missing(aws: Aws, names: Names, shards: int) -> list[str]:
    """Create the stream, bucket and tables that do not exist yet; returns what was created."""
    created: list[str] = []
    kinesis = aws.client("kinesis")
    try:
        kinesis.create_stream(StreamName=names.stream, ShardCount=shards)
        created.append(f"Kinesis stream {names.stream} ({shards} shards)")
    except kinesis.exceptions.ResourceInUseException:
        pass
    s3 = aws.client("s3")
    try:
        if aws.region == "us-east-1":
            s3.create_bucket(Bucket=names.bucket)
        else:
            s3.create_bucket(Bucket=names.bucket, CreateBucketConfiguration={"LocationConstraint": aws.region})
        created.append(f"S3 bucket {names.bucket}")
    except Exception as error:
        if error_code(error) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    ddb = aws.client("dynamodb")
    for table, definition in table_definitions(names).items():
        try:
            ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", **definition)
            created.append(f"DynamoDB table {table}")
        except ddb.exceptions.ResourceInUseException:
            pass
    kinesis.get_waiter("stream_exists").wait(StreamName=names.stream, WaiterConfig={"Delay": 1})
    for table in table_definitions(names):
        ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})
    return created
