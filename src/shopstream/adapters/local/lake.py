"""The local raw lake: Parquet objects in a directory, laid out like S3 keys.

    <root>/raw/ingest_date=YYYY-MM-DD/hour=HH/batch-<batch_id>.parquet

Each object holds the lines as received (`raw`, the client's JSON) plus the envelope
(event_id, received_at, source) and the parsed columns. An object's name comes from
its batch (where the batch starts in the stream, or a file's hash and chunk), and its
folder from the batch's first event, so a batch written again after a crash replaces
its object instead of adding one. A small index (`_index.sqlite3`, event_id ->
object) keeps each event in one object only, so a line sent twice is archived once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from shopstream.adapters.local.sqlite import connect, transaction
from shopstream.domain.columnar import EventTable, distinct_totals, first_occurrences
from shopstream.domain.lake import object_key
from shopstream.domain.line import Totals

INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS archived (
    event_id TEXT PRIMARY KEY,
    object TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS archived_object ON archived (object);
"""


class LocalLake:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._index = connect(root / "_index.sqlite3")
        self._index.executescript(INDEX_SCHEMA)

    def write(self, batch_id: str, table: EventTable) -> int:
        if table.num_rows == 0:
            return 0
        key = object_key(batch_id, table)
        with transaction(self._index, immediate=True) as index:
            # Forget what an earlier attempt of this same batch recorded: the object is
            # about to be replaced, perhaps with fewer events.
            index.execute("DELETE FROM archived WHERE object = ?", (key,))
            ids = table["event_id"].to_pylist()
            elsewhere = {
                row[0]
                for row in index.execute(
                    "SELECT a.event_id FROM json_each(?) j JOIN archived a ON a.event_id = j.value",
                    (orjson.dumps(ids),),
                )
            }
            fresh = first_occurrences(table, elsewhere)
            if fresh.num_rows:
                self._put(key, fresh)
                index.executemany(
                    "INSERT INTO archived (event_id, object) VALUES (?, ?)",
                    [(event_id, key) for event_id in fresh["event_id"].to_pylist()],
                )
            else:
                (self.root / key).unlink(missing_ok=True)
        return fresh.num_rows

    def _put(self, key: str, table: EventTable) -> None:
        """Atomic and durable: write a temporary file, fsync, rename over the key."""
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            pq.write_table(table, f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def objects(self) -> Iterator[Path]:
        yield from sorted((self.root / "raw").glob("ingest_date=*/hour=*/*.parquet"))

    def totals(self) -> Totals:
        """Read back every object: distinct event ids and the sum of their line totals."""
        columns = ["event_id", "quantity", "unit_price_milli"]
        tables = [pq.read_table(path, columns=columns) for path in self.objects()]
        if not tables:
            return Totals(0, 0)
        return distinct_totals(pa.concat_tables(tables))

    def close(self) -> None:
        self._index.close()
