"""Where key records come from, merged: the `SHOPSTREAM_API_KEYS` variable (JSON), a
secrets file (`SHOPSTREAM_API_KEYS_FILE`, default `<data dir>/api-keys.json`, e.g. a
mounted Docker or Kubernetes secret), and on ECS an AWS Secrets Manager secret
(`SHOPSTREAM_API_KEYS_SECRET_ARN`). Each holds `{"keys": [record, ...]}` (or a bare
list) of hashed records; no source ever holds a usable key.

A background thread re-reads the file when it changes (every 2 s, a stat) and the
secret every `SHOPSTREAM_API_KEYS_REFRESH_SECONDS`, so new and revoked keys take
effect without a restart; the request path is a dictionary lookup.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from shopstream.auth.keys import KeyFormatError, KeyRecord, Principal, record_of, split_key

log = logging.getLogger("shopstream.auth")
FILE_CHECK_SECONDS = 2.0


def parse_records(text: str | bytes, origin: str) -> list[KeyRecord]:
    try:
        doc = orjson.loads(text) if text and text.strip() else []
    except orjson.JSONDecodeError as error:
        raise KeyFormatError(f"{origin}: not valid JSON ({error})") from None
    items = doc.get("keys", []) if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise KeyFormatError(f"{origin}: expected {{\"keys\": [...]}} or a list of key records")
    return [KeyRecord.from_json(item) for item in items]


def read_file(path: Path) -> list[KeyRecord]:
    try:
        return parse_records(path.read_bytes(), str(path))
    except FileNotFoundError:
        return []


def read_secret(arn: str) -> list[KeyRecord]:
    """The secret's SecretString, through boto3 (standard AWS settings: AWS_ENDPOINT_URL, region...)."""
    import boto3

    value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
    return parse_records(value.get("SecretString") or "", f"secret {arn}")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def update_file(path: Path, change: Callable[[list[KeyRecord]], list[KeyRecord]]) -> list[KeyRecord]:
    """Read, change and atomically rewrite a keys file (owner-only permissions)."""
    with _locked(path):
        records = change(read_file(path))
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps({"keys": [r.as_json() for r in records]}, option=orjson.OPT_INDENT_2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return records


class KeyRing:
    """Verifies presented keys against the records of every configured source."""

    def __init__(
        self, env_json: str | None = None, file: Path | None = None, secret_arn: str | None = None,
        refresh_seconds: float = 60.0, accepted_key: str | None = None,
    ) -> None:
        self.file = file
        self.secret_arn = secret_arn
        self.refresh_seconds = refresh_seconds
        self._env = parse_records(env_json, "SHOPSTREAM_API_KEYS") if env_json else []
        if accepted_key:  # SHOPSTREAM_API_KEY: the development key docker compose hands every service
            self._env.append(record_of(accepted_key, ["admin"], "SHOPSTREAM_API_KEY"))
        self._from_file: list[KeyRecord] = []
        self._from_secret: list[KeyRecord] = []
        self._file_identity: Any = None
        self._by_id: dict[str, KeyRecord] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.refresh_file()
        if secret_arn:
            self.refresh_secret()
        self._rebuild()

    def __len__(self) -> int:
        return len(self._by_id)

    def start(self) -> KeyRing:
        """Keep the records fresh in the background (idempotent)."""
        with self._lock:
            if self._thread is None and (self.file or self.secret_arn):
                self._thread = threading.Thread(target=self._refresh_loop, name="keyring", daemon=True)
                self._thread.start()
        return self

    def authenticate(self, key: str) -> Principal | None:
        parts = split_key(key)
        if parts is None:
            return None
        record = self._by_id.get(parts[0])
        if record is None or not record.matches(parts[1]):
            return None
        return Principal.of(record)

    def refresh_file(self) -> bool:
        if self.file is None:
            return False
        try:
            st = os.stat(self.file)
            identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            identity = None
        if identity == self._file_identity:
            return False
        try:
            self._from_file = read_file(self.file)
        except KeyFormatError as error:  # keep the last good set; say why loudly
            log.error("keys file ignored: %s", error)
        self._file_identity = identity
        return True

    def refresh_secret(self) -> bool:
        try:
            self._from_secret = read_secret(self.secret_arn)
            return True
        except Exception as error:  # keep the last good set
            log.error("could not read the API keys secret (%s: %s)", type(error).__name__, error)
            return False

    def _rebuild(self) -> None:
        by_id: dict[str, KeyRecord] = {}
        for record in (*self._env, *self._from_secret, *self._from_file):
            by_id[record.id] = record
        self._by_id = by_id  # one reference swap: readers never see a half-built dict

    def _refresh_loop(self) -> None:
        waited = 0.0
        while not self._stop.wait(FILE_CHECK_SECONDS):
            waited += FILE_CHECK_SECONDS
            changed = self.refresh_file()
            if self.secret_arn and waited >= self.refresh_seconds:
                waited = 0.0
                changed = self.refresh_secret() or changed
            if changed:
                self._rebuild()

    def close(self) -> None:
        self._stop.set()


def ensure_dev_key(keys_file: Path, dev_key_path: Path) -> str:
    """`shopstream up`'s development key (scope admin): reused while it is still valid,
    else created; the key goes to `dev_key_path` (owner-only), its hashed record to the file."""
    from shopstream.auth.keys import new_key

    if dev_key_path.exists():
        key = dev_key_path.read_text().strip()
        if KeyRing(file=keys_file).authenticate(key) is not None:
            return key
    key, record = new_key(["admin"], name="dev (shopstream up)")
    update_file(keys_file, lambda records: [r for r in records if r.name != record.name] + [record])
    fd = os.open(dev_key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key
