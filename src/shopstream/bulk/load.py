"""`shopstream bulk-load`: a file straight into the raw lake, the store and the warehouse.

Per chunk of rows (bounded memory however big the file): read (Arrow), validate
(ColumnParser: the ingest API's rules, a column at a time) and drop the lines the
ledger holds already, on a reader thread; then each sink (raw lake, store, warehouse)
writes the chunk on a thread of its own, each at its own pace, up to a few chunks
apart (DuckDB, Parquet and SQLite release the GIL while they work); once all three hold
a chunk, its dead letters and then its accepted lines go into the stream's ledger,
which is what `verify` holds every sink to.

Exactly once: a row's event id is `file_event_id(content hash, row number)` (the ids
`shopstream send` gives the same rows) and every sink is idempotent on it, so a re-run,
or a run killed half way and started again, stores every row once. A chunk's lake
object is named after the file and its first row, so a re-run replaces it.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from shopstream.bootstrap import Container
from shopstream.bulk.readers import CHUNK_ROWS, UnsupportedFile, detect_format, read_chunks
from shopstream.domain.bulk_parsing import ColumnParser, ParsedChunk
from shopstream.domain.columnar import first_occurrences, line_totals_milli
from shopstream.domain.events import file_event_id, file_event_ids
from shopstream.domain.invoice_docs import invoice_docs
from shopstream.domain.line import DeadLetter
from shopstream.files import CsvFormatError, RowChunk, content_hash


class _LedgerFailed(Exception):
    """Raised from the ledger lookup's error on the reader thread: a sink outage, not a bad file."""


class LoadInterrupted(RuntimeError):
    """Stopped between chunks (SIGTERM); what was written stays, a re-run completes it."""


Progress = Callable[[int], None]  # rows done so far


@dataclass
class LoadSummary:
    file: str
    format: str
    content_hash: str
    rows: int = 0
    loaded: int = 0  # accepted now
    already_present: int = 0  # accepted by an earlier load or send of the same file
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    amount_milli: int = 0  # money of the accepted rows (new or not)
    seconds: float = 0.0
    examples: list[dict] = field(default_factory=list)  # the first few rejections

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return asdict(self) | {"rows_per_second": round(self.rows_per_second)}


_QUOTED = re.compile(r"""\s*(got )?('[^']*'|"[^"]*"|[-+\d.e]+(?=$|[,:)]))""")


def reason_kind(field_name: str, reason: str) -> str:
    """A reason without the offending value, for counting: 'Quantity: must be an integer'."""
    head = reason.split(": expected", 1)[0].split(", got", 1)[0]
    return f"{field_name}: {_QUOTED.sub('', head).rstrip(':, ')}"


def _id_prefix(digest: str) -> str:
    return file_event_id(digest, 0)[:-1]  # "f<hash16>-"


# Chunks between the reader and the ledger: enough for each sink to run ahead of the
# slowest, few enough to bound memory (a 61,440-row chunk is ~35 MB of Arrow buffers, and
# two more are being read and validated). 3 was no faster and peaked at ~930 MB at 10x
# scale, against ~800 MB with 2.
IN_FLIGHT = 2


@dataclass
class _Chunk:
    first_row: int
    rows: int
    parsed: ParsedChunk
    fresh: pa.Table  # the accepted lines not held by the sinks yet (a file's rows: distinct ids)
    warehouse: Future | None = None  # done once the warehouse holds all of it


# DuckDB writes an insert of whole row groups (122,880 rows) straight to the database file;
# the rows of a smaller one go through its WAL and are compressed again at the checkpoint.
# So the warehouse is written in whole row groups: for the reference file ~30 % less of
# its CPU, 88 -> 19 MB written, and a final checkpoint of 0.06 s instead of ~0.35 s.
WAREHOUSE_ROWS = 122_880


@dataclass
class _Unwritten:
    rows: int  # of one chunk, not in the warehouse yet
    future: Future = field(default_factory=Future)


class _RowGroups:
    """A bulk load's lines to the warehouse in writes of exactly WAREHOUSE_ROWS rows (a
    chunk may straddle two writes), what is left when asked (`flush`). A chunk's future
    is done once every row of it is written. Called from one thread; writes run on `pool`."""

    def __init__(self, write: Callable[[pa.Table], int], pool: ThreadPoolExecutor) -> None:
        self._write, self._pool = write, pool
        self._pieces: list[tuple[pa.Table, _Unwritten]] = []  # not handed to the pool yet
        self._rows = 0

    def add(self, table: pa.Table) -> Future:
        unwritten = _Unwritten(table.num_rows)
        self._pieces.append((table, unwritten))
        self._rows += table.num_rows
        while self._rows >= WAREHOUSE_ROWS:
            self._submit(WAREHOUSE_ROWS)
        return unwritten.future

    def holds(self, future: Future | None) -> bool:
        """Whether rows of the chunk of `future` wait for a later write."""
        return any(unwritten.future is future for _, unwritten in self._pieces)

    def flush(self) -> None:
        if self._rows:
            self._submit(self._rows)

    def _submit(self, rows: int) -> None:
        taken, left = [], rows
        while left:
            table, unwritten = self._pieces[0]
            if table.num_rows <= left:
                taken.append(self._pieces.pop(0))
                left -= table.num_rows
            else:
                taken.append((table.slice(0, left), unwritten))
                self._pieces[0] = (table.slice(left), unwritten)
                left = 0
        self._rows -= rows
        self._pool.submit(self._run, taken)

    def _run(self, taken: list[tuple[pa.Table, _Unwritten]]) -> None:
        try:
            self._write(pa.concat_tables([table for table, _ in taken]))
        except BaseException as error:
            for _, unwritten in taken:
                if not unwritten.future.done():
                    unwritten.future.set_exception(error)
            return
        for table, unwritten in taken:
            unwritten.rows -= table.num_rows
            if not unwritten.rows and not unwritten.future.done():
                unwritten.future.set_result(None)


class _Sinks:
    """One thread per sink, so each runs ahead at its own pace; a ledger thread takes the
    chunks in order and records each once every sink holds it. The warehouse is written
    in whole row groups (_RowGroups), and what it holds when the loader is about to wait
    for one of the chunks held, or at the end."""

    def __init__(self, container: Container) -> None:
        self.container = container
        # one thread per sink: each keeps one connection (and one page cache)
        self.lake = ThreadPoolExecutor(1, thread_name_prefix="bulk-lake")
        self.store = ThreadPoolExecutor(1, thread_name_prefix="bulk-store")
        # the store's invoice documents (Arrow, mostly without the GIL): for DynamoDB built a
        # chunk ahead of its writes, which wait on the network; for SQLite on its thread, just
        # before them: one thread fewer to share two cores and the GIL with (reference file:
        # -0.05 to -0.1 s, -0.1 to -0.15 CPU-s in alternated runs; equal at 10x)
        self.documents = (ThreadPoolExecutor(1, thread_name_prefix="bulk-documents") if container.aws_profile
                          else self.store)
        self.warehouse = ThreadPoolExecutor(1, thread_name_prefix="bulk-warehouse")
        self.after = ThreadPoolExecutor(1, thread_name_prefix="bulk-ledger")
        # `container.warehouse` on the warehouse thread: it opens (and imports DuckDB) there,
        # at once, while the first chunk is read (which leaves the GIL free)
        self.warehouse.submit(lambda: container.warehouse)
        self.row_groups = _RowGroups(lambda table: container.warehouse.write(table), self.warehouse)

    def write(self, batch_id: str, chunk: _Chunk) -> Future:
        """The future says how many lines were new, once the ledger has them."""
        writes = []
        if chunk.fresh.num_rows:
            chunk.warehouse = self.row_groups.add(chunk.fresh)
            docs = self.documents.submit(invoice_docs, chunk.fresh)
            writes = [self.lake.submit(self.container.lake.write, batch_id, chunk.fresh),
                      self.store.submit(lambda: self.container.store.write_documents(docs.result())), chunk.warehouse]
        return self.after.submit(self._accept, chunk, writes)

    def holds(self, chunk: _Chunk) -> bool:
        """Whether the warehouse holds some of the chunk's rows back for a later write."""
        return self.row_groups.holds(chunk.warehouse)

    def flush(self) -> None:
        self.row_groups.flush()

    def _accept(self, chunk: _Chunk, writes: list[Future]) -> int:
        for write in writes:
            write.result()  # a sink's failure: this chunk's lines are not accepted
        if chunk.parsed.dead_letters:
            self.container.dead_letters.write(chunk.parsed.dead_letters)
        # Last: a line counts as accepted once every sink holds it.
        return self.container.stream.record_accepted(chunk.fresh) if chunk.fresh.num_rows else 0

    def close(self) -> None:
        """Wait for every write. The warehouse publishes (refreshing the marts) and lets go
        of its file as soon as its own writes are done, while the other sinks finish theirs;
        also when stopping half way (the warehouse-loader may be waiting for its turn)."""
        self.flush()
        published = self.warehouse.submit(self.container.warehouse.publish)
        flushed = self.store.submit(self.container.store.flush)  # beside the marts' refresh
        for pool in (self.lake, self.documents, self.store, self.warehouse, self.after):
            pool.shutdown()
        published.result()
        flushed.result()


def _handed_over(to: queue.Queue, item: object, done: threading.Event) -> bool:
    """Put `item` in the bounded queue, unless the load ends first (then False): a thread
    whose load failed must not wait forever, holding a chunk."""
    while not done.is_set():
        try:
            to.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


_STOPPED = object()


def _taken(source: queue.Queue, done: threading.Event) -> object:
    """The next item, or _STOPPED once the load has ended."""
    while True:
        try:
            return source.get(timeout=0.2)
        except queue.Empty:
            if done.is_set():
                return _STOPPED


def _read_ahead(chunks: Iterator[RowChunk], done: threading.Event) -> Iterator[RowChunk]:
    """The chunks, read (inflated, split into columns) one ahead on a thread of their own
    while the caller validates the last: the reader paces the whole load, and its two
    halves each take about as long (~0.3 CPU-s for the reference file)."""
    ahead: queue.Queue = queue.Queue(maxsize=1)
    end = object()

    def read() -> None:
        try:
            for chunk in chunks:
                if not _handed_over(ahead, chunk, done):
                    return
            _handed_over(ahead, end, done)
        except BaseException as error:  # raised where the chunk would have been
            _handed_over(ahead, error, done)

    threading.Thread(target=read, name="bulk-inflate", daemon=True).start()
    while (chunk := _taken(ahead, done)) is not end and chunk is not _STOPPED:
        if isinstance(chunk, BaseException):
            raise chunk
        yield chunk


def _not_held(container: Container, table: pa.Table, first_load: bool) -> pa.Table:
    """The lines of `table` the sinks do not hold yet: accepted before (an earlier run, or
    `send` of the same file) means in every sink already. The lake relies on this to hold
    each line once. `first_load`: the ledger held none of the file's ids when the load began."""
    if first_load or not table.num_rows:
        return table
    known = container.stream.accepted_among(table["event_id"].to_pylist())
    return first_occurrences(table, known) if known else table


def load_file(
    path: Path,
    container: Container,
    chunk_rows: int = CHUNK_ROWS,
    on_progress: Progress | None = None,
    source: str | None = None,
    stop: threading.Event | None = None,
    digest: str | None = None,
    label: str | None = None,
) -> LoadSummary:
    """Load one file (CSV, CSV.gz, XLSX or Parquet) into every sink; see the module doc.

    `digest`: the SHA-256 of the file's bytes when the caller has it already (an S3
    download hashes on the way); `label`: its name in the summary (an s3:// URI)."""
    started = time.perf_counter()
    digest = digest or content_hash(path)
    summary = LoadSummary(label or str(path), detect_format(path), digest)
    zone = ZoneInfo(container.settings.shop_timezone)
    received_at = datetime.now(zone).replace(tzinfo=None)
    source = (source or f"bulk:{Path(label).name if label else path.name}")[:200]
    parser = ColumnParser(container.settings.shop_timezone)
    reasons: Counter[str] = Counter()
    # A file the ledger holds no line of (one index probe) needs no lookup per chunk: its
    # ids are its own (f<hash>-<row>). Two loads of one file begun at the same moment would
    # both write it: the store, warehouse and ledger keep each line once, and the lake
    # replaces the objects (named by file and first row) if both chunk it alike. (The
    # bulk-loader's inbox claims never start two loads of one file.)
    first_load = container.stream.holds_prefix(_id_prefix(digest)) is False

    # Reading + validating runs ahead of the writes (bounded: 1 chunk waiting).
    ready: queue.Queue = queue.Queue(maxsize=1)
    done = threading.Event()

    def produce() -> None:
        try:
            for chunk in _read_ahead(read_chunks(path, chunk_rows), done):
                ids = file_event_ids(digest, chunk.rows)
                parsed = parser.parse(chunk.header, chunk.columns, ids, chunk.rows, received_at, source)
                try:
                    fresh = _not_held(container, parsed.table, first_load)
                except Exception as error:  # the ledger failed, not the file
                    raise _LedgerFailed() from error
                if not _handed_over(ready, _Chunk(chunk.rows[0].as_py(), chunk.num_rows, parsed, fresh), done):
                    return
            _handed_over(ready, None, done)
        except _LedgerFailed as failed:  # handed to the writing thread, which raises it
            _handed_over(ready, failed.__cause__, done)
        except CsvFormatError as error:
            _handed_over(ready, error, done)
        except Exception as error:  # a corrupt file (broken gzip, Parquet...): unreadable, not a sink outage
            _handed_over(ready, UnsupportedFile(f"{label or path}: unreadable ({type(error).__name__}: {error})"), done)
        except BaseException as error:
            _handed_over(ready, error, done)

    reader = threading.Thread(target=produce, name="bulk-read", daemon=True)
    reader.start()
    sinks = _Sinks(container)
    pending: deque[tuple[Future, _Chunk]] = deque()

    def account(entry: tuple[Future, _Chunk]) -> None:
        future, chunk = entry
        new = future.result()
        parsed = chunk.parsed
        accepted = parsed.table.num_rows
        summary.rows += chunk.rows
        summary.loaded += new
        summary.already_present += accepted - new
        summary.rejected += len(parsed.dead_letters)
        if accepted:
            summary.amount_milli += pc.sum(line_totals_milli(parsed.table)).as_py()
        _count_reasons(parsed.dead_letters, reasons, summary.examples)
        if on_progress:
            on_progress(summary.rows)

    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            if stop is not None and stop.is_set():
                raise LoadInterrupted(f"{path}: stopped after {summary.rows:,} rows")
            pending.append((sinks.write(f"{digest[:16]}-r{item.first_row:012d}", item), item))
            while pending and (pending[0][0].done() or len(pending) >= IN_FLIGHT):
                if not pending[0][0].done() and sinks.holds(pending[0][1]):
                    # the warehouse is filling a row group with that chunk: read one more
                    # (chunks short of half a group, dead letters say); then write what it holds
                    if len(pending) <= IN_FLIGHT:
                        break
                    sinks.flush()
                account(pending.popleft())
        sinks.flush()
        while pending:
            account(pending.popleft())
    finally:
        done.set()
        sinks.close()  # waits for the ledger of the last chunk written, and publishes
    summary.rejected_by_reason = dict(reasons.most_common())
    summary.seconds = time.perf_counter() - started
    return summary


def _count_reasons(letters: list[DeadLetter], reasons: Counter, examples: list[dict]) -> None:
    for letter in letters:
        for error in letter.errors:
            reasons[reason_kind(error.field, error.reason)] += 1
        if len(examples) < 10:
            examples.append({"row": letter.index, "event_id": letter.event_id,
                             "errors": [e.as_dict() for e in letter.errors]})
