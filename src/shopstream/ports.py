"""The ports: one small interface each. Adapters live in shopstream.adapters.<profile>.

Every sink is idempotent on event_id: writing an event twice (redelivery, a retried
request, a restarted consumer) stores it once. Every adapter passes the same contract
suite in tests/contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shopstream.domain.columnar import EventTable, table_to_events
from shopstream.domain.invoice_docs import InvoiceDoc
from shopstream.domain.line import DeadLetter, Event, Totals
from shopstream.domain.views import CustomerSummary, Invoice, InvoicePage
from shopstream.domain.views import InvalidCursor as InvalidCursor  # defined beside the cursor codec


@dataclass
class AppendResult:
    appended: int
    duplicates: set[str] = field(default_factory=set)  # event ids accepted before


@dataclass
class Batch:
    """Events read from the stream by one consumer group.

    `batch_id` depends only on where the batch starts, so a batch re-read after a
    crash (perhaps longer now) gets the same id and a sink keyed by it overwrites.
    """

    batch_id: str
    table: EventTable  # columns of EVENT_SCHEMA
    position: Any  # adapter-specific; passed back to commit()

    @property
    def events(self) -> list[Event]:
        return table_to_events(self.table)


@dataclass(frozen=True)
class GroupStatus:
    group: str
    checkpoint: str
    lag: int  # events not yet committed by the group


class StreamReader(Protocol):
    def read(self, max_events: int) -> Batch | None:
        """The next batch after the group's checkpoint, or None if there is none yet."""

    def commit(self, batch: Batch) -> None:
        """Advance the group's checkpoint past `batch` (call only after the sink committed)."""

    def close(self) -> None: ...


class Stream(Protocol):
    def append(self, table: EventTable) -> AppendResult:
        """Durably append; returns only when every event is safe. Partition key: invoice_no.

        An event id accepted before (by append or record_accepted) is not appended again."""

    def reader(self, group: str) -> StreamReader: ...

    def record_accepted(self, table: EventTable) -> int:
        """Ledger only, no records: for bulk loads, which write the sinks directly.

        Returns how many event ids were new, so `verify` counts what a bulk load accepted."""

    def accepted_among(self, event_ids: Sequence[str]) -> set[str]:
        """The ids of `event_ids` accepted before (bulk loads skip those: they are in the sinks)."""

    def holds_prefix(self, prefix: str) -> bool | None:
        """Whether any accepted event id starts with `prefix` (a file's ids: `f<hash>-`); None
        where the ledger cannot tell at the cost of one lookup (every chunk is then checked)."""

    def accepted(self) -> Totals:
        """Distinct accepted events and their money: what every sink must match."""

    def status(self, groups: Sequence[str]) -> list[GroupStatus]: ...

    def close(self) -> None: ...


class RawLake(Protocol):
    def write(self, batch_id: str, table: EventTable) -> int:
        """Store the lines as received plus envelope; returns how many were new."""

    def totals(self) -> Totals: ...

    def close(self) -> None: ...


class DeadLetters(Protocol):
    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Durably keep rejected lines with their reasons (idempotent on event_id)."""

    def count(self) -> int: ...

    def recent(self, limit: int) -> list[DeadLetter]: ...

    def close(self) -> None: ...


class Store(Protocol):
    """The operational store, shaped by the invoice API's access patterns."""

    # True where a read is a local lookup of well under a millisecond: the invoice API then
    # reads on the event loop instead of paying a worker-thread hop (more than the read).
    local_reads: bool = False

    def write(self, table: EventTable) -> int:
        """Returns how many lines were new."""

    def write_documents(self, docs: list[InvoiceDoc]) -> int:
        """`write` of the lines these documents were built from (domain.invoice_docs): a
        bulk load builds the next chunk's documents while the store writes the last ones."""

    def invoice(self, invoice_no: str) -> Invoice | None: ...

    def customer(self, customer_id: str) -> CustomerSummary | None: ...

    def customer_invoices(
        self, customer_id: str, limit: int, cursor: str | None = None
    ) -> InvoicePage | None:
        """Newest first; `cursor` is the opaque `next_cursor` of the previous page."""

    def totals(self) -> Totals: ...

    def flush(self) -> None:
        """A run of writes is over (a bulk load's end): do now, on the caller's thread, what
        the store would otherwise do at close (SQLite: copy its WAL into the database)."""

    def close(self) -> None: ...


class Warehouse(Protocol):
    def write(self, table: EventTable) -> int:
        """Returns how many lines were new."""

    def publish(self) -> None:
        """Make what was written visible to readers (a no-op where it already is)."""

    def caught_up(self) -> None:
        """The writer has nothing more to write for now (called often while idle): publish
        when due."""

    def totals(self) -> Totals: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LocalFile:
    """A bulk load's input as a local, seekable file (the readers need one)."""

    path: Path
    label: str  # what reports call it: the path or the s3:// URI
    digest: str | None = None  # SHA-256 of the bytes if already computed on the way (a download)


class FileSource(Protocol):
    def open(self, location: str) -> AbstractContextManager[LocalFile]:
        """A path, or (aws profile) an s3:// URI; FileNotFoundError if there is none."""


@dataclass
class Claim:
    """One inbox file that this loader alone is loading."""

    name: str  # the file's name, for reports and logs
    ref: Any  # adapter-specific (the claimed path; the S3 key and ETag)


@dataclass
class Outcome:
    name: str
    status: str  # "processed" or "failed"
    report: Any  # where the JSON report went: a Path, or an s3:// URI


class InboxItemGone(RuntimeError):
    """The claimed file vanished (another loader finished it): nothing to do."""


class Inbox(Protocol):
    """Files waiting to be bulk-loaded (a directory, an S3 prefix). Two loaders sharing an
    inbox never load one file twice: `claim` lets exactly one of them have it."""

    identity: str  # this loader, as claims and reports name it
    where: str  # the inbox's location, for logs

    def pending(self) -> list[Any]:
        """Claimable entries: interrupted loads of dead loaders first, then settled new files."""

    def claim(self, entry: Any) -> Claim | None:
        """Take the entry for this loader; None if another loader has it."""

    def fetch(self, claim: Claim) -> AbstractContextManager[LocalFile]:
        """The claimed file as a local file (InboxItemGone if it went meanwhile)."""

    def release(self, claim: Claim) -> None:
        """Give the file back to the inbox (a loader stopping mid-file)."""

    def finish(self, claim: Claim, status: str, report: dict) -> Outcome:
        """Report first, then move the file to `status`/ (processed or failed) beside it."""


class AnalyticsSource(Protocol):
    """Read-only SQL for the analytics API: the portable SELECTs of domain/metrics.py.

    `sql` uses `:name` parameters (SQLAlchemy's `text()` spelling; adapters translate);
    values are str, int, datetime. Rows come back as tuples: DECIMAL as Decimal,
    TIMESTAMP as naive datetime. The marts it reads are refreshed by the warehouse's
    writer (`metrics.MART_REFRESH`) before it makes new lines visible.
    """

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """Rows of one SELECT on the newest published data; WarehouseNotReady before any."""


class WarehouseNotReady(RuntimeError):
    """Nothing has been published to read yet (the API answers 503, Retry-After)."""
