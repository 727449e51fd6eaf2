"""Reading transaction files as users have them: the CSV variants, plain or gzipped.

- the reference copy: UTF-8, `2010-12-01 08:26:00`, customer ids like `17850.0`;
- the Kaggle download: ISO-8859-1 (the pound sign is byte 0xA3), `12/1/2010 8:26`.

One reader serves both `send` and `bulk-load`, so a row gets the same number (and so
the same event id) on either path. It parses with Arrow's CSV reader in blocks (bounded
memory, ~15x Python's csv module) and hands out columns. Each record is decoded as
UTF-8 and, where that fails, as ISO-8859-1, so a file is read right whichever it is,
even if the first non-ASCII byte is a million lines in.

Row numbers are 1-based and count records after the header (blank lines are no
records). A ragged record (too few or too many fields) is still a row: it is padded
with empty fields or cut to the header's width, and the validator says what is wrong.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sys
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from shopstream.domain.parsing import canonical_key

CHUNK = 1 << 20
BLOCK_BYTES = 8 << 20  # ~90k reference rows per block
REQUIRED_COLUMNS = frozenset({"invoice_no", "stock_code", "quantity", "invoice_date", "unit_price", "country"})


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


def open_binary(path: Path) -> IO[bytes]:
    import gzip

    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes as stored: the root of its rows' event ids."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def estimated_lines(path: Path, sample_bytes: int = 1 << 20) -> int:
    """Newlines in the (decompressed) file, estimated from its first MiB, for progress bars:
    counting a gzip's lines means inflating all of it (~0.25 CPU-s for the reference file,
    which the load then inflates again). A gzip's size is its last 4 bytes (mod 2**32);
    the first MiB's compression ratio says which multiple of 2**32 to add."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if not is_gzip(path):
            sample = f.read(sample_bytes)
            return sample.count(b"\n") if len(sample) == size else round(size * sample.count(b"\n") / max(1, len(sample)))
        inflate, sample, used = zlib.decompressobj(wbits=31), b"", 0
        while len(sample) < sample_bytes and not inflate.eof and (block := f.read(1 << 16)):
            sample += inflate.decompress(block)
            used += len(block)
        if inflate.eof and not inflate.unused_data and not f.read(1):  # read whole
            return sample.count(b"\n")
        f.seek(-4, os.SEEK_END)
        wrapped = int.from_bytes(f.read(4), "little")
    guess = size * len(sample) / max(1, used - len(inflate.unused_data))
    if inflate.eof:  # several gzip members (concatenated files): the trailer is the last one's
        total = guess
    else:
        total = wrapped + round((guess - wrapped) / 2**32) * 2**32
    return round((total if total > 0 else guess) * sample.count(b"\n") / max(1, len(sample)))


class CsvFormatError(ValueError):
    pass


@dataclass
class RowChunk:
    """Consecutive rows of a file as columns, in the file's own column names."""

    header: list[str]
    columns: list[pa.Array]  # one per header name: text (CSV) or typed (Parquet, XLSX)
    rows: pa.Array  # int64 row numbers, 1-based, header excluded

    @property
    def num_rows(self) -> int:
        return len(self.rows)

    def to_dicts(self) -> list[dict]:
        """Row-wise, as `send` posts them and LineParser takes them."""
        values = [c.to_pylist() for c in self.columns]
        return [dict(zip(self.header, row)) for row in zip(*values)]


def check_header(path: Path | str, header: list[str]) -> None:
    known = {canonical_key(h) for h in header} - {None}
    missing = REQUIRED_COLUMNS - known
    if missing:
        raise CsvFormatError(
            f"{path}: the header {header} lacks {sorted(missing)}; expected the columns "
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
        )


def _decode_record(fields: list[bytes]) -> list[str]:
    try:
        return [f.decode("utf-8") for f in fields]
    except UnicodeDecodeError:
        return [f.decode("iso-8859-1") for f in fields]


def _decode_columns(columns: list[pa.Array]) -> list[pa.Array]:
    """Binary columns -> text; a record with any non-UTF-8 field is read as ISO-8859-1."""
    try:
        return [c.cast(pa.string()) for c in columns]
    except pa.ArrowInvalid:
        pass
    # Rare (an ISO-8859-1 file has a few such records per block): find them by bisection,
    # re-decode just those records, and splice them in.
    bad = sorted({row for c in columns for row in _invalid_utf8(c, 0, len(c))})
    records = {row: _decode_record([c[row].as_py() for c in columns]) for row in bad}
    mask = pc.is_in(row_range(0, len(columns[0])), value_set=pa.array(bad, pa.int64()))
    out = []
    for i, column in enumerate(columns):
        fixed = pa.array([records[row][i].encode() for row in bad], pa.binary())
        out.append(pc.replace_with_mask(column, mask, fixed).cast(pa.string()))
    return out


def _invalid_utf8(column: pa.Array, start: int, length: int) -> list[int]:
    try:
        column.slice(start, length).cast(pa.string())
        return []
    except pa.ArrowInvalid:
        if length == 1:
            return [start]
        half = length // 2
        return _invalid_utf8(column, start, half) + _invalid_utf8(column, start + half, length - half)


@contextmanager
def _quiet_unraisable() -> Iterator[None]:
    """Arrow reports a ragged non-UTF-8 record through sys.unraisablehook before failing
    the read; the failure is handled (see read_csv_chunks), so the report is noise."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        sys.unraisablehook = hook


def _fit(fields: list[str], width: int) -> list[str]:
    return (fields + [""] * width)[:width]


_AS_BYTES = {f"f{i}": pa.binary() for i in range(1000)}  # Arrow's generated column names


class _Ragged:
    """Arrow's reader skips records of the wrong width; we keep them by record number."""

    def __init__(self) -> None:
        self.pending: dict[int, str] = {}  # record number (header = 1) -> text

    def __call__(self, row) -> str:
        self.pending[row.number] = row.text
        return "skip"


class PacedReads:
    """A file for Arrow's streaming CSV reader that reads at most `ahead` blocks past the
    batches taken (`took`). The reader reads (and inflates) blocks on a thread of its own,
    up to 32 ahead of the batches asked for: 32 x 5.5 MB of a bulk load's blocks, which a
    long load filled (RSS +180 MB at 10x, none for a file of fewer blocks). A batch needs
    its block and the next (a record across the boundary): `ahead` is at least 2."""

    closed = False  # for pa.PythonFile; the stream under it is closed by its opener

    def __init__(self, stream: pa.NativeFile, ahead: int = 2) -> None:
        self._stream, self.ahead = stream, max(2, ahead)
        self.reads = self.taken = 0
        self._stopped = False
        self._turn = threading.Condition()
        self._reading = threading.Lock()  # held over a read: stop() waits for it, then the stream may close

    def read(self, nbytes: int = -1) -> pa.Buffer | bytes:
        with self._turn:
            while self.reads - self.taken >= self.ahead and not self._stopped:
                self._turn.wait()
            if self._stopped:
                return b""  # the reader is being closed: the end, for its thread
            self.reads += 1
        with self._reading:
            return b"" if self._stopped else self._stream.read_buffer(nbytes)

    def took(self) -> None:
        with self._turn:
            self.taken += 1
            self._turn.notify_all()

    def stop(self) -> None:
        """Reads end from now on (the stream can be closed once this returns)."""
        with self._turn:
            self._stopped = True
            self._turn.notify_all()
        with self._reading:
            pass


def read_csv_chunks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[RowChunk]:
    """The file's data rows in order, a block at a time, as text columns."""
    ragged = _Ragged()
    raw = pa.OSFile(str(path))
    stream = pa.CompressedInputStream(raw, "gzip") if is_gzip(path) else raw
    paced = PacedReads(stream)

    def close() -> None:
        paced.stop()  # first: Arrow's thread may be in a read
        stream.close()
        raw.close()

    try:
        with _quiet_unraisable():
            reader = pacsv.open_csv(
                pa.PythonFile(paced, mode="r"),
                read_options=pacsv.ReadOptions(use_threads=False, block_size=block_bytes,
                                               autogenerate_column_names=True),
                parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=ragged),
                # every column as the bytes written: no type inference ("006" stays "006")
                convert_options=pacsv.ConvertOptions(column_types=_AS_BYTES, check_utf8=False,
                                                     strings_can_be_null=False,
                                                     quoted_strings_can_be_null=False),
            )
    except pa.ArrowInvalid as error:
        close()
        if "Empty CSV file" in str(error):
            raise CsvFormatError(f"{path} is empty") from None
        yield from _python_chunks(path, 0)
        return
    header: list[str] | None = None
    seen = 0  # records consumed, header included
    try:
        while True:
            try:
                with _quiet_unraisable():
                    batch = reader.read_next_batch()
                paced.took()
            except StopIteration:
                break
            except (pa.ArrowInvalid, UnicodeDecodeError):
                # e.g. a ragged record that is not UTF-8 (Arrow cannot hand it over):
                # Python's csv module reads the rest, numbering on from where we are.
                paced.stop()
                reader.close()
                if header is None:
                    raise CsvFormatError(f"{path}: cannot read the header") from None
                yield from _python_chunks(path, seen - 1, header)
                return
            columns = [c.cast(pa.binary()) for c in batch.columns]
            if header is None:
                width = len(columns)
                head = _decode_record([c[0].as_py() for c in columns])
                header = [h.strip().lstrip("\ufeff") for h in head]
                check_header(path, header)
                columns = [c.slice(1) for c in columns]
                seen = 1
            chunk = _numbered(columns, seen, ragged.pending, width)
            seen += chunk.num_rows
            if chunk.num_rows:
                yield RowChunk(header, _decode_columns(chunk.columns), chunk.rows)
        if header is None:
            raise CsvFormatError(f"{path} is empty")
        if ragged.pending:  # ragged records after the last full one
            chunk = _numbered([pa.array([], pa.binary())] * width, seen, ragged.pending, width)
            yield RowChunk(header, _decode_columns(chunk.columns), chunk.rows)
    finally:
        close()


def row_range(first: int, n: int) -> pa.Array:
    """first, first+1, ... (n of them) as int64, without a Python loop."""
    return pc.add(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), first - 1)


def _numbered(columns: list[pa.Array], seen: int, pending: dict[int, str], width: int) -> RowChunk:
    """Give `columns` (records after record `seen`) their row numbers, merging ragged ones in."""
    n = len(columns[0])
    start = seen + 1
    if not pending or min(pending) > seen + n + len(pending):
        return RowChunk([], columns, row_range(start - 1, n))
    numbers, extra, record = [], [], start
    while len(numbers) < n or record in pending:
        if record in pending:
            fields = next(csv.reader(io.StringIO(pending.pop(record))), [])
            extra.append((record - 1, _fit(fields, width)))
        else:
            numbers.append(record - 1)
        record += 1
    rows = pa.array(numbers + [r for r, _ in extra], pa.int64())
    merged = [
        pa.concat_arrays([col, pa.array([e[1][i].encode() for e in extra], pa.binary())])
        for i, col in enumerate(columns)
    ]
    order = pc.sort_indices(rows)
    return RowChunk([], [c.take(order) for c in merged], rows.take(order))


def _python_chunks(path: Path, done: int, header: list[str] | None = None, size: int = 50_000) -> Iterator[RowChunk]:
    """The slow, forgiving way (Python's csv module), for rows after row `done`."""
    with open_binary(path) as f:
        reader = csv.reader(_decode_record([line])[0] for line in f)
        head = next(reader, None)
        if head is None:
            raise CsvFormatError(f"{path} is empty")
        header = header or [h.strip().lstrip("\ufeff") for h in head]
        check_header(path, header)
        width = len(header)
        rows, records = [], []
        number = 0
        for record in reader:
            if not record:
                continue
            number += 1
            if number <= done:
                continue
            rows.append(number)
            records.append(_fit(record, width))
            if len(rows) == size:
                yield RowChunk(header, [pa.array(c, pa.string()) for c in zip(*records)], pa.array(rows, pa.int64()))
                rows, records = [], []
        if rows:
            yield RowChunk(header, [pa.array(c, pa.string()) for c in zip(*records)], pa.array(rows, pa.int64()))


def regrouped(chunks: Iterator[RowChunk], rows: int) -> Iterator[RowChunk]:
    """The same rows in chunks of exactly `rows` (the last one may be shorter): CSV blocks
    are cut by bytes, and every chunk costs a request or a transaction."""
    held: RowChunk | None = None
    for chunk in chunks:
        joined = chunk if held is None else _joined(held, chunk)
        if joined is None:  # columns of other types (the fallback reader's): hand over what was held
            yield held
            joined = chunk
        held = joined
        while held is not None and held.num_rows >= rows:
            yield _part(held, 0, rows)
            held = _part(held, rows, held.num_rows - rows) if held.num_rows > rows else None
    if held is not None and held.num_rows:
        yield held


def _joined(first: RowChunk, second: RowChunk) -> RowChunk | None:
    try:
        return RowChunk(first.header, [pa.concat_arrays([a, b]) for a, b in zip(first.columns, second.columns)],
                        pa.concat_arrays([first.rows, second.rows]))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _part(chunk: RowChunk, start: int, rows: int) -> RowChunk:
    return RowChunk(chunk.header, [c.slice(start, rows) for c in chunk.columns], chunk.rows.slice(start, rows))


def _cut(chunk: RowChunk, rows: int) -> Iterator[RowChunk]:
    for start in range(0, chunk.num_rows, rows):
        yield _part(chunk, start, rows)


def read_csv_rows(path: Path) -> Iterator[dict[str, str]]:
    """Yield each data row as {header name: text}; row numbers are 1-based, header excluded."""
    for chunk in read_csv_chunks(path):
        yield from chunk.to_dicts()
