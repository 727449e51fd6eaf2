"""Helpers for benchmarks: the reference data straight into a data directory, open-loop load."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from shopstream.bootstrap import Container
from shopstream.config import Settings
from shopstream.domain.events import file_event_id
from shopstream.domain.intake import take_in
from shopstream.domain.parsing import LineParser
from shopstream.files import content_hash, read_csv_rows
from shopstream.iterutil import batched


def load_store(path: Path, data_dir: Path, chunk: int = 50_000) -> int:
    """Parse the file as the API would and write it to the operational store directly."""
    container = Container(Settings(data_dir=data_dir))
    digest, parse, count = content_hash(path), LineParser(), 0
    for rows in batched(enumerate(read_csv_rows(path), start=1), chunk):
        intake = take_in([r for _, r in rows], parse, datetime.now(), "bench",
                         event_id_for=lambda i, first=rows[0][0]: file_event_id(digest, first + i))
        count += container.store.write(intake.table)
    container.close()
    return count


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99),
            "mean": statistics.fmean(ordered)}


async def open_loop(base_url: str, rate: float, seconds: float, paths: Callable[[random.Random], tuple[str, str]],
                    connections: int = 16, headers: dict[str, str] | None = None) -> dict[str, list[float]]:
    """Requests due at a fixed rate, whether or not earlier ones answered; latency per label.

    Latency counts from when a request was due, not when a connection was free, so a
    server that falls behind shows it (no coordinated omission). The client is raw asyncio
    HTTP/1.1 on keep-alive connections: httpx costs more CPU per request than the server
    under test and its pool degrades with thousands of waiting requests.
    """
    host, port = base_url.removeprefix("http://").split(":")
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    rng = random.Random(7)
    due: asyncio.Queue = asyncio.Queue()
    latencies: dict[str, list[float]] = {}
    failures: list[str] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while (item := await due.get()) is not None:
            at, label, path = item
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            body = await reader.readexactly(length)
            latencies.setdefault(label, []).append(time.perf_counter() - at)
            if not head.startswith(b"HTTP/1.1 200"):
                failures.append(f"{path}: {head.split(bytes([13]))[0].decode()} {body[:200].decode()}")
        writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        at = start + i / rate
        if (delay := at - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        due.put_nowait((at, *paths(rng)))
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return latencies
