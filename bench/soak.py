"""The long fault-injection soak: rounds of fresh data streamed in over HTTP while random
services are SIGKILLed, each round verified exactly (every sink = the accepted lines).

    python bench/soak.py [--minutes 10] [--rows 100000] [--seed N] [--pause 2 6]

Runs the local stack in a temporary directory (or --data-dir), generates a new file
per round (`shopstream generate` with the round's seed, so new event ids), sends it and
verifies, while one chaos monkey SIGKILLs a random service every few seconds throughout.
Stops by itself after --minutes; exits 1 at the first round whose sinks differ.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import local_stack  # noqa: E402

from shopstream.bootstrap import Container  # noqa: E402
from shopstream.chaos import ChaosMonkey  # noqa: E402
from shopstream.client import send_file  # noqa: E402
from shopstream.config import Settings  # noqa: E402
from shopstream.entrypoints.services import ALL_SERVICES  # noqa: E402
from shopstream.generate import write_csv  # noqa: E402
from shopstream.verify import verify  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=random.randrange(1_000_000))
    parser.add_argument("--pause", type=float, nargs=2, default=(2.0, 6.0), help="seconds between kills (range)")
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"soak: seed {args.seed}, {args.minutes:g} minutes, {args.rows:,} lines per round", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data_dir or Path(tmp) / "data"
        with local_stack(data) as (urls, env, supervisor):
            ends = time.monotonic() + args.minutes * 60
            expected_lines, round_no = 0, 0
            # one monkey for the whole soak: kills land during sends and during catch-up alike
            monkey = ChaosMonkey(supervisor.pid, ALL_SERVICES, rng, pause=args.pause, max_kills=1_000_000,
                                 one_at_a_time=True).start()
            while time.monotonic() < ends:
                round_no += 1
                path = Path(tmp) / f"round-{round_no}.csv.gz"
                write_csv(path, args.rows, seed=args.seed * 1000 + round_no)
                started = time.perf_counter()
                killed_before = len(monkey.kills)
                summary = send_file(path, urls["ingest"], api_key=env["SHOPSTREAM_API_KEY"], retry_for=300)
                expected_lines += summary.lines - summary.rejected  # each line of a round is new
                container = Container(Settings(data_dir=data))
                report = verify(container, wait_seconds=600)
                container.close()
                took = time.perf_counter() - started
                kills = monkey.kills[killed_before:]
                print(f"round {round_no}: {summary.lines:,} lines sent ({summary.accepted:,} new, "
                      f"{summary.duplicates:,} retried duplicates, {summary.retries} retries), "
                      f"{len(kills)} kills ({', '.join(k.service for k in kills)}), "
                      f"accepted {report.accepted.lines:,} / {report.accepted.amount:,.3f}: "
                      f"{'OK' if report.ok else 'SINKS DIFFER'} in {took:.1f}s", flush=True)
                if not report.ok or report.accepted.lines != expected_lines:
                    print(f"  expected {expected_lines:,} accepted lines")
                    for label, totals in report.sinks.items():
                        print(f"  {label}: {totals.lines:,} / {totals.amount:,.3f}")
                    raise SystemExit(1)
            total_kills = len(monkey.stop())
            print(f"soak passed: {round_no} rounds, {report.accepted.lines:,} lines, {total_kills} SIGKILLs, "
                  f"every sink exact after every round (seed {args.seed})")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on the way out
    main()
