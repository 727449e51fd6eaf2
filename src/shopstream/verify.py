"""`shopstream verify`: every sink holds exactly the accepted lines and money."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from shopstream.bootstrap import Container
from shopstream.domain.line import Totals
from shopstream.entrypoints.services import CONSUMER_SERVICES
from shopstream.ports import GroupStatus

SINKS = (("raw lake", "lake"), ("operational store", "store"), ("warehouse", "warehouse_reader"))


@dataclass
class Report:
    accepted: Totals
    dead_letters: int
    sinks: dict[str, Totals]
    groups: list[GroupStatus]

    @property
    def ok(self) -> bool:
        return all(t == self.accepted for t in self.sinks.values())

    @property
    def lag(self) -> int:
        """Events the slowest consumer group has yet to commit."""
        return max((g.lag for g in self.groups), default=0)


def measure(container: Container) -> Report:
    return Report(
        accepted=container.stream.accepted(),
        dead_letters=container.dead_letters.count(),
        sinks={label: getattr(container, attr).totals() for label, attr in SINKS},
        groups=container.stream.status(CONSUMER_SERVICES),
    )


def verify(
    container: Container, wait_seconds: float = 0.0, on_wait: Callable[[str], None] | None = None
) -> Report:
    """Measure; while sinks differ and time is left, wait for the consumers to drain.
    Polls every 0.25 s (the lag is a cheap query; once it is 0 the warehouse's snapshot
    follows within its publish interval): a 1 s sleep here made `--wait` answer up to a
    second after the sinks matched."""
    deadline = time.monotonic() + wait_seconds
    while True:
        groups = container.stream.status(CONSUMER_SERVICES)
        lag = max((g.lag for g in groups), default=0)
        if lag and time.monotonic() < deadline:
            if on_wait:
                on_wait(f"consumers are {lag:,} events behind; waiting")
            time.sleep(0.25)
            continue
        report = measure(container)
        if report.ok or time.monotonic() >= deadline:
            return report
        if on_wait:
            on_wait("sinks differ from the accepted lines; waiting for them to settle")
        time.sleep(0.25)
