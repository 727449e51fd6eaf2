"""The raw lake on S3, and the dead-letter area beside it.

Objects are laid out as on the local lake (domain/lake.py), under the lake URI's prefix:

    s3://bucket/prefix/raw/ingest_date=YYYY-MM-DD/hour=HH/batch-<batch_id>.parquet

A batch written again replaces its object (PutObject is atomic). An index in DynamoDB
(`<table>-lake-index`, one item per invoice: batch id -> its event ids, versioned)
keeps an event sent twice in one object only: a write keeps the events no other batch
holds, puts the object, then records per invoice which events this batch now holds
(forgetting those an earlier, longer attempt of the same batch held). A crash in between
is repaired by the retry; a concurrent change of an invoice's entry retries the write.
Per invoice, because the stream's ledger lets each event id in once, so an event id
never belongs to two invoices; and one item per invoice costs a fraction of one per line.

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

from shopstream.adapters.aws.clients import Aws, batch_get, error_code, n, s
from shopstream.domain.columnar import EventTable, distinct_totals, first_occurrences
from shopstream.domain.events import dead_letter_document, dead_letter_from_document
from shopstream.domain.lake import PARQUET_WRITE_OPTIONS, object_key
from shopstream.domain.line import DeadLetter, Totals


def list_objects(aws: Aws, bucket: str, prefix: str) -> list[dict]:
    pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj for page in pages for obj in page.get("Contents", [])]


MAX_INDEX_RETRIES = 20


class S3Lake:
    def __init__(self, aws: Aws, bucket: str, prefix: str, index_table: str) -> None:
        self.aws, self.bucket, self.prefix, self.index_table = aws, bucket, prefix, index_table

    @property
    def _s3(self):
        return self.aws.client("s3")

    def write(self, batch_id: str, table: EventTable) -> int:
        if table.num_rows == 0:
            return 0
        for _ in range(MAX_INDEX_RETRIES):
            new = self._write(batch_id, table)
            if new is not None:
                return new
        raise RuntimeError(f"lake batch {batch_id}: its index is still contended after {MAX_INDEX_RETRIES} tries")

    def _write(self, batch_id: str, table: EventTable) -> int | None:
        """One attempt; None if another writer changed an invoice's index entry meanwhile."""
        key = self.prefix + object_key(batch_id, table)
        invoices = set(table["invoice_no"].to_pylist()) | self._invoices_in(key)  # an earlier attempt's too
        entries = {item["invoice_no"]["S"]: item for item in batch_get(
            self.aws, self.index_table, [{"invoice_no": s(no)} for no in invoices])}
        elsewhere = {event_id for item in entries.values()
                     for batch, ids in item["batches"]["M"].items() if batch != batch_id for event_id in ids["SS"]}
        fresh = first_occurrences(table, elsewhere)
        if fresh.num_rows:
            sink = io.BytesIO()
            pq.write_table(fresh, sink, **PARQUET_WRITE_OPTIONS)
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=sink.getvalue())
        else:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
        mine: dict[str, set[str]] = {no: set() for no in invoices}
        for no, event_id in zip(fresh["invoice_no"].to_pylist(), fresh["event_id"].to_pylist()):
            mine[no].add(event_id)
        before = {no: set(item["batches"]["M"].get(batch_id, {}).get("SS", [])) for no, item in entries.items()}
        changed = [no for no in invoices if mine[no] != before.get(no, set())]
        if not all(self.aws.map(lambda no: self._record(no, batch_id, mine[no], entries.get(no)), changed)):
            return None
        return sum(len(mine[no] - before.get(no, set())) for no in invoices)

    def _record(self, invoice_no: str, batch_id: str, ids: set[str], item: dict | None) -> bool:
        """This batch's events of the invoice, conditional on the version read."""
        batches = dict(item["batches"]["M"]) if item else {}
        if ids:
            batches[batch_id] = {"SS": sorted(ids)}
        else:
            batches.pop(batch_id, None)
        version = int(item["version"]["N"]) if item else 0
        try:
            self.aws.client("dynamodb").put_item(
                TableName=self.index_table,
                Item={"invoice_no": s(invoice_no), "batches": {"M": batches}, "version": n(version + 1)},
                ConditionExpression="version = :v" if item else "attribute_not_exists(invoice_no)",
                **({"ExpressionAttributeValues": {":v": n(version)}} if item else {}),
            )
            return True
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise

    def _invoices_in(self, key: str) -> set[str]:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as error:
            if error_code(error) in ("NoSuchKey", "404"):
                return set()
            raise
        return set(pq.read_table(io.BytesIO(body), columns=["invoice_no"])["invoice_no"].to_pylist())

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
