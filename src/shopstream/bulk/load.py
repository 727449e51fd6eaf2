"""`shopstream bulk-load`: a file straight into the raw lake, the store and the warehouse.

Per chunk of rows (bounded memory however big the file): read (Arrow), validate
(ColumnParser: the ingest API's rules, a column at a time), then write the three sinks
at once (threads: DuckDB, Parquet and SQLite each release the GIL while they work),
then the dead letters, then the accepted lines into the stream's ledger, which is what
`verify` holds every sink to. Reading and validating the next chunk overlaps the writes.

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
from collections import Counter
from collections.abc import Callable
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
from shopstream.domain.events import file_event_id
from shopstream.domain.line import DeadLetter
from shopstream.files import CsvFormatError, content_hash

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


def _event_ids(digest: str, rows: pa.Array) -> pa.Array:
    prefix = file_event_id(digest, 0)[:-1]  # "f<hash16>-"
    return pc.binary_join_element_wise(pa.scalar(prefix), rows.cast(pa.string()), "")


class _Sinks:
    """The three sinks written at once; then, on another thread in chunk order (so the
    next chunk's writes overlap it), the dead letters and the ledger."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.lake, self.store, self.warehouse = container.lake, container.store, container.warehouse
        # one thread per sink: each keeps one connection (and one page cache)
        self.pools = [ThreadPoolExecutor(1, thread_name_prefix=f"bulk-{name}") for name in ("lake", "store", "warehouse")]
        self.after = ThreadPoolExecutor(1, thread_name_prefix="bulk-ledger")

    def write(self, batch_id: str, parsed: ParsedChunk) -> Future:
        """Returns when the sinks hold the chunk; the future says how many lines were new."""
        table = parsed.table
        if table.num_rows:
            # Lines accepted before (an earlier run, or `send` of the same file) are in every
            # sink already: skip them. The lake relies on this to hold each line once.
            known = self.container.stream.accepted_among(table["event_id"].to_pylist())
            table = first_occurrences(table, known) if known else table
        if table.num_rows:
            lake, store, warehouse = self.pools
            futures = [
                lake.submit(self.lake.write, batch_id, table),
                store.submit(self.store.write, table),
                warehouse.submit(self.warehouse.write, table),
            ]
            for future in futures:
                future.result()
        return self.after.submit(self._accept, parsed, table)

    def _accept(self, parsed: ParsedChunk, fresh: pa.Table) -> int:
        if parsed.dead_letters:
            self.container.dead_letters.write(parsed.dead_letters)
        # Last: a line counts as accepted once every sink holds it.
        return self.container.stream.record_accepted(fresh) if fresh.num_rows else 0

    def close(self) -> None:
        for pool in (*self.pools, self.after):
            pool.shutdown()


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

    # Reading + validating runs one chunk ahead of the writes (bounded: 1 chunk waiting).
    ready: queue.Queue = queue.Queue(maxsize=1)
    done = threading.Event()

    def produce() -> None:
        try:
            for chunk in read_chunks(path, chunk_rows):
                ids = _event_ids(digest, chunk.rows)
                parsed = parser.parse(chunk.header, chunk.columns, ids, chunk.rows, received_at, source)
                item = (chunk.rows[0].as_py(), chunk.num_rows, parsed)
                while not done.is_set():
                    try:
                        ready.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if done.is_set():
                    return
            ready.put(None)
        except CsvFormatError as error:  # handed to the writing thread, which raises it
            ready.put(error)
        except Exception as error:  # a corrupt file (broken gzip, Parquet...): unreadable, not a sink outage
            ready.put(UnsupportedFile(f"{label or path}: unreadable ({type(error).__name__}: {error})"))
        except BaseException as error:
            ready.put(error)

    reader = threading.Thread(target=produce, name="bulk-read", daemon=True)
    reader.start()
    sinks = _Sinks(container)
    previous: tuple[Future, int, ParsedChunk] | None = None

    def account(entry: tuple[Future, int, ParsedChunk]) -> None:
        future, rows, parsed = entry
        new = future.result()
        accepted = parsed.table.num_rows
        summary.rows += rows
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
            first_row, rows, parsed = item
            future = sinks.write(f"{digest[:16]}-r{first_row:012d}", parsed)
            if previous:
                account(previous)
            previous = (future, rows, parsed)
        if previous:
            account(previous)
    finally:
        done.set()
        sinks.close()  # waits for the ledger of the last chunk written
        # publish and let go of the warehouse, also when stopping half way (the
        # warehouse-loader may be waiting for its turn)
        container.warehouse.publish()
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
