"""Helpers for benchmarks: the reference data straight into a data directory, open-loop load."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx

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
                    connections: int = 32, headers: dict[str, str] | None = None) -> dict[str, list[float]]:
    """Fire requests at a fixed rate (not waiting for answers), record latency per label."""
    rng = random.Random(7)
    latencies: dict[str, list[float]] = {}
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(10, pool=None)  # on an overloaded machine requests queue; they still count
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout, headers=headers) as client:
        async def one(label: str, path: str) -> None:
            nonlocal errors
            started = time.perf_counter()
            response = await client.get(path)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                errors += 1
                if errors == 1:
                    print(f"{path}: {response.status_code} {response.text[:200]}")
            latencies.setdefault(label, []).append(elapsed)

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(*paths(rng))))
        await asyncio.gather(*tasks)
    if errors:
        raise SystemExit(f"{errors} requests failed")
    return latencies
