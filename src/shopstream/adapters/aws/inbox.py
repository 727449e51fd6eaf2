"""The bulk-loader's inbox as an S3 prefix (`SHOPSTREAM_BULK_INBOX=s3://bucket/inbox/`).

    s3://bucket/inbox/<name>                          waiting (objects directly under the prefix)
    s3://bucket/inbox/processed/<name>[.report.json]  loaded, with its report
    s3://bucket/inbox/failed/<name>[.report.json]     unreadable, with the reason

S3 has no rename, so a claim is a conditional PutItem in the lease table
(`<table>-leases`, PK `CLAIM#<bucket>/<key>`): it succeeds only if no claim exists or
the one there has expired, so exactly one loader gets each file. The claim records the
object's ETag and the file is downloaded with `If-Match` on it. A claim is a lease
(`SHOPSTREAM_BULK_CLAIM_SECONDS`), renewed by a heartbeat thread while the load runs,
conditionally on still owning it; a dead loader's claim expires and another loader
takes the file over and loads it again, idempotently on event ids.

Finishing: the report object first, then copy to processed/ or failed/ (only the version
loaded: CopySourceIfMatch; a version uploaded during the load stays in the inbox for the
next tick), delete the original, and only then delete the claim. A loader that claims a
file another loader just finished finds the object gone (NoSuchKey on download) and lets go.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson

from shopstream.adapters.aws.clients import Aws, error_code, n, parse_s3_uri, s
from shopstream.adapters.aws.s3_files import downloaded
from shopstream.adapters.local.inbox import IGNORED_SUFFIXES
from shopstream.ports import Claim, InboxItemGone, LocalFile, Outcome

log = logging.getLogger("shopstream.bulk_loader")


@dataclass
class _Held:
    key: str
    etag: str
    stop: threading.Event = field(default_factory=threading.Event)


class S3Inbox:
    def __init__(self, aws: Aws, uri: str, claims_table: str, settle_seconds: float = 2.0,
                 claim_seconds: float = 60.0) -> None:
        self.aws, self.claims_table = aws, claims_table
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.where = f"s3://{self.bucket}/{self.prefix}"
        self.settle_seconds, self.claim_seconds = settle_seconds, claim_seconds
        self.identity = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"

    @property
    def _s3(self):
        return self.aws.client("s3")

    @property
    def _ddb(self):
        return self.aws.client("dynamodb")

    def pending(self) -> list[dict]:
        """Settled objects directly under the prefix (processed/ and failed/ are "folders"),
        oldest first. An expired claim's object is still here: claiming takes it over."""
        settled = datetime.now(timezone.utc).timestamp() - self.settle_seconds
        found = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(self.prefix):]
                if (name and not name.startswith(".") and not name.endswith(IGNORED_SUFFIXES)
                        and obj["LastModified"].timestamp() <= settled):
                    found.append(obj)
        return sorted(found, key=lambda o: (o["LastModified"], o["Key"]))

    def _claim_key(self, key: str) -> dict:
        return {"PK": s(f"CLAIM#{self.bucket}/{key}"), "SK": s("CLAIM")}

    def claim(self, obj: dict) -> Claim | None:
        now = time.time()
        try:
            self._ddb.put_item(
                TableName=self.claims_table,
                Item=self._claim_key(obj["Key"]) | {"owner": s(self.identity), "etag": s(obj["ETag"]),
                                                    "expires_at": n(int((now + self.claim_seconds) * 1000))},
                ConditionExpression="attribute_not_exists(PK) OR expires_at < :now",
                ExpressionAttributeValues={":now": n(int(now * 1000))},
            )
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return None
            raise
        held = _Held(obj["Key"], obj["ETag"])
        threading.Thread(target=self._renew, args=(held,), name="bulk-claim", daemon=True).start()
        return Claim(obj["Key"].rsplit("/", 1)[-1], held)

    def _renew(self, held: _Held) -> None:
        """Heartbeat: push the claim's expiry forward while the load runs, if still ours."""
        while not held.stop.wait(self.claim_seconds / 3):
            try:
                self._ddb.update_item(
                    TableName=self.claims_table, Key=self._claim_key(held.key),
                    UpdateExpression="SET expires_at = :at", ConditionExpression="#o = :me",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":at": n(int((time.time() + self.claim_seconds) * 1000)),
                                               ":me": s(self.identity)})
            except Exception as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    # taken over after a stall: both loads are idempotent, the first to finish files it
                    log.warning("claim on %s was taken over by another loader", held.key)
                    return
                log.warning("could not renew the claim on %s: %s", held.key, error)

    @contextmanager
    def fetch(self, claim: Claim) -> Iterator[LocalFile]:
        held: _Held = claim.ref
        try:
            manager = downloaded(self.aws, self.bucket, held.key, held.etag)
            local = manager.__enter__()
        except Exception as error:
            if error_code(error) in ("NoSuchKey", "404", "PreconditionFailed", "412"):
                raise InboxItemGone(held.key) from None  # finished by another loader, or replaced
            raise
        try:
            yield local
        finally:
            manager.__exit__(None, None, None)

    def release(self, claim: Claim) -> None:
        held: _Held = claim.ref
        held.stop.set()
        try:
            self._ddb.delete_item(TableName=self.claims_table, Key=self._claim_key(held.key),
                                  ConditionExpression="#o = :me", ExpressionAttributeNames={"#o": "owner"},
                                  ExpressionAttributeValues={":me": s(self.identity)})
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def finish(self, claim: Claim, status: str, report: dict) -> Outcome:
        held: _Held = claim.ref
        target = f"{self.prefix}{status}/{claim.name}"
        if self._exists(target) or self._exists(target + ".report.json"):
            target = f"{self.prefix}{status}/{datetime.now():%Y%m%dT%H%M%S}-{claim.name}"
        report_key = target + ".report.json"
        self._s3.put_object(Bucket=self.bucket, Key=report_key, ContentType="application/json",
                            Body=orjson.dumps(report, option=orjson.OPT_INDENT_2))
        try:  # managed copy (multipart above 5 GB), of the version loaded only
            self._s3.copy({"Bucket": self.bucket, "Key": held.key}, self.bucket, target,
                          ExtraArgs={"CopySourceIfMatch": held.etag})
        except Exception as error:
            code = error_code(error)
            if code in ("PreconditionFailed", "412"):
                log.warning("%s was replaced while loading: the new version stays for the next tick", held.key)
            elif code in ("NoSuchKey", "404"):
                log.warning("%s was filed by a loader that took the claim over", held.key)
            else:
                raise
        else:
            self._s3.delete_object(Bucket=self.bucket, Key=held.key)
        self.release(claim)  # last: until now a second claimant would still find the object
        return Outcome(claim.name, status, f"s3://{self.bucket}/{report_key}")

    def _exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except Exception as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
