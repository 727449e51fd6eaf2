"""Every file format a bulk load takes, as RowChunks: CSV (plain or gzip, UTF-8 or
ISO-8859-1), XLSX (the UCI download) and Parquet. Detected by content, not by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shopstream.files import (
    BLOCK_BYTES,
    CsvFormatError,
    RowChunk,
    check_header,
    read_csv_chunks,
    regrouped,
    row_range,
)

XLSX_MAGIC = b"PK\x03\x04"
PARQUET_MAGIC = b"PAR1"
CHUNK_ROWS = 61_440  # half a DuckDB row group (bulk/load.py: WAREHOUSE_ROWS); ~35 MB of Arrow each


class UnsupportedFile(CsvFormatError):
    pass


def detect_format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    if head == XLSX_MAGIC:
        return "xlsx"
    if head == PARQUET_MAGIC:
        return "parquet"
    if head[:2] == b"\x1f\x8b":
        return "csv.gz"
    return "csv"


def read_chunks(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[RowChunk]:
    fmt = detect_format(path)
    if fmt == "xlsx":
        return read_xlsx_chunks(path, chunk_rows)
    if fmt == "parquet":
        return read_parquet_chunks(path, chunk_rows)
    # CSV blocks are sized in bytes (~90 a reference row), then regrouped into chunks of
    # chunk_rows: cutting each block alone left a small remainder after every chunk, and
    # every chunk costs each sink a transaction
    blocks = read_csv_chunks(path, block_bytes=max(1 << 16, min(BLOCK_BYTES, chunk_rows * 90)))
    return regrouped(blocks, chunk_rows)


def read_xlsx_chunks(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[RowChunk]:
    """The first sheet, every cell as text (as Excel shows it: 2.55, 17850,
    2010-12-01 08:26:00). A sheet has at most 1,048,576 rows, so it is read whole
    (fastexcel, Rust) and handed out in chunks."""
    import fastexcel

    try:
        sheet = fastexcel.read_excel(str(path)).load_sheet(0, dtypes="string")
        batch = sheet.to_arrow()
    except Exception as error:  # fastexcel raises its own types for broken workbooks
        raise UnsupportedFile(f"{path}: not a readable XLSX workbook ({error})") from None
    header = [str(name).strip() for name in batch.schema.names]
    check_header(path, header)
    for start in range(0, batch.num_rows, chunk_rows):
        part = batch.slice(start, chunk_rows)
        yield RowChunk(header, [c for c in part.columns], row_range(start + 1, part.num_rows))


def read_parquet_chunks(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[RowChunk]:
    """Row groups streamed in batches; typed columns are kept (the parser takes
    numbers and timestamps as a JSON client would send them)."""
    try:
        parquet = pq.ParquetFile(path)
    except pa.ArrowInvalid as error:
        raise UnsupportedFile(f"{path}: not a readable Parquet file ({error})") from None
    header = list(parquet.schema_arrow.names)
    check_header(path, header)
    start = 1
    with parquet:
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield RowChunk(header, [_plain(c) for c in batch.columns], row_range(start, batch.num_rows))
            start += batch.num_rows


def _plain(column: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(column.type):
        return column.dictionary_decode()
    if pa.types.is_large_string(column.type):
        return column.cast(pa.string())
    return column
