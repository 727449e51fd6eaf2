"""Latency of every analytics endpoint over real HTTP, on the reference data (and 10x of it).

    python bench/analytics.py [--requests N] [--ten-x]

Loads the reference file (and with --ten-x a generated file of 5,419,090 lines from
`shopstream generate`) straight into a DuckDB warehouse in a temporary directory,
builds the marts as the warehouse-loader does on publish (timed: the loader's cost),
starts `shopstream service analytics-api` on it, and sends each request N times after
a warm-up, one at a time. Baseline in the same run: GET /health of the same process
(HTTP + FastAPI, no query). Prints p50/p99 per endpoint as a Markdown table, with the
server's CPU time per request (user + system, all threads), which unlike wall time
hardly moves when other work shares the two cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import REFERENCE, bench_key, free_port  # noqa: E402

from shopstream.adapters.local.warehouse import DuckDBSnapshotReader, DuckDBWarehouse  # noqa: E402
from shopstream.domain.metrics import EARLIEST  # noqa: E402
from shopstream.supervisor import service_env, wait_healthy  # noqa: E402
from tests.warehouse_data import csv_event_table  # noqa: E402

ENDPOINTS = [
    ("/health", {}),  # the baseline
    ("/analytics/summary", {}),
    ("/analytics/sales", {"grain": "month"}),
    ("/analytics/sales", {"grain": "week"}),
    ("/analytics/sales", {"grain": "day"}),
    ("/analytics/sales", {"grain": "hour"}),
    ("/analytics/sales/average", {"grain": "day"}),
    ("/analytics/sales/profile", {"by": "hour"}),
    ("/analytics/sales/profile", {"by": "weekday"}),
    ("/analytics/products/top", {"limit": 10}),
    ("/analytics/products/top", {"limit": 10, "from": "2011-11-01", "to": "2011-12-01"}),
    ("/analytics/products/top-per-bucket", {"grain": "month"}),
    ("/analytics/products/top-per-bucket", {"grain": "hour"}),
    ("/analytics/invoices/top", {"limit": 10}),
    ("/analytics/countries", {}),
    ("/analytics/cancellations", {"grain": "month"}),
    ("/analytics/customers/summary", {"limit": 20}),
    ("/analytics/customers/rfm", {"limit": 20}),
    ("/analytics/customers/rfm", {"limit": 20, "from": "2011-01-01"}),
    ("/analytics/customers/cohorts", {}),
]


def build(data_dir: Path, files: list[Path]) -> dict[str, float]:
    """Load the files into data_dir's warehouse; time a full marts build and a one-day refresh."""
    writer = DuckDBWarehouse(data_dir / "warehouse.duckdb", snapshot_interval=3600)
    lines = 0
    for path in files:
        print(f"loading {path.name}...", flush=True)
        table = csv_event_table(path)
        for start in range(0, table.num_rows, 500_000):
            lines += writer.write(table.slice(start, 500_000))
    started = time.perf_counter()
    writer.refresh_marts(since=EARLIEST)
    full = time.perf_counter() - started
    writer.publish()
    (last,), = DuckDBSnapshotReader(data_dir / "warehouse.duckdb").query("SELECT last_invoice_date FROM mart_meta")
    started = time.perf_counter()
    writer.refresh_marts(since=last.replace(hour=0, minute=0, second=0))
    incremental = time.perf_counter() - started
    writer.close()
    return {"lines": lines, "full": full, "incremental": incremental}


def measure(url: str, requests: int, server: psutil.Process, headers: dict[str, str]) -> list[tuple[str, float, float, float, int]]:
    rows = []
    with httpx.Client(base_url=url, timeout=120, headers=headers) as client:
        for path, params in ENDPOINTS:
            for _ in range(3):
                response = client.get(path, params=params)
                response.raise_for_status()
            times = []
            cpu = server.cpu_times()
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(path, params=params)
                times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            after = server.cpu_times()
            cpu_ms = (after.user + after.system - cpu.user - cpu.system) * 1000 / requests
            times.sort()
            p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
            query = "&".join(f"{k}={v}" for k, v in params.items())
            rows.append((path + (f"?{query}" if query else ""), statistics.median(times), p99, cpu_ms,
                         len(response.content)))
            print(f"  {rows[-1][0]:70s} p50 {rows[-1][1]:7.1f} ms  p99 {rows[-1][2]:7.1f} ms  "
                  f"cpu {cpu_ms:6.1f} ms", flush=True)
    return rows


def run(label: str, files: list[Path], requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        built = build(data_dir, files)
        port = free_port()
        key_env, headers = bench_key(data_dir)
        env = service_env({"SHOPSTREAM_DATA_DIR": str(data_dir), "SHOPSTREAM_ANALYTICS_PORT": str(port),
                           "SHOPSTREAM_RATE_LIMIT_PER_SECOND": "0", **key_env})
        server = subprocess.Popen([sys.executable, "-m", "shopstream", "service", "analytics-api"], env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy([url])
            print(f"{label}: {built['lines']:,} lines; marts: full build {built['full']:.2f} s, "
                  f"refresh after a day of new lines {built['incremental']:.2f} s", flush=True)
            rows = measure(url, requests, psutil.Process(server.pid), headers)
        finally:
            server.terminate()
            server.wait(30)
    print()
    print(f"{label}: {built['lines']:,} lines, {requests} requests each, one at a time "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print()
    print("| endpoint | p50 ms | p99 ms | server CPU ms | bytes |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, p50, p99, cpu_ms, size in rows:
        print(f"| `{name}` | {p50:.1f} | {p99:.1f} | {cpu_ms:.1f} | {size:,} |")
    print(f"\nmarts: full build {built['full']:.2f} s; refresh after a day of new lines {built['incremental']:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--ten-x", action="store_true", help="also 5,419,090 generated lines")
    args = parser.parse_args()
    run("reference data", [REFERENCE], args.requests)
    if args.ten_x:
        big = Path(tempfile.gettempdir()) / "shopstream-bench-5419090.csv.gz"
        if not big.exists():
            print("generating 5,419,090 lines (once)...", flush=True)
            subprocess.run([sys.executable, "-m", "shopstream", "generate", "--rows", "5419090", "--out", str(big)],
                           check=True)
        run("10x data (generated)", [big], max(20, args.requests // 5))


if __name__ == "__main__":
    main()
