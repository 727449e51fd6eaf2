"""Bulk-load input from S3: an object streamed to a temporary file, hashed on the way.

Why a temporary file, not a stream straight into the readers: the event ids of every row
need the SHA-256 of the whole file before the first row is loaded, so a pure stream
would read the object twice; the Parquet and XLSX readers need random access (footer,
zip directory); and a CSV with records Arrow cannot hand over is re-read by Python's csv
module. One streaming GET (1 MiB buffers: memory stays flat) into the task's ephemeral
disk gives all of that with the readers unchanged, and the same bytes give the same
event ids as a local file, by construction.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from shopstream.adapters.aws.clients import Aws, error_code
from shopstream.adapters.local.inbox import LocalFiles
from shopstream.ports import LocalFile

DOWNLOAD_BUFFER = 1 << 20


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key.csv` -> ("bucket", "some/key.csv")."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise FileNotFoundError(f"{uri}: expected s3://bucket/key")
    return bucket, key


def download(aws: Aws, bucket: str, key: str, target, etag: str | None = None) -> str:
    """Stream the object into the open binary file `target`; returns the SHA-256 of its bytes.
    With `etag`, only that version (S3 answers PreconditionFailed otherwise)."""
    request = {"Bucket": bucket, "Key": key} | ({"IfMatch": etag} if etag else {})
    body = aws.client("s3").get_object(**request)["Body"]
    digest = hashlib.sha256()
    for block in body.iter_chunks(DOWNLOAD_BUFFER):
        digest.update(block)
        target.write(block)
    target.flush()
    return digest.hexdigest()


@contextmanager
def downloaded(aws: Aws, bucket: str, key: str, etag: str | None = None) -> Iterator[LocalFile]:
    """The object as a temporary local file (in TMPDIR), removed afterwards."""
    suffix = "".join(PurePosixPath(key).suffixes[-2:])
    with tempfile.NamedTemporaryFile(prefix="shopstream-bulk-", suffix=suffix) as target:
        digest = download(aws, bucket, key, target, etag)
        yield LocalFile(Path(target.name), f"s3://{bucket}/{key}", digest)


class S3Files:
    """Bulk-load input on the aws profile: s3:// URIs, and local paths as on the local profile."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.local = LocalFiles()

    @contextmanager
    def open(self, location: str) -> Iterator[LocalFile]:
        if not location.startswith("s3://"):
            with self.local.open(location) as local:
                yield local
            return
        bucket, key = split_s3_uri(location)
        try:
            self.aws.client("s3").head_object(Bucket=bucket, Key=key)
        except Exception as error:
            if error_code(error) in ("NoSuchKey", "404", "NoSuchBucket", "403"):
                raise FileNotFoundError(f"no such object: {location} ({error_code(error)})") from None
            raise
        with downloaded(self.aws, bucket, key) as local:
            yield local
