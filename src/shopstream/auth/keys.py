"""API keys and customer tokens: what a key is, how it is stored, what it may do.

A key reads `ss_<key id>_<secret>`. Only a record of it is stored: the key id (public,
the lookup), a random per-key salt and SHA-256(salt + secret). The secret is 256
random bits, so a fast salted hash is enough (a slow KDF only helps low-entropy
passwords), and a request costs one dictionary lookup, one hash and one
constant-time comparison.

A customer token is a key bound to one customer id: it has the `invoices:read` scope
and sees only that customer's summary, history and invoices.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

SCOPES = ("ingest:write", "invoices:read", "analytics:read", "metrics:read", "admin")
ADMIN = "admin"
PREFIX = "ss"


class KeyFormatError(ValueError):
    pass


@dataclass(frozen=True)
class KeyRecord:
    """What is stored for a key: never the secret itself."""

    id: str
    salt: str  # hex
    hash: str  # hex SHA-256(salt bytes + secret bytes)
    scopes: tuple[str, ...]
    name: str = ""
    customer_id: str | None = None
    rate_per_second: float | None = None  # overrides the service default
    burst: int | None = None
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def matches(self, secret: str) -> bool:
        digest = hashlib.sha256(bytes.fromhex(self.salt) + secret.encode()).hexdigest()
        return hmac.compare_digest(digest, self.hash)

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["scopes"] = list(self.scopes)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> KeyRecord:
        scopes = tuple(doc.get("scopes") or ())
        unknown = set(scopes) - set(SCOPES)
        if unknown:
            raise KeyFormatError(f"key {doc.get('id')!r}: unknown scopes {sorted(unknown)}; known: {SCOPES}")
        try:
            return cls(
                id=str(doc["id"]), salt=str(doc["salt"]), hash=str(doc["hash"]), scopes=scopes,
                name=str(doc.get("name") or ""), customer_id=doc.get("customer_id"),
                rate_per_second=doc.get("rate_per_second"), burst=doc.get("burst"),
                created_at=str(doc.get("created_at") or ""),
            )
        except KeyError as missing:
            raise KeyFormatError(f"a key record lacks {missing}") from None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key id (safe to log), its scopes, and its customer if it is a token."""

    key_id: str
    scopes: frozenset[str]
    customer_id: str | None = None
    rate_per_second: float | None = None
    burst: int | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or (ADMIN in self.scopes and self.customer_id is None)

    def may_see_customer(self, customer_id: str | None) -> bool:
        return self.customer_id is None or self.customer_id == customer_id

    @classmethod
    def of(cls, record: KeyRecord) -> Principal:
        return cls(record.id, frozenset(record.scopes), record.customer_id,
                   record.rate_per_second, record.burst)


ANONYMOUS_ADMIN = Principal("auth-off", frozenset({ADMIN}))


def new_key(
    scopes: list[str] | tuple[str, ...], name: str = "", customer_id: str | None = None,
    rate_per_second: float | None = None, burst: int | None = None,
) -> tuple[str, KeyRecord]:
    """A fresh key (shown once) and the record to store."""
    if customer_id is not None:
        scopes = ("invoices:read",)
    if not scopes:
        raise KeyFormatError("a key needs at least one scope")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = os.urandom(16)
    record = KeyRecord(
        id=key_id, salt=salt.hex(), hash=hashlib.sha256(salt + secret.encode()).hexdigest(),
        scopes=tuple(scopes), name=name, customer_id=customer_id,
        rate_per_second=rate_per_second, burst=burst,
    )
    KeyRecord.from_json(record.as_json())  # validates the scopes
    return f"{PREFIX}_{key_id}_{secret}", record


def record_of(key: str, scopes: list[str], name: str = "") -> KeyRecord:
    """The record of a key chosen elsewhere (e.g. a development key in the environment)."""
    parts = split_key(key)
    if parts is None:
        raise KeyFormatError(f"{name or 'a key'}: not a key of the form {PREFIX}_<key id>_<secret>")
    salt = os.urandom(16)
    return KeyRecord(id=parts[0], salt=salt.hex(), hash=hashlib.sha256(salt + parts[1].encode()).hexdigest(),
                     scopes=tuple(scopes), name=name)


def split_key(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2] or len(key) > 200:
        return None
    return parts[1], parts[2]
