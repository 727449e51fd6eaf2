"""Fault injection: SIGKILL randomly chosen services at random moments.

Used by the fault-injection test (tests/reliability) and the soak (bench/soak.py). It
only needs a way to find a service's current process id, so it works against
`shopstream up` (via psutil) as well as an in-process `Supervisor` (`supervisor.pid`).
The first kills visit every service once in a random order, so a run of at least as
many kills as services hits each of them; later kills pick any running service.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Kill:
    at: float  # seconds since the monkey started
    service: str
    pid: int


@dataclass
class ChaosMonkey:
    pid_of: Callable[[str], int | None]  # the service's running process, or None while it restarts
    services: Sequence[str]
    rng: random.Random
    pause: tuple[float, float] = (1.5, 4.5)  # seconds between kills, uniformly drawn
    max_kills: int = 10
    # kill only while every service runs: a long soak must not starve the system, since
    # the supervisor's restart delay grows while a service keeps dying within a minute
    one_at_a_time: bool = False
    kills: list[Kill] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ChaosMonkey:
        self._thread = threading.Thread(target=self._run, name="chaos-monkey", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Kill]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        return self.kills

    def _run(self) -> None:
        started = time.monotonic()
        order = list(self.services)
        self.rng.shuffle(order)
        while len(self.kills) < self.max_kills and not self._stop.wait(self.rng.uniform(*self.pause)):
            running = {name: pid for name in self.services if (pid := self.pid_of(name))}
            if self.one_at_a_time and len(running) < len(self.services):
                continue
            preferred = [n for n in order if n in running] if order else list(running)
            if not preferred:
                continue
            name = preferred[0] if order else self.rng.choice(preferred)
            try:
                os.kill(running[name], signal.SIGKILL)
            except ProcessLookupError:
                continue
            if name in order:
                order.remove(name)
            self.kills.append(Kill(round(time.monotonic() - started, 2), name, running[name]))
