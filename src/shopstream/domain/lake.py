"""Raw lake layout and event selection, shared by every lake adapter (no I/O)."""

from __future__ import annotations

import pyarrow as pa

from shopstream.domain.columnar import EventTable


def object_key(batch_id: str, table: EventTable) -> str:
    """Where a batch is archived: its name from the batch, its folder from its first event."""
    at = table["received_at"][0].as_py()
    return f"raw/ingest_date={at:%Y-%m-%d}/hour={at:%H}/batch-{batch_id}.parquet"


def first_occurrences(table: EventTable, excluded: set[str]) -> EventTable:
    """Rows whose event id is not in `excluded` and not seen earlier in the table."""
    ids = table["event_id"].to_pylist()
    keep, seen = [], set(excluded)
    for i, event_id in enumerate(ids):
        if event_id not in seen:
            seen.add(event_id)
            keep.append(i)
    return table if len(keep) == len(ids) else table.take(pa.array(keep, pa.int64()))
