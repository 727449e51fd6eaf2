"""What auth, rate limiting, request ids and metrics cost on the ingest hot path.

    python bench/security_overhead.py [FILE] [--runs N] [--micro-only]

1. In process (precise): the front door's cost per request (request id, key check,
   rate limit, metrics) against a bare ASGI app, and against the ingest work one
   request of 5,000 reference lines carries (parsing them), measured in the same run.
2. End to end (noisy on a shared machine): each run starts the local stack twice, with
   the front door as shipped and with SHOPSTREAM_AUTH_ENABLED=false and
   SHOPSTREAM_RATE_LIMIT_PER_SECOND=0, alternating which goes first, and times `send` of
   the file (accepted = durable in the stream). Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import REFERENCE, local_stack  # noqa: E402

from shopstream.client import send_file  # noqa: E402

MODES = {
    "auth + rate limit (default)": {},
    "auth off, no rate limit": {"SHOPSTREAM_AUTH_ENABLED": "false", "SHOPSTREAM_RATE_LIMIT_PER_SECOND": "0"},
}


def timed_send(path: Path, settings: dict[str, str]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp, local_stack(Path(tmp), **settings) as (urls, env, _):
        started = time.perf_counter()
        summary = send_file(path, urls["ingest"], api_key=env["SHOPSTREAM_API_KEY"])
        return time.perf_counter() - started, summary.lines


def micro(path: Path, requests: int = 20_000) -> None:
    import asyncio
    import itertools

    from shopstream.auth.keyring import KeyRing
    from shopstream.auth.keys import new_key
    from shopstream.client import file_lines
    from shopstream.config import Settings
    from shopstream.domain.parsing import LineParser
    from shopstream.entrypoints.frontdoor import FrontDoor

    key, record = new_key(["ingest:write"])
    ring = KeyRing(env_json='{"keys": [%s]}' % __import__("orjson").dumps(record.as_json()).decode())
    settings = Settings(rate_limit_per_second=1e9, rate_limit_burst=10**9)

    async def bare(scope, receive, send):
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def sink(message):
        pass

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    headers = [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json"),
               (b"content-length", b"100")]

    def per_request(app) -> float:
        async def run() -> float:
            started = time.perf_counter()
            for _ in range(requests):
                await app({"type": "http", "method": "POST", "path": "/transactions", "headers": headers}, receive, sink)
            return (time.perf_counter() - started) / requests
        return asyncio.run(run())

    base = min(per_request(bare) for _ in range(3))
    door = min(per_request(FrontDoor(bare, ring, settings, frozenset())) for _ in range(3))
    rows = [row for row in itertools.islice(file_lines(path), 5000)]
    parse = LineParser()
    started = time.perf_counter()
    for row in rows:
        parse(row)
    batch = time.perf_counter() - started
    extra = door - base
    print(f"| front door per request (key check, rate limit, request id, metrics) | {extra * 1e6:.1f} µs |")
    print(f"| parsing one request of 5,000 reference lines (baseline, same run) | {batch * 1e3:.1f} ms |")
    print(f"| front door ÷ that request's parsing | {extra / batch:.5f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", type=Path, default=REFERENCE)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--micro-only", action="store_true")
    args = parser.parse_args()
    micro(args.file)
    if args.micro_only:
        return
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    lines = 0
    for i in range(args.runs):
        order = list(MODES) if i % 2 == 0 else list(reversed(MODES))
        for mode in order:
            took, lines = timed_send(args.file, MODES[mode])
            seconds[mode].append(took)
            print(f"run {i + 1} {mode}: {took:.2f}s", flush=True)
    base = statistics.median(seconds["auth off, no rate limit"])
    print()
    print(f"| ingest of {lines:,} lines over HTTP (median of {args.runs}) | seconds | lines/s | × auth off |")
    print("| --- | ---: | ---: | ---: |")
    for mode, values in seconds.items():
        med = statistics.median(values)
        print(f"| {mode} | {med:.2f} | {lines / med:,.0f} | {med / base:.3f} |")


if __name__ == "__main__":
    main()
