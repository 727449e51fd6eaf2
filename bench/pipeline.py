"""The reference file over HTTP into all three sinks, end to end, against DuckDB's own load.

    python bench/pipeline.py [FILE] [--runs N]

For each run: start the local stack in a fresh data directory, `send` the file
(batches of 5,000 lines, 4 in flight), then wait until `verify` passes (every line and
every penny in the raw lake, the store and the warehouse). Baseline in the same run:
DuckDB's read_csv of the same file into a table. Prints medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import REFERENCE, local_stack  # noqa: E402

from shopstream.bootstrap import Container  # noqa: E402
from shopstream.client import send_file  # noqa: E402
from shopstream.config import Settings  # noqa: E402
from shopstream.verify import verify  # noqa: E402


def duckdb_load(path: Path) -> float:
    started = time.perf_counter()
    conn = duckdb.connect()
    conn.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}')")
    conn.close()
    return time.perf_counter() - started


def pipeline_run(path: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, local_stack(Path(tmp)) as (urls, env, _):
        started = time.perf_counter()
        summary = send_file(path, urls["ingest"], api_key=env["SHOPSTREAM_API_KEY"])
        sent = time.perf_counter() - started
        container = Container(Settings(data_dir=Path(tmp)))
        report = verify(container, wait_seconds=600)
        done = time.perf_counter() - started
        container.close()
        if not report.ok:
            raise SystemExit(f"verify failed: {report}")
        verify_started = time.perf_counter()
        container = Container(Settings(data_dir=Path(tmp)))
        verify(container)
        container.close()
        return {"lines": summary.lines, "send": sent, "end_to_end": done,
                "verify": time.perf_counter() - verify_started}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", type=Path, default=REFERENCE)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs, baselines = [], []
    for i in range(args.runs):
        baselines.append(duckdb_load(args.file))
        runs.append(pipeline_run(args.file))
        print(f"run {i + 1}: {runs[-1]}  duckdb {baselines[-1]:.2f}s", flush=True)
    lines = runs[0]["lines"]
    med = {k: statistics.median(r[k] for r in runs) for k in ("send", "end_to_end", "verify")}
    base = statistics.median(baselines)
    print()
    print(f"| measure ({lines:,} lines, median of {args.runs}) | seconds | lines/s | × DuckDB read_csv |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| DuckDB read_csv → table (baseline) | {base:.2f} | {lines / base:,.0f} | 1.0 |")
    print(f"| send (HTTP, accepted = durable in the stream) | {med['send']:.2f} | {lines / med['send']:,.0f} | {med['send'] / base:.1f} |")
    print(f"| end to end (all sinks verified) | {med['end_to_end']:.2f} | {lines / med['end_to_end']:,.0f} | {med['end_to_end'] / base:.1f} |")
    print(f"| verify alone | {med['verify']:.2f} | | |")


if __name__ == "__main__":
    main()
