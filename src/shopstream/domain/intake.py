"""Sorting a batch of raw lines into accepted events and dead letters (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, partial
from typing import Any

import pyarrow as pa

from shopstream.domain.columnar import FIELD_TYPES, EventTable, build_table, table_to_events
from shopstream.domain.events import idempotency_event_id, random_event_id
from shopstream.domain.line import DeadLetter, Event, FieldError
from shopstream.domain.parsing import CANONICAL_FIELDS, LineParser


@dataclass
class Intake:
    event_ids: list[str]  # one per input line, in order
    accepted_ids: list[str]  # the valid lines' ids, in order
    columns: dict[str, list[Any]]  # the valid lines' parsed fields
    raws: list[Any]  # the valid lines as received
    received_at: datetime
    source: str
    dead_letters: list[DeadLetter]

    @cached_property
    def table(self) -> EventTable:
        return build_table(self.accepted_ids, self.received_at, self.source, self.columns, self.raws)

    @property
    def events(self) -> list[Event]:
        return table_to_events(self.table)

    def rejection_report(self) -> list[dict[str, Any]]:
        return [
            {"index": d.index, "event_id": d.event_id, "errors": [e.as_dict() for e in d.errors]}
            for d in self.dead_letters
        ]


def take_in(
    raws: Sequence[Any],
    parse: LineParser,
    received_at: datetime,
    source: str,
    idempotency_key: str | None = None,
    event_id_for: Callable[[int], str] | None = None,
    pre_rejected: dict[int, FieldError] | None = None,
    texts: Sequence[str] | None = None,
) -> Intake:
    """Parse every raw line; each gets an event id, valid or not.

    Event ids: the client's own `event_id`, else one derived from `event_id_for(i)`
    (files) or the Idempotency-Key, else a random one. `pre_rejected` holds lines the
    transport already could not read (e.g. a malformed NDJSON line). `texts`: each line's
    JSON text as received (NDJSON), kept as the accepted lines' raw form.
    """
    raws = raws if isinstance(raws, list) else list(raws)
    parsed = parse.parse_many(raws, pre_rejected)
    if event_id_for is None and idempotency_key is not None:
        event_id_for = partial(idempotency_event_id, idempotency_key)
    event_ids = [
        client_id
        if client_id is not None
        else event_id_for(i)
        if event_id_for is not None
        else random_event_id()
        for i, client_id in enumerate(parsed.client_event_ids)
    ]
    kept = raws if texts is None else list(texts)
    dead_letters = [
        DeadLetter(event_ids[i], received_at, source, i, tuple(errors), raws[i])
        for i, errors in sorted(parsed.errors.items())
    ]
    return Intake(
        event_ids,
        [event_ids[i] for i in parsed.valid] if parsed.errors else event_ids,
        parsed.columns,
        [kept[i] for i in parsed.valid] if parsed.errors else kept,
        received_at,
        source,
        dead_letters,
    )


def merged_table(intakes: Sequence[Intake]) -> EventTable:
    """One table for several intakes (a group commit), built once instead of per intake."""
    if len(intakes) == 1:
        return intakes[0].table
    ids, raws, received, sources = [], [], [], []
    pieces: dict[str, list[Any]] = {field: [] for field in CANONICAL_FIELDS}
    for intake in intakes:
        ids += intake.accepted_ids
        raws += intake.raws
        received += [intake.received_at] * len(intake.accepted_ids)
        sources += [intake.source] * len(intake.accepted_ids)
        for field, values in intake.columns.items():
            pieces[field].append(values)
    columns = {field: _joined(parts, FIELD_TYPES[field]) for field, parts in pieces.items()}
    return build_table(ids, received, sources, columns, raws)


def _joined(parts: list[Any], type_: pa.DataType) -> list[Any] | pa.Array:
    """Python lists (the row-wise parser's) or Arrow arrays (the columnar one's), as one."""
    if all(isinstance(part, list) for part in parts):
        return [value for part in parts for value in part]
    return pa.concat_arrays([pa.array(part, type_) for part in parts])
