"""Events in columns: the form batches travel in between the stream and the sinks.

An Arrow table per batch lets every sink work a column at a time (DuckDB reads it
directly, Parquet writes it directly, SQLite gets its rows from whole columns) instead
of one Python object per line; the bulk loader builds the same tables straight from
files. `Event` objects remain the convenient form at the edges (parsing, tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from shopstream.domain.line import Event, Totals, TransactionLine

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("received_at", pa.timestamp("us"), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("invoice_no", pa.string(), nullable=False),
        pa.field("stock_code", pa.string(), nullable=False),
        pa.field("description", pa.string()),
        pa.field("quantity", pa.int64(), nullable=False),
        pa.field("invoice_date", pa.timestamp("us"), nullable=False),
        pa.field("unit_price_milli", pa.int64(), nullable=False),
        pa.field("customer_id", pa.string()),
        pa.field("country", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),  # the line as received, JSON text
    ]
)
EventTable = pa.Table
# The Arrow type of each parsed field (the canonical line's, as the parsers return them).
FIELD_TYPES = {
    "invoice_no": pa.string(),
    "stock_code": pa.string(),
    "description": pa.string(),
    "quantity": pa.int64(),
    "invoice_date": pa.timestamp("us"),
    "unit_price": pa.int64(),  # thousandths
    "customer_id": pa.string(),
    "country": pa.string(),
}


def raw_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return orjson.dumps(raw).decode()
    except TypeError:  # e.g. an integer beyond 64 bits that the JSON parser kept
        return repr(raw)


def events_to_table(events: Sequence[Event]) -> EventTable:
    lines = [e.line for e in events]
    return pa.Table.from_arrays(
        [
            pa.array([e.event_id for e in events], pa.string()),
            pa.array([e.received_at for e in events], pa.timestamp("us")),
            pa.array([e.source for e in events], pa.string()),
            pa.array([x.invoice_no for x in lines], pa.string()),
            pa.array([x.stock_code for x in lines], pa.string()),
            pa.array([x.description for x in lines], pa.string()),
            pa.array([x.quantity for x in lines], pa.int64()),
            pa.array([x.invoice_date for x in lines], pa.timestamp("us")),
            pa.array([x.unit_price_milli for x in lines], pa.int64()),
            pa.array([x.customer_id for x in lines], pa.string()),
            pa.array([x.country for x in lines], pa.string()),
            pa.array([raw_text(e.raw) for e in events], pa.string()),
        ],
        schema=EVENT_SCHEMA,
    )


def build_table(
    event_ids: list[str],
    received_at: datetime | list[datetime],
    source: str | list[str],
    columns: dict[str, list[Any] | pa.Array],
    raws: list[Any],
) -> EventTable:
    """Accepted lines straight from parsed columns (lists, or Arrow arrays already).

    `received_at` and `source` are one value for all lines, or one per line."""
    n = len(event_ids)
    return pa.Table.from_arrays(
        [
            pa.array(event_ids, pa.string()),
            pa.array(received_at, pa.timestamp("us")) if isinstance(received_at, list)
            else pa.repeat(pa.scalar(received_at, pa.timestamp("us")), n),
            pa.array(source, pa.string()) if isinstance(source, list) else pa.repeat(pa.scalar(source, pa.string()), n),
            pa.array(columns["invoice_no"], pa.string()),
            pa.array(columns["stock_code"], pa.string()),
            pa.array(columns["description"], pa.string()),
            pa.array(columns["quantity"], pa.int64()),
            pa.array(columns["invoice_date"], pa.timestamp("us")),
            pa.array(columns["unit_price"], pa.int64()),
            pa.array(columns["customer_id"], pa.string()),
            pa.array(columns["country"], pa.string()),
            _raw_texts(raws),
        ],
        schema=EVENT_SCHEMA,
    )


def _raw_texts(raws: list[Any]) -> pa.Array:
    try:
        return pa.array(raws, pa.string())  # all text already (NDJSON lines as received)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([raw_text(raw) for raw in raws], pa.string())


def table_to_events(table: EventTable) -> list[Event]:
    """Back to objects (tests, small batches); `raw` comes back as parsed JSON where it was JSON."""
    out = []
    for row in table.to_pylist():
        try:
            raw = orjson.loads(row["raw"])
        except orjson.JSONDecodeError:
            raw = row["raw"]
        out.append(
            Event(
                row["event_id"],
                row["received_at"],
                row["source"],
                TransactionLine(
                    row["invoice_no"],
                    row["stock_code"],
                    row["description"],
                    row["quantity"],
                    row["invoice_date"],
                    row["unit_price_milli"],
                    row["customer_id"],
                    row["country"],
                ),
                raw,
            )
        )
    return out


def flat(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def timestamp_texts(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """`2010-12-01 08:26:00` for each timestamp (Arrow's cast is ~8x faster than strftime)."""
    return ascii_slice(flat(column).cast(pa.string()), 0, 19)


def ascii_slice(texts: pa.Array, start: int, stop: int = 256) -> pa.Array:
    """Characters start..stop of texts that are ASCII up to where they are cut, as a slice of
    bytes: ~3x cheaper than Arrow's slice of UTF-8 code units. (`stop` bounds the longest
    text kept whole: Arrow sizes its output by it.)"""
    return pc.binary_slice(texts.cast(pa.binary()), start, stop).cast(pa.string())


def framed_texts(texts: pa.Array, indices: pa.Array, before: str = "", after: str = "") -> pa.Array:
    """Each row's text from a dictionary encoding (`texts`: one per distinct value, e.g. its
    JSON; a null index or text: `null`), between `before` and `after`. Joining the frame to
    the few distinct texts, not to every row, keeps the per-row joins short."""
    pieces = pc.binary_join_element_wise(before, texts, after, "").take(indices)
    return pc.fill_null(pieces, before + "null" + after) if pieces.null_count else pieces


def json_distinct_texts(distinct: list[Any]) -> pa.Array:
    """Each value as JSON text (orjson), null for None."""
    return pa.array([_json(v) for v in distinct], pa.string())


def json_value_texts(texts: pa.Array) -> pa.Array:
    """Each string as JSON text (what orjson writes; null stays null): by Arrow where nothing
    needs escaping (orjson escapes only quotes, backslashes and U+0000-U+001F), else orjson."""
    escaped = pc.fill_null(pc.match_substring_regex(texts, r'[\x00-\x1f"\\]'), False)
    quoted = pc.binary_join_element_wise('"', texts, '"', "")
    if not pc.any(escaped).as_py():
        return quoted
    return pc.replace_with_mask(quoted, escaped, json_distinct_texts(texts.filter(escaped).to_pylist()))


def _json(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # e.g. an integer beyond 64 bits that the JSON parser kept
        return orjson.dumps(repr(value)).decode()


def line_totals_milli(table: pa.Table) -> pa.Array:
    return pc.multiply_checked(table["quantity"], table["unit_price_milli"])


def distinct_totals(table: pa.Table) -> Totals:
    """Distinct event ids and the money of each, counted once."""
    if table.num_rows == 0:
        return Totals(0, 0)
    slim = pa.table({"event_id": table["event_id"], "total": line_totals_milli(table)})
    first = slim.group_by("event_id", use_threads=False).aggregate([("total", "first")])
    return Totals(first.num_rows, pc.sum(first["total_first"]).as_py() or 0)


def first_occurrences(table: EventTable, excluded: set[str]) -> EventTable:
    """Rows whose event id is not in `excluded` and not seen earlier in the table."""
    if not excluded and _distinct(table["event_id"]):
        return table  # the common case, without a Python loop
    ids = table["event_id"].to_pylist()
    keep, seen = [], set(excluded)
    for i, event_id in enumerate(ids):
        if event_id not in seen:
            seen.add(event_id)
            keep.append(i)
    return table if len(keep) == len(ids) else table.take(pa.array(keep, pa.int64()))


def _distinct(ids: pa.ChunkedArray) -> bool:
    """Whether no id repeats. Ids strictly increasing by (length, text), as a file's rows
    are (`f<hash>-9`, `f<hash>-10`: a bulk load's chunk, which each sink asks about), are
    told by comparing neighbours, several times cheaper than hashing them all."""
    flat_ids = ids.combine_chunks()
    if len(flat_ids) > 1:
        before, after = flat_ids[:-1], flat_ids[1:]
        length_before, length_after = pc.binary_length(before), pc.binary_length(after)
        increasing = pc.or_(pc.less(length_before, length_after),
                            pc.and_(pc.equal(length_before, length_after), pc.less(before, after)))
        if pc.all(increasing).as_py():
            return True
    return pc.count_distinct(flat_ids).as_py() == len(flat_ids)


def empty_table() -> EventTable:
    return EVENT_SCHEMA.empty_table()


# A stream record is an Arrow IPC stream compressed whole with zstd, behind a 12-byte
# header (magic, uncompressed size): ~8x smaller (the raw JSON text compresses well) and
# cheaper overall than writing the bytes through SQLite's WAL uncompressed. Whole, not per
# buffer (IPC's own compression): a record has ~30 small buffers, and one zstd call
# instead of thirty took encoding from ~1.7 to ~0.6 us a line and decoding from ~1.1 to
# ~0.4. Tiny records are left plain: compressing them costs more than it saves.
_ZSTD = pa.Codec("zstd", 1)
_WHOLE_ZSTD = b"SSZ1"


def to_ipc(table: EventTable) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    plain = sink.getvalue()
    if table.num_rows < 64:
        return plain.to_pybytes()
    return _WHOLE_ZSTD + plain.size.to_bytes(8, "little") + _ZSTD.compress(plain, asbytes=True)


def _stream(payload: bytes) -> pa.Buffer | bytes:
    if payload[:4] != _WHOLE_ZSTD:  # a plain IPC stream (or, from before, one compressed per buffer)
        return payload
    size = int.from_bytes(payload[4:12], "little")
    return _ZSTD.decompress(memoryview(payload)[12:], decompressed_size=size)


def from_ipc(payloads: Sequence[bytes]) -> EventTable:
    if not payloads:
        return empty_table()
    return pa.concat_tables(pa.ipc.open_stream(_stream(p)).read_all() for p in payloads)
