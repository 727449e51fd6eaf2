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
import threading
import time
from pathlib import Path

import duckdb
import psutil

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


class PeakRss:
    """Samples every service's resident memory (and CPU time so far) while the run goes on."""

    def __init__(self, supervisor) -> None:
        self.supervisor = supervisor
        self.peak: dict[str, int] = {}
        self.cpu: dict[str, float] = {}  # user + system seconds, as last sampled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            for child in self.supervisor.children:
                pid = self.supervisor.pid(child.name)
                try:  # a service and its worker processes, if it has any: CPU summed, RSS per process
                    process = psutil.Process(pid) if pid else None
                    tree = [process, *process.children(recursive=True)] if process else []
                    rss = max((p.memory_info().rss for p in tree), default=0)
                    cpu = sum(sum(p.cpu_times()[:2]) for p in tree)
                except psutil.Error:
                    continue
                self.peak[child.name] = max(self.peak.get(child.name, 0), rss)
                if tree:
                    self.cpu[child.name] = max(self.cpu.get(child.name, 0.0), cpu)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.peak


def pipeline_run(path: Path, ingest_workers: int) -> dict[str, float]:
    settings = {"SHOPSTREAM_INGEST_WORKERS": str(ingest_workers)}
    with tempfile.TemporaryDirectory() as tmp, local_stack(Path(tmp), **settings) as (urls, env, supervisor):
        rss = PeakRss(supervisor)
        time.sleep(0.5)  # a first sample: the services' start-up CPU is not the run's
        at_start = dict(rss.cpu)
        started, client_cpu = time.perf_counter(), time.process_time()
        summary = send_file(path, urls["ingest"], api_key=env["SHOPSTREAM_API_KEY"])
        sent = time.perf_counter() - started
        client_cpu = time.process_time() - client_cpu
        container = Container(Settings(data_dir=Path(tmp)))
        report = verify(container, wait_seconds=600)
        done = time.perf_counter() - started
        container.close()
        peaks = rss.stop()
        cpu = {name: seconds - at_start.get(name, 0.0) for name, seconds in rss.cpu.items()}
        cpu["client (send)"] = client_cpu
        if not report.ok:
            raise SystemExit(f"verify failed: {report}")
        verify_started = time.perf_counter()
        container = Container(Settings(data_dir=Path(tmp)))
        verify(container)
        container.close()
        return {"lines": summary.lines, "send": sent, "end_to_end": done,
                "verify": time.perf_counter() - verify_started, "rss": peaks, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", type=Path, default=REFERENCE)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ingest-workers", type=int, default=1, help="SHOPSTREAM_INGEST_WORKERS")
    args = parser.parse_args()
    runs, baselines = [], []
    for i in range(args.runs):
        baselines.append(duckdb_load(args.file))
        runs.append(pipeline_run(args.file, args.ingest_workers))
        timing = {k: round(v, 2) for k, v in runs[-1].items() if isinstance(v, float)}
        print(f"run {i + 1}: {timing}  duckdb {baselines[-1]:.2f}s", flush=True)
    lines = runs[0]["lines"]
    med = {k: statistics.median(r[k] for r in runs) for k in ("send", "end_to_end", "verify")}
    base = statistics.median(baselines)
    print()
    print(f"| measure ({lines:,} lines, median of {args.runs}, {args.ingest_workers} ingest worker(s)) "
          "| seconds | lines/s | × DuckDB read_csv |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| DuckDB read_csv → table (baseline) | {base:.2f} | {lines / base:,.0f} | 1.0 |")
    print(f"| send (HTTP, accepted = durable in the stream) | {med['send']:.2f} | {lines / med['send']:,.0f} | {med['send'] / base:.1f} |")
    print(f"| end to end (all sinks verified) | {med['end_to_end']:.2f} | {lines / med['end_to_end']:,.0f} | {med['end_to_end'] / base:.1f} |")
    print(f"| verify alone | {med['verify']:.2f} | | |")
    print()
    print("| service | peak RSS of a process (max over runs) | CPU s from send to verified (median) |")
    print("| --- | ---: | ---: |")
    for name in runs[0]["cpu"]:
        peak = max(r["rss"].get(name, 0) for r in runs) / 2**20
        cpu = statistics.median(r["cpu"].get(name, 0.0) for r in runs)
        print(f"| {name} | {f'{peak:,.0f} MB' if peak else '—'} | {cpu:.2f} |")
    total = statistics.median(sum(r["cpu"].values()) for r in runs)
    print(f"| all | | {total:.2f} (on 2 cores: ≥ {total / 2:.1f} s of wall time) |")


if __name__ == "__main__":
    main()
