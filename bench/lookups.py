"""Invoice API lookups at a fixed rate on the reference data: p50/p95/p99.

    python bench/lookups.py [--rate 500] [--seconds 20] [--data-dir DIR]

Loads ../shared/data/online-retail.csv.gz into the operational store (unless
--data-dir already holds it), starts invoice-api, and sends GET /invoices/{no} and
GET /customers/{id}/invoices for random invoices and customers of the file, at a
fixed rate (open loop: requests go out on schedule whether or not earlier ones
answered). Target (issue 6): p99 <= 5 ms at 500 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import load_store, open_loop, percentiles  # noqa: E402
from _stack import REFERENCE, bench_key, free_port  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    with gzip.open(REFERENCE, "rt") as f:
        rows = list(csv.DictReader(f))
    invoices = sorted({r["InvoiceNo"] for r in rows})
    customers = sorted({r["CustomerID"].split(".")[0] for r in rows if r["CustomerID"]})
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        if not (data_dir / "store.sqlite3").exists():
            started = time.perf_counter()
            print(f"loaded {load_store(REFERENCE, data_dir):,} lines into the store "
                  f"in {time.perf_counter() - started:.0f}s", flush=True)
        port = free_port()
        key_env, headers = bench_key(data_dir)
        # One key stands for many customers here: the per-key rate limit (100/s) would answer 429.
        env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(data_dir), SHOPSTREAM_INVOICE_PORT=str(port),
                   SHOPSTREAM_RATE_LIMIT_PER_SECOND="0", **key_env)
        server = subprocess.Popen([sys.executable, "-m", "shopstream", "service", "invoice-api"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    httpx.get(url + "/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)

            def paths(rng):
                if rng.random() < 0.5:
                    return "GET /invoices/{no}", f"/invoices/{rng.choice(invoices)}"
                return "GET /customers/{id}/invoices", f"/customers/{rng.choice(customers)}/invoices"

            asyncio.run(open_loop(url, args.rate, 3, paths, headers=headers))  # warm up
            cpu = psutil.Process(server.pid).cpu_times()
            latencies = asyncio.run(open_loop(url, args.rate, args.seconds, paths, headers=headers))
            after = psutil.Process(server.pid).cpu_times()
            cpu_us = (after.user + after.system - cpu.user - cpu.system) / (args.rate * args.seconds) * 1e6
        finally:
            server.terminate()
            server.wait()
    print(f"invoice-api CPU per request: {cpu_us:.0f} µs; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"| endpoint at {args.rate:.0f} req/s total, {args.seconds:.0f}s | requests | p50 | p95 | p99 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, samples in sorted(latencies.items()):
        p = percentiles(samples)
        print(f"| {label} | {p['n']:,} | {p['p50'] * 1000:.1f} ms | {p['p95'] * 1000:.1f} ms | {p['p99'] * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
