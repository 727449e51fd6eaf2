"""The one consumer loop that s3-archiver, dynamo-writer and warehouse-loader share.

Read a batch after the group's checkpoint, write it to the sink (idempotent on
event_id), and only then commit the checkpoint. A crash anywhere replays at most
the uncommitted batch, which the sink absorbs. A failing sink is retried with
capped exponential backoff; the checkpoint does not move meanwhile.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from shopstream.bootstrap import Container
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
        ConsumerSpec("warehouse-loader", _warehouse, idle=lambda c: c.warehouse.publish()),
    )
}


def run_consumer(
    spec: ConsumerSpec, container: Container, stop: threading.Event | None = None
) -> None:
    stop = stop or _stop_on_signals()
    settings = container.settings
    write = spec.sink(container)
    reader = container.stream.reader(spec.name)
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
                    log.warning(
                        "%s: sink write failed (%s: %s); retrying in %.1fs",
                        spec.name, type(error).__name__, error, backoff,
                    )
                    if stop.wait(backoff):
                        return  # stopping: the batch stays uncommitted and is redelivered
                    backoff = min(backoff * 2, 5.0)
            backoff = 0.1
            reader.commit(batch)
            log.info(
                "%s: batch %s: %d events, %d new, %.0f ms",
                spec.name, batch.batch_id, batch.table.num_rows, new,
                (time.perf_counter() - started) * 1000,
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
