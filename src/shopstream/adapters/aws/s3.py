"""The raw lake on S3, and the dead-letter area beside it.

Objects are laid out as on the local lake (domain/lake.py), under the lake URI's prefix:

    s3://bucket/prefix/raw/ingest_date=YYYY-MM-DD/hour=HH/batch-<batch_id>.parquet

A batch written again replaces its object (PutObject is atomic). The event -> object
index lives in DynamoDB (`<table>-lake-index`), so an event sent twice is archived
once: a write keeps only events not archived in another object, forgets the entries
of the object it replaces that the new version no longer holds, puts the object, and
only then records the new entries (a crash in between is repaired by the retry).

Dead letters are JSON documents at `prefix/dead-letters/<sha256(event_id)>.json`: one
per rejected line, idempotent on event_id, readable with any S3 tool.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from shopstream.adapters.aws.clients import Aws, batch_get, batch_write, error_code, s
from shopstream.domain.columnar import EventTable, distinct_totals, first_occurrences
from shopstream.domain.events import dead_letter_document, dead_letter_from_document
from shopstream.domain.lake import object_key
from shopstream.domain.line import DeadLetter, Totals


def list_objects(aws: Aws, bucket: str, prefix: str) -> list[dict]:
    pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj for page in pages for obj in page.get("Contents", [])]


class S3Lake:
    def __init__(self, aws: Aws, bucket: str, prefix: str, index_table: str) -> None:
        self.aws, self.bucket, self.prefix, self.index_table = aws, bucket, prefix, index_table

    @property
    def _s3(self):
        return self.aws.client("s3")

    def write(self, batch_id: str, table: EventTable) -> int:
        if table.num_rows == 0:
            return 0
        key = self.prefix + object_key(batch_id, table)
        ids = table["event_id"].to_pylist()
        where = {
            item["event_id"]["S"]: item["object"]["S"]
            for item in batch_get(self.aws, self.index_table, [{"event_id": s(i)} for i in dict.fromkeys(ids)],
                                  "event_id, #o", {"#o": "object"})
        }
        fresh = first_occurrences(table, {i for i, obj in where.items() if obj != key})
        stale = set(self._read_ids(key)) - set(fresh["event_id"].to_pylist())
        if stale:  # an earlier, longer attempt of this batch: those events are no longer here
            batch_write(self.aws, self.index_table, [{"DeleteRequest": {"Key": {"event_id": s(i)}}} for i in stale])
        if fresh.num_rows == 0:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
            return 0
        sink = io.BytesIO()
        pq.write_table(fresh, sink, compression="zstd")
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=sink.getvalue())
        new = [i for i in fresh["event_id"].to_pylist() if where.get(i) != key]
        batch_write(self.aws, self.index_table,
                    [{"PutRequest": {"Item": {"event_id": s(i), "object": s(key)}}} for i in new])
        return len(new)

    def _read_ids(self, key: str) -> list[str]:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as error:
            if error_code(error) in ("NoSuchKey", "404"):
                return []
            raise
        return pq.read_table(io.BytesIO(body), columns=["event_id"])["event_id"].to_pylist()

    def objects(self) -> list[str]:
        return sorted(o["Key"] for o in list_objects(self.aws, self.bucket, self.prefix + "raw/")
                      if o["Key"].endswith(".parquet"))

    def totals(self) -> Totals:
        """Read back every object: distinct event ids and the sum of their line totals."""
        columns = ["event_id", "quantity", "unit_price_milli"]

        def read(key: str) -> pa.Table:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return pq.read_table(io.BytesIO(body), columns=columns)

        tables = self.aws.map(read, self.objects())
        return distinct_totals(pa.concat_tables(tables)) if tables else Totals(0, 0)

    def close(self) -> None:
        self.aws.close()


class S3DeadLetters:
    def __init__(self, aws: Aws, bucket: str, prefix: str) -> None:
        self.aws, self.bucket = aws, bucket
        self.prefix = prefix + "dead-letters/"

    def _key(self, event_id: str) -> str:
        return f"{self.prefix}{hashlib.sha256(event_id.encode()).hexdigest()[:32]}.json"

    def write(self, letters: Sequence[DeadLetter]) -> None:
        s3 = self.aws.client("s3")
        self.aws.map(
            lambda d: s3.put_object(Bucket=self.bucket, Key=self._key(d.event_id),
                                    Body=orjson.dumps(dead_letter_document(d)), ContentType="application/json"),
            {d.event_id: d for d in letters}.values(),
        )

    def count(self) -> int:
        return len(list_objects(self.aws, self.bucket, self.prefix))

    def recent(self, limit: int) -> list[DeadLetter]:
        objects = sorted(list_objects(self.aws, self.bucket, self.prefix), key=lambda o: o["LastModified"],
                         reverse=True)[: max(limit * 2, limit + 10)]
        s3 = self.aws.client("s3")
        letters = self.aws.map(
            lambda o: dead_letter_from_document(orjson.loads(s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read())),
            objects,
        )
        letters.sort(key=lambda d: (-d.received_at.timestamp(), d.event_id))
        return letters[:limit]

    def close(self) -> None:
        self.aws.close()
