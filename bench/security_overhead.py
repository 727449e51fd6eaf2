"""What auth, rate limiting, request ids and metrics cost on the ingest hot path.

    python bench/security_overhead.py [FILE] [--runs N]

Each run starts the local stack twice in fresh directories, once with the front door as
shipped (auth on, rate limit on, metrics) and once with SHOPSTREAM_AUTH_ENABLED=false
and SHOPSTREAM_RATE_LIMIT_PER_SECOND=0, alternating which goes first, and times `send`
of the file (accepted = durable in the stream). Prints medians and the ratio.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", type=Path, default=REFERENCE)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
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
