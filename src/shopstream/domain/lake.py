"""The raw lake's layout, shared by every lake adapter (no I/O)."""

from __future__ import annotations

from shopstream.domain.columnar import EventTable


def object_key(batch_id: str, table: EventTable) -> str:
    """Where a batch is archived: its name from the batch, its folder from its first event."""
    at = table["received_at"][0].as_py()
    return f"raw/ingest_date={at:%Y-%m-%d}/hour={at:%H}/batch-{batch_id}.parquet"


# How every lake object is written. Dictionary encoding only where values repeat: for the
# per-line unique columns (event_id, the raw JSON) Parquet would build a dictionary and then
# drop it, which cost a third of the write (and made the files no smaller).
# Statistics (min/max per page) for every column but the raw JSON, which no query prunes on.
_PARSED = ["received_at", "source", "invoice_no", "stock_code", "description", "quantity", "invoice_date",
           "unit_price_milli", "customer_id", "country"]
PARQUET_WRITE_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": _PARSED,
    "write_statistics": ["event_id", *_PARSED],
}
