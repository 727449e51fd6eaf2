"""Redshift's bulk path without Redshift: the COPY statement compiled and asserted, the staged
Parquet object made on moto's S3 and loaded by position into a DuckDB copy of the fact table
(as Redshift's COPY maps Parquet columns), then the portable merge: exact count and money."""

from __future__ import annotations

import io
import re

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shopstream.adapters.aws.clients import Aws
from shopstream.adapters.aws.redshift import _MERGE, STAGE
from shopstream.adapters.aws.redshift_copy import S3ParquetCopy, copy_sql
from shopstream.bootstrap import Container
from shopstream.config import Settings
from shopstream.domain.warehouse_sql import FACT_DDL, FACT_TABLE
from tests.awsenv import provisioned
from tests.contract.conftest import FIXTURE_LINES, FIXTURE_MILLI, make_table

ROLE = "arn:aws:iam::123456789012:role/shopstream-redshift-copy"


def test_the_copy_statement():
    assert copy_sql("s3://shop-staging/warehouse/3f2a.parquet", ROLE) == (
        "COPY stage_sales_line FROM 's3://shop-staging/warehouse/3f2a.parquet' "
        "IAM_ROLE 'arn:aws:iam::123456789012:role/shopstream-redshift-copy' FORMAT AS PARQUET")
    with pytest.raises(ValueError):
        copy_sql("s3://bucket/x'; DROP TABLE fact_sales_line; --", ROLE)


class DuckDBAsRedshift:
    """Runs the SQL a Redshift connection would get; COPY reads the staged object from S3."""

    def __init__(self, s3) -> None:
        self.s3, self.db, self.copies = s3, duckdb.connect(), []
        self.db.execute(FACT_DDL)

    def exec_driver_sql(self, sql: str) -> None:
        copy = re.fullmatch(r"COPY (\w+) FROM 's3://([^/]+)/(.+)' IAM_ROLE '([^']+)' FORMAT AS PARQUET", sql)
        if not copy:
            self.db.execute(sql)
            return
        target, bucket, key, role = copy.groups()
        self.copies.append((key, role))
        staged = pq.read_table(io.BytesIO(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        self.db.register("staged", staged)
        self.db.execute(f"INSERT INTO {target} SELECT * FROM staged")  # by position, as COPY does
        self.db.unregister("staged")


def test_a_batch_staged_as_parquet_in_s3_is_copied_and_merged_exactly_once():
    settings = provisioned()
    aws = Aws.from_settings(settings)
    s3 = boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region)
    bucket = settings.lake_uri.removeprefix("s3://").split("/")[0]
    stage = S3ParquetCopy(aws, f"s3://{bucket}/staging", ROLE)
    conn = DuckDBAsRedshift(s3)
    table = make_table()
    for _ in range(2):  # a redelivered batch: merged once
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {STAGE} AS SELECT * FROM {FACT_TABLE} LIMIT 0")
        stage(conn, pa.concat_tables([table, table]))
        conn.exec_driver_sql(_MERGE)
        conn.exec_driver_sql(f"DROP TABLE {STAGE}")
    count, money = conn.db.execute(f"SELECT count(*), sum(line_total) FROM {FACT_TABLE}").fetchone()
    assert (count, int(money * 1000)) == (FIXTURE_LINES, FIXTURE_MILLI)
    assert [role for _, role in conn.copies] == [ROLE, ROLE]
    assert all(key.startswith("staging/") and key.endswith(".parquet") for key, _ in conn.copies)
    assert s3.list_objects_v2(Bucket=bucket, Prefix="staging/").get("KeyCount") == 0  # deleted after COPY
    aws.close()


def test_bootstrap_picks_the_s3_copy_for_redshift_with_a_role():
    base = dict(profile="aws", aws_region="eu-west-1", lake_uri="s3://lake-bucket/lake",
                warehouse_url="redshift+redshift_connector://u:p@example.invalid:5439/dev")
    with_role = Container(Settings(**base, warehouse_copy_role_arn=ROLE))
    stage = with_role.warehouse.stage
    assert isinstance(stage, S3ParquetCopy) and (stage.bucket, stage.prefix) == ("lake-bucket", "lake/staging/")
    assert Container(Settings(**base)).warehouse.stage.__name__ == "insert_rows"
    with_role.close()
