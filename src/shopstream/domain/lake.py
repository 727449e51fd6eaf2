"""The raw lake's layout, shared by every lake adapter (no I/O)."""

from __future__ import annotations

from shopstream.domain.columnar import EventTable


def object_key(batch_id: str, table: EventTable) -> str:
    """Where a batch is archived: its name from the batch, its folder from its first event."""
    at = table["received_at"][0].as_py()
    return f"raw/ingest_date={at:%Y-%m-%d}/hour={at:%H}/batch-{batch_id}.parquet"

