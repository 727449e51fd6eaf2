"""Redshift's bulk path: a batch staged as Parquet in S3, then `COPY ... FORMAT AS PARQUET`.

Row inserts into Redshift run at a few hundred rows a second; COPY reads S3 in parallel
on every slice. The batch's fact rows go to `<staging URI>/<uuid>.parquet` with the
fact table's columns in its order and types (COPY maps Parquet columns by position), the
COPY fills the temporary staging table inside the warehouse's write transaction, the
portable merge on event_id follows (redshift.py), and the object is deleted afterwards,
whatever happened. The staging bucket must be in the cluster's region, and the role
(`SHOPSTREAM_WAREHOUSE_COPY_ROLE_ARN`) attached to the cluster with s3:GetObject on it.
"""

from __future__ import annotations

import io
import re
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from shopstream.adapters.aws.clients import Aws, parse_s3_uri
from shopstream.adapters.aws.redshift import STAGE, fact_columns
from shopstream.domain.columnar import EventTable
from shopstream.domain.warehouse_sql import FACT_COLUMNS

# The fact table's column types (redshift.FACT), as Parquet carries them to COPY.
FACT_ARROW = pa.schema([
    ("event_id", pa.string()), ("invoice_no", pa.string()), ("stock_code", pa.string()),
    ("description", pa.string()), ("quantity", pa.int32()), ("invoice_date", pa.timestamp("us")),
    ("unit_price", pa.decimal128(18, 3)), ("line_total", pa.decimal128(18, 3)),
    ("customer_id", pa.string()), ("country", pa.string()), ("is_cancellation", pa.bool_()),
    ("is_adjustment", pa.bool_()), ("is_service", pa.bool_()), ("is_sale", pa.bool_()),
    ("received_at", pa.timestamp("us")), ("source", pa.string()),
])
assert tuple(FACT_ARROW.names) == FACT_COLUMNS
_PLAIN = re.compile(r"^[\w:/.=+,@-]+$")  # what may go inside the COPY's quoted literals


def fact_parquet(table: EventTable) -> bytes:
    """The batch's fact rows as one Parquet object (money exact: decimal(18,3))."""
    columns = fact_columns(table)
    arrow = pa.table([pa.array(values, field.type) for values, field in zip(columns, FACT_ARROW)],
                     schema=FACT_ARROW)
    sink = io.BytesIO()
    pq.write_table(arrow, sink, compression="zstd")
    return sink.getvalue()


def copy_sql(uri: str, role_arn: str, target: str = STAGE) -> str:
    """COPY of one staged Parquet object into `target` (by position, as Redshift maps Parquet)."""
    for value in (uri, role_arn):
        if not _PLAIN.match(value):
            raise ValueError(f"refusing to put {value!r} into COPY's SQL")
    return f"COPY {target} FROM '{uri}' IAM_ROLE '{role_arn}' FORMAT AS PARQUET"


class S3ParquetCopy:
    """A SqlWarehouse stager (redshift.Stager) for Redshift."""

    def __init__(self, aws: Aws, staging_uri: str, role_arn: str) -> None:
        self.aws, self.role_arn = aws, role_arn
        self.bucket, self.prefix = parse_s3_uri(staging_uri)

    def __call__(self, conn: sa.Connection, table: EventTable) -> None:
        key = f"{self.prefix}{uuid.uuid4().hex}.parquet"
        s3 = self.aws.client("s3")
        s3.put_object(Bucket=self.bucket, Key=key, Body=fact_parquet(table))
        try:
            conn.exec_driver_sql(copy_sql(f"s3://{self.bucket}/{key}", self.role_arn))
        finally:
            s3.delete_object(Bucket=self.bucket, Key=key)
