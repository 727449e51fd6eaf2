"""The local raw lake: Parquet objects in a directory, laid out like S3 keys.

    <root>/raw/ingest_date=YYYY-MM-DD/hour=HH/batch-<batch_id>.parquet

Each object holds the lines as received (`raw`, the client's JSON) plus the envelope
(event_id, received_at, source) and the parsed columns. An object's name comes from
its batch (where the batch starts in the stream, or a file's hash and chunk), and its
folder from the batch's first event, so a batch written again after a crash replaces
its object instead of adding one.

Each event id reaches the lake in one batch only: the stream's ledger refuses an id it
has accepted before, and bulk loads skip ids the ledger already holds. So the lake needs
no index of its own (one cost 4 µs a line, more than the Parquet write).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shopstream.domain.columnar import EventTable, distinct_totals, first_occurrences
from shopstream.domain.lake import PARQUET_WRITE_OPTIONS, object_key
from shopstream.domain.line import Totals


class LocalLake:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, batch_id: str, table: EventTable) -> int:
        if table.num_rows == 0:
            return 0
        table = first_occurrences(table, set())
        self._put(object_key(batch_id, table), table)
        return table.num_rows

    def _put(self, key: str, table: EventTable) -> None:
        """Atomic and durable: write a temporary file, fsync, rename over the key."""
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                pq.write_table(table, f, **PARQUET_WRITE_OPTIONS)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:  # e.g. a full disk: leave no partial object behind
            tmp.unlink(missing_ok=True)
            raise

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
        pass
