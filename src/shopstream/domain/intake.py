"""Sorting a batch of raw lines into accepted events and dead letters (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shopstream.domain.events import idempotency_event_id, random_event_id
from shopstream.domain.line import DeadLetter, Event, FieldError
from shopstream.domain.parsing import LineParser


@dataclass
class Intake:
    events: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)  # one per input line, in order

    def rejection_report(self) -> list[dict[str, Any]]:
        return [
            {
                "index": d.index,
                "event_id": d.event_id,
                "errors": [e.as_dict() for e in d.errors],
            }
            for d in self.dead_letters
        ]


def take_in(
    raws: Sequence[Any],
    parse: LineParser,
    received_at: datetime,
    source: str,
    idempotency_key: str | None = None,
    event_id_for: Callable[[int], str] | None = None,
    index_base: int = 0,
    pre_rejected: dict[int, FieldError] | None = None,
) -> Intake:
    """Parse every raw line; each gets an event id, valid or not.

    Event ids: the client's own `event_id`, else one derived from `event_id_for(i)`
    (files) or the Idempotency-Key, else a random one. `pre_rejected` holds lines the
    transport already could not read (e.g. a malformed NDJSON line).
    """
    intake = Intake()
    for i, raw in enumerate(raws):
        index = index_base + i
        if pre_rejected and index in pre_rejected:
            line, client_id, errors = None, None, [pre_rejected[index]]
        else:
            line, client_id, errors = parse(raw)
        if client_id is not None:
            event_id = client_id
        elif event_id_for is not None:
            event_id = event_id_for(index)
        elif idempotency_key is not None:
            event_id = idempotency_event_id(idempotency_key, index)
        else:
            event_id = random_event_id()
        intake.event_ids.append(event_id)
        if line is None:
            intake.dead_letters.append(
                DeadLetter(event_id, received_at, source, index, tuple(errors), raw)
            )
        else:
            intake.events.append(Event(event_id, received_at, source, line, raw))
    return intake
