"""The aws profile end to end on moto's server + PostgreSQL, against the local profile in the same run.

    python bench/aws_pipeline.py [--lines 20000] [--runs 1]

For each run and profile: fresh resources (aws: `init` on a new stream, bucket, tables and
database), every service started as `shopstream up` does, the first N reference lines
sent over HTTP (5,000 a request, 4 in flight), then wait until `verify` passes.
moto is an emulator, not AWS: the ratio says what the emulator costs, not production speed.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
from _stack import REFERENCE, local_stack  # noqa: E402

from shopstream.bootstrap import Container  # noqa: E402
from shopstream.client import send_file  # noqa: E402
from shopstream.config import Settings  # noqa: E402
from shopstream.verify import verify  # noqa: E402
from tests.awsenv import aws_env, aws_settings  # noqa: E402


def sample(lines: int, out: Path) -> Path:
    with gzip.open(REFERENCE, "rt", encoding="utf-8", newline="") as src, open(out, "w", encoding="utf-8") as dst:
        for _ in range(lines + 1):
            dst.write(src.readline())
    return out


def run(path: Path, settings: Settings, extra_env: dict[str, str]) -> dict[str, float]:
    with local_stack(settings.data_dir, extra_env=extra_env) as (urls, env, _):
        started = time.perf_counter()
        summary = send_file(path, urls["ingest"])
        sent = time.perf_counter() - started
        container = Container(settings)
        report = verify(container, wait_seconds=900)
        done = time.perf_counter() - started
        container.close()
        if not report.ok or report.accepted.lines != summary.lines:
            raise SystemExit(f"verify failed: {report}")
        return {"send": sent, "end_to_end": done}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"local": [], "aws": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = sample(args.lines, Path(tmp) / "sample.csv")
        for i in range(args.runs):
            local = Settings(data_dir=Path(tmp) / f"local-{i}")
            Container(local).init_resources()
            results["local"].append(run(path, local, {}))
            aws = aws_settings(data_dir=Path(tmp) / f"aws-{i}", lease_seconds=5.0, kinesis_poll_seconds=0.2)
            os.environ.update(aws_env(aws))
            Container(aws).init_resources()
            results["aws"].append(run(path, aws, aws_env(aws)))
            print(f"run {i + 1}: local {results['local'][-1]}  aws {results['aws'][-1]}", flush=True)
    base = statistics.median(r["end_to_end"] for r in results["local"])
    print(f"\n| profile ({args.lines:,} lines, median of {args.runs}) | send s | end to end s | lines/s | × local |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs in results.items():
        send = statistics.median(r["send"] for r in runs)
        e2e = statistics.median(r["end_to_end"] for r in runs)
        print(f"| {name} | {send:.1f} | {e2e:.1f} | {args.lines / e2e:,.0f} | {e2e / base:.1f} |")


if __name__ == "__main__":
    main()
