"""The ports: one small interface each. Adapters live in shopstream.adapters.<profile>.

Every sink is idempotent on event_id: writing an event twice (redelivery, a retried
request, a restarted consumer) stores it once. Every adapter passes the same contract
suite in tests/contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shopstream.domain.columnar import EventTable, table_to_events
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

    def write(self, table: EventTable) -> int:
        """Returns how many lines were new."""

    def invoice(self, invoice_no: str) -> Invoice | None: ...

    def customer(self, customer_id: str) -> CustomerSummary | None: ...

    def customer_invoices(
        self, customer_id: str, limit: int, cursor: str | None = None
    ) -> InvoicePage | None:
        """Newest first; `cursor` is the opaque `next_cursor` of the previous page."""

    def totals(self) -> Totals: ...

    def close(self) -> None: ...


class Warehouse(Protocol):
    def write(self, table: EventTable) -> int:
        """Returns how many lines were new."""

    def publish(self) -> None:
        """Make what was written visible to readers (a no-op where it already is)."""

    def totals(self) -> Totals: ...

    def close(self) -> None: ...


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
