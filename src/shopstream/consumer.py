"""The one consumer loop that s3-archiver, dynamo-writer and warehouse-loader share.

Read a batch after the group's checkpoint, write it to the sink (idempotent on
event_id), and only then commit the checkpoint. A crash anywhere replays at most
the uncommitted batch, which the sink absorbs. A failing sink is retried with
capped exponential backoff; the checkpoint does not move meanwhile.
"""

from __future__ import annotations

import errno
import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow.compute as pc

from shopstream import metrics
from shopstream.bootstrap import Container
from shopstream.observability import NotReady
from shopstream.ports import Batch

log = logging.getLogger("shopstream.consumer")

SinkWrite = Callable[[Batch], int]


@dataclass(frozen=True)
class ConsumerSpec:
    name: str  # the service, also its consumer group
    sink: Callable[[Container], SinkWrite]
    idle: Callable[[Container], None] = lambda c: None  # called when caught up


def _lake(c: Container) -> SinkWrite:
    lake = c.lake
    return lambda batch: lake.write(batch.batch_id, batch.table)


def _store(c: Container) -> SinkWrite:
    store = c.store
    return lambda batch: store.write(batch.table)


def _warehouse(c: Container) -> SinkWrite:
    warehouse = c.warehouse
    return lambda batch: warehouse.write(batch.table)


CONSUMERS = {
    spec.name: spec
    for spec in (
        ConsumerSpec("s3-archiver", _lake),
        ConsumerSpec("dynamo-writer", _store),
        ConsumerSpec("warehouse-loader", _warehouse, idle=lambda c: c.warehouse.caught_up()),
    )
}


class ConsumerState:
    """What /ready reports: the sink's last write failed (and why), or it is fine."""

    def __init__(self) -> None:
        self.failing: str | None = None

    def check(self) -> None:
        if self.failing:
            raise NotReady(self.failing)


def describe_failure(error: Exception) -> str:
    """A sentence for the operator; a full disk says so plainly."""
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or (
        isinstance(error, sqlite3.OperationalError) and "full" in str(error)
    ):
        return f"the sink's disk is full ({error}); free space and the consumer catches up"
    return f"{type(error).__name__}: {error}"


def request_ids(batch: Batch, limit: int = 100) -> list[str]:
    """The ingest request ids of a batch's lines (their source is `http:<request id>`)."""
    sources = pc.unique(batch.table["source"]).to_pylist()
    return sorted(s[5:] for s in sources if s.startswith("http:"))[:limit]


def run_consumer(
    spec: ConsumerSpec, container: Container, stop: threading.Event | None = None,
    state: ConsumerState | None = None,
) -> None:
    stop = stop or _stop_on_signals()
    state = state or ConsumerState()
    settings = container.settings
    write = spec.sink(container)
    reader = container.stream.reader(spec.name)
    new_events = metrics.CONSUMER_EVENTS.labels(spec.name, "new")
    seen_events = metrics.CONSUMER_EVENTS.labels(spec.name, "already_there")
    batch_sizes = metrics.CONSUMER_BATCH_EVENTS.labels(spec.name)
    write_seconds = metrics.SINK_WRITE_SECONDS.labels(spec.name)
    log.info("%s: consuming as group %r", spec.name, spec.name)
    backoff = 0.1
    try:
        while not stop.is_set():
            batch = reader.read(settings.consumer_batch_size)
            if batch is None:
                spec.idle(container)
                stop.wait(settings.consumer_poll_seconds)
                continue
            while True:
                try:
                    started = time.perf_counter()
                    new = write(batch)
                    break
                except Exception as error:  # the sink is down: keep the checkpoint, retry
                    state.failing = describe_failure(error)
                    metrics.SINK_WRITE_FAILURES.labels(spec.name, type(error).__name__).inc()
                    log.warning(
                        "%s: sink write failed, checkpoint kept at the batch before %s; "
                        "retrying in %.1fs: %s",
                        spec.name, batch.batch_id, backoff, state.failing,
                    )
                    if stop.wait(backoff):
                        return  # stopping: the batch stays uncommitted and is redelivered
                    backoff = min(backoff * 2, 5.0)
            elapsed = time.perf_counter() - started
            backoff = 0.1
            reader.commit(batch)
            if state.failing:
                log.info("%s: the sink is back; catching up", spec.name)
            state.failing = None
            rows = batch.table.num_rows
            new_events.inc(new)
            seen_events.inc(rows - new)
            batch_sizes.observe(rows)
            write_seconds.observe(elapsed)
            log.info(
                "%s: batch %s: %d events, %d new, %.0f ms",
                spec.name, batch.batch_id, rows, new, elapsed * 1000,
                extra={"fields": {"batch_id": batch.batch_id, "events": rows, "new": new,
                                  "request_ids": request_ids(batch)}},
            )
    finally:
        reader.close()
        container.close()
        log.info("%s: stopped", spec.name)


def _stop_on_signals() -> threading.Event:
    """SIGTERM/SIGINT finish the batch in hand, commit it, and exit cleanly."""
    stop = threading.Event()

    def handler(signum, frame):
        log.info("received %s: finishing the current batch", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
