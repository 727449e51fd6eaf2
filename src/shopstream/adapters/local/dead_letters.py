"""The local dead-letter area: rejected lines with their reasons, in SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson

from shopstream.adapters.local.sqlite import PerThread, transaction
from shopstream.domain.events import dead_letter_document, dead_letter_from_document
from shopstream.domain.line import DeadLetter

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    event_id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    document BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at);
"""


class LocalDeadLetters:
    def __init__(self, path: Path, synchronous: str = "NORMAL", cache_mb: int = 64) -> None:
        self._db = PerThread(path, synchronous, setup=SCHEMA, cache_mb=cache_mb)

    def write(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        with transaction(self._db.get(), immediate=True) as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO dead_letters (event_id, received_at, document) VALUES (?, ?, ?)",
                [
                    (d.event_id, d.received_at.isoformat(), orjson.dumps(dead_letter_document(d)))
                    for d in letters
                ],
            )

    def count(self) -> int:
        return self._db.get().execute("SELECT count(*) FROM dead_letters").fetchone()[0]

    def recent(self, limit: int) -> list[DeadLetter]:
        rows = self._db.get().execute(
            "SELECT document FROM dead_letters ORDER BY received_at DESC, event_id LIMIT ?", (limit,)
        )
        return [dead_letter_from_document(orjson.loads(doc)) for (doc,) in rows]

    def close(self) -> None:
        self._db.close()
