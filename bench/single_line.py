"""One line per POST, 16 concurrent connections (the seed client's style), against a bare endpoint.

    python bench/single_line.py [--seconds 15] [--connections 16]

Runs wrk (Debian package `wrk`) for the same time against (1) a bare uvicorn endpoint
that reads the body and returns 202, (2) for reference, the same in FastAPI with the
body's JSON decoded (what any FastAPI handler of a line costs), and (3) ingest-api on the local profile, each
line a pandas-style JSON object without event_id. Prints requests/s and the ratio,
and the server's CPU time per request (steadier than req/s on a shared machine).
The consumers are not running: this measures what the API itself sustains.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import bench_key, free_port  # noqa: E402

BODY = ('{"InvoiceNo":536365,"StockCode":"85123A","Description":"WHITE HANGING HEART T-LIGHT HOLDER",'
        '"Quantity":6,"InvoiceDate":"12/1/2010 8:26","UnitPrice":2.55,"CustomerID":17850.0,'
        '"Country":"United Kingdom"}')
LUA = f"""wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "%s"
"""


def wait_up(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def wrk(url: str, seconds: int, connections: int, script: Path) -> tuple[float, str]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"Latency Distribution.*?99%\s+(\S+)", out, re.S).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{non2xx.group(1)} requests failed:\n{out}")
    return rps, p99


def serve(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk: apt-get install -y wrk")
    with tempfile.TemporaryDirectory() as tmp:
        key_env, headers = bench_key(Path(tmp))
        script = Path(tmp) / "post.lua"
        script.write_text(LUA % headers["Authorization"])
        results = {}
        for name in ("bare uvicorn endpoint (baseline)", "bare FastAPI endpoint (reference)", "ingest-api"):
            port = free_port()
            # auth on, with a rate limit no client here reaches: the limiter's cost is measured too
            env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(Path(tmp) / "data"), SHOPSTREAM_INGEST_PORT=str(port),
                       SHOPSTREAM_RATE_LIMIT_PER_SECOND="1000000", SHOPSTREAM_RATE_LIMIT_BURST="1000000", **key_env)
            if name == "ingest-api":
                server = serve(["-m", "shopstream", "service", "ingest-api"], env)
            else:
                app = "_bare_app:app" if name.startswith("bare uvicorn") else "_fastapi_app:app"
                server = serve(["-m", "uvicorn", "--app-dir", str(Path(__file__).parent), app,
                                "--port", str(port), "--log-level", "warning", "--no-access-log"], env)
            try:
                wait_up(f"http://127.0.0.1:{port}/")
                process = psutil.Process(server.pid)
                before = process.cpu_times()
                rps, p99 = wrk(f"http://127.0.0.1:{port}/transactions", args.seconds, args.connections, script)
                after = process.cpu_times()
                cpu = (after.user + after.system - before.user - before.system) / (rps * args.seconds)
                results[name] = (rps, p99, cpu)
            finally:
                server.terminate()
                server.wait()
    base_rps, _, base_cpu = results["bare uvicorn endpoint (baseline)"]
    print(f"| one line per POST, {args.connections} connections, {args.seconds}s "
          "| req/s | p99 | share of baseline | server CPU per request | baseline's share of it |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (rps, p99, cpu) in results.items():
        print(f"| {name} | {rps:,.0f} | {p99} | {rps / base_rps:.0%} | {cpu * 1e6:,.0f} µs | {base_cpu / cpu:.0%} |")


if __name__ == "__main__":
    main()
