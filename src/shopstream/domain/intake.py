"""Sorting a batch of raw lines into accepted events and dead letters (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shopstream.domain.columnar import EventTable, build_table, table_to_events
from shopstream.domain.events import idempotency_event_id, random_event_id
from shopstream.domain.line import DeadLetter, Event, FieldError
from shopstream.domain.parsing import LineParser


@dataclass
class Intake:
    table: EventTable  # the accepted lines, in input order
    dead_letters: list[DeadLetter]
    event_ids: list[str]  # one per input line, in order

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
) -> Intake:
    """Parse every raw line; each gets an event id, valid or not.

    Event ids: the client's own `event_id`, else one derived from `event_id_for(i)`
    (files) or the Idempotency-Key, else a random one. `pre_rejected` holds lines the
    transport already could not read (e.g. a malformed NDJSON line).
    """
    raws = list(raws)
    parsed = parse.parse_many(raws, pre_rejected)
    event_ids = [
        client_id
        if client_id is not None
        else event_id_for(i)
        if event_id_for is not None
        else idempotency_event_id(idempotency_key, i)
        if idempotency_key is not None
        else random_event_id()
        for i, client_id in enumerate(parsed.client_event_ids)
    ]
    table = build_table(
        [event_ids[i] for i in parsed.valid],
        received_at,
        source,
        parsed.columns,
        [raws[i] for i in parsed.valid],
    )
    dead_letters = [
        DeadLetter(event_ids[i], received_at, source, i, tuple(errors), raws[i])
        for i, errors in sorted(parsed.errors.items())
    ]
    return Intake(table, dead_letters, event_ids)
