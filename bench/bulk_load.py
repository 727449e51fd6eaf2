"""`shopstream bulk-load` of a file into all three sinks, against two baselines in the same run.

    python bench/bulk_load.py [FILE] [--runs N] [--scale 10] [--no-pandas-at-scale]

For each run, in fresh directories:
- baseline 1, DuckDB's own load: `CREATE TABLE AS SELECT * FROM read_csv(FILE)` into a
  database file, then `COPY ... TO Parquet` (one table, no validation), in this process
  (DuckDB imported already: the strict ratio), and the same as a process (`python -c`,
  interpreter start and import included, as bulk-load is measured);
- baseline 2, pandas: `read_csv` + `to_sql` into SQLite;
- `shopstream bulk-load FILE` as a user runs it (a process): validation, dead letters,
  raw lake + operational store + warehouse + ledger, then a check that `verify` passes.
Peak RSS is the bulk-load process's own (wait4 rusage, from a small launcher), with the
peak of each quarter of the run. Then the same at `--scale` times the rows, generated
with `shopstream generate`, to see whether memory stays flat.
Prints medians (ratios: the median of each run's own ratio) as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "data" / "online-retail.csv.gz"
REFERENCE_LINES = 541_909


def duckdb_load(path: Path, tmp: Path) -> tuple[float, float]:
    """Wall and CPU seconds (all of DuckDB's threads) of the baseline."""
    cpu = time.process_time()
    started = time.perf_counter()
    conn = duckdb.connect(str(tmp / "baseline.duckdb"))
    conn.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}')")
    conn.execute(f"COPY t TO '{tmp / 'baseline.parquet'}' (FORMAT parquet)")
    conn.close()
    return time.perf_counter() - started, time.process_time() - cpu


def duckdb_process(path: Path, tmp: Path) -> float:
    """Wall seconds of the same baseline as a user runs it, as a process (`python -c`): what
    `shopstream bulk-load` is measured as, interpreter start and imports included."""
    script = (f"import duckdb; conn = duckdb.connect({str(tmp / 'process.duckdb')!r}); "
              f"conn.execute(\"CREATE TABLE t AS SELECT * FROM read_csv('{path}')\"); "
              f"conn.execute(\"COPY t TO '{tmp / 'process.parquet'}' (FORMAT parquet)\"); conn.close()")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)  # (its progress bar)
    return time.perf_counter() - started


def pandas_load(path: Path, tmp: Path) -> float:
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_csv(path, encoding_errors="replace")
    conn = sqlite3.connect(tmp / "baseline.sqlite3")
    frame.to_sql("t", conn, index=False)
    conn.commit()
    conn.close()
    return time.perf_counter() - started


# Spawns the command, samples its RSS every 0.1 s and reports its rusage. A child's
# ru_maxrss starts at its parent's high-water mark (the kernel carries it across fork +
# exec), and this process has held pandas' frames by then: the bulk load is started from
# this small launcher instead.
LAUNCHER = """
import json, os, subprocess, sys, time
pid = subprocess.Popen(sys.argv[1:]).pid
samples = []
while True:
    done, status, usage = os.wait4(pid, os.WNOHANG)
    if done:
        break
    try:
        with open(f"/proc/{pid}/status") as lines:
            samples += [int(line.split()[1]) * 1024 for line in lines if line.startswith("VmRSS")]
    except OSError:
        pass
    time.sleep(0.1)
print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime, samples]),
      file=sys.stderr)
"""


def quarter_peaks(samples: list[int]) -> list[int]:
    """The highest RSS sampled in each quarter of the run: flat memory has no upward trend."""
    size = max(1, -(-len(samples) // 4))
    return [max(samples[i:i + size]) for i in range(0, len(samples), size)]


def bulk_load(path: Path, data: Path) -> tuple[float, int, float, list[int]]:
    """Wall seconds, peak RSS (bytes), CPU seconds and the peak RSS per quarter of the run
    of `shopstream bulk-load` as a process."""
    env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(data), COLUMNS="120")
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-m", "shopstream", "bulk-load",
                              str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - started
    *errors, report = process.stderr.decode().strip().splitlines()
    returncode, maxrss, cpu, samples = json.loads(report)
    if returncode:
        raise SystemExit(f"bulk-load failed:\n{(process.stdout.decode() + chr(10).join(errors))[-3000:]}")
    return seconds, maxrss * 1024, cpu, quarter_peaks(samples)


def verified(data: Path):
    from shopstream.bootstrap import Container
    from shopstream.config import Settings
    from shopstream.verify import measure

    container = Container(Settings(data_dir=data))
    try:
        report = measure(container)
    finally:
        container.close()
    if not report.ok:
        raise SystemExit(f"verify failed: {report}")
    return report.accepted


def measure_file(path: Path, runs: int, pandas: bool) -> dict:
    results: dict[str, list[float]] = {"duckdb": [], "pandas": [], "bulk": [], "rss": [], "x_duckdb": [],
                                       "x_pandas": [], "cpu": [], "duckdb_cpu": [], "duckdb_process": [],
                                       "x_duckdb_process": []}
    lines = 0
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            seconds, duckdb_cpu = duckdb_load(path, tmp)
            results["duckdb"].append(seconds)
            results["duckdb_cpu"].append(duckdb_cpu)
            results["duckdb_process"].append(duckdb_process(path, tmp))
            if pandas:
                results["pandas"].append(pandas_load(path, tmp))
            seconds, rss, cpu, quarters = bulk_load(path, tmp / "data")
            results["bulk"].append(seconds)
            results["cpu"].append(cpu)
            results["rss"].append(rss)
            # ratios within a run: the machine's load changes between runs
            results["x_duckdb"].append(seconds / results["duckdb"][-1])
            results["x_duckdb_process"].append(seconds / results["duckdb_process"][-1])
            if pandas:
                results["x_pandas"].append(seconds / results["pandas"][-1])
            accepted = verified(tmp / "data")
            lines = accepted.lines
            print(f"  run {i + 1}: bulk {seconds:.2f}s ({cpu:.2f} CPU-s), duckdb {results['duckdb'][-1]:.2f}s "
                  f"({duckdb_cpu:.2f} CPU-s), {seconds / results['duckdb'][-1]:.2f}x; as a process "
                  f"{results['duckdb_process'][-1]:.2f}s, {results['x_duckdb_process'][-1]:.2f}x"
                  + (f", pandas {results['pandas'][-1]:.2f}s" if pandas else "")
                  + f", peak RSS {rss / 2**20:.0f} MiB (per quarter of the run: "
                  + " / ".join(f"{q / 2**20:.0f}" for q in quarters)
                  + f"); verified {accepted.lines:,} lines, {accepted.amount:,}",
                  flush=True)
    return {"lines": lines, **{k: statistics.median(v) if v else None for k, v in results.items()},
            "rss": max(results["rss"])}


def breakdown(path: Path) -> dict[str, float]:
    """CPU seconds of each stage, run one after the other in this process (no overlap)."""
    import datetime as dt

    from shopstream.bootstrap import Container
    from shopstream.bulk.readers import read_chunks
    from shopstream.config import Settings
    from shopstream.domain.bulk_parsing import ColumnParser
    from shopstream.domain.events import file_event_ids
    from shopstream.files import content_hash

    cpu: dict[str, float] = {}
    started = time.process_time()
    digest = content_hash(path)
    parser, now = ColumnParser(), dt.datetime.now()
    tables = [parser.parse(c.header, c.columns, file_event_ids(digest, c.rows), c.rows, now, "bench").table
              for c in read_chunks(path)]
    cpu["read + validate"] = time.process_time() - started
    cpu["lines"] = sum(t.num_rows for t in tables)
    with tempfile.TemporaryDirectory() as tmp:
        c = Container(Settings(data_dir=Path(tmp), snapshot_interval_seconds=3600), bulk=True)
        for name, write in (("raw lake", lambda i, t: c.lake.write(f"b{i}", t)), ("store", lambda i, t: c.store.write(t)),
                            ("warehouse", lambda i, t: c.warehouse.write(t)),
                            ("ledger", lambda i, t: c.stream.record_accepted(t))):
            started = time.process_time()
            for i, table in enumerate(tables):
                write(i, table)
            cpu[name] = time.process_time() - started
        started = time.process_time()
        c.close()  # the warehouse's marts and snapshot
        cpu["marts + publish"] = time.process_time() - started
        started = time.process_time()
        duckdb_load(path, Path(tmp))
        cpu["DuckDB baseline"] = time.process_time() - started
    return cpu


def row(label: str, m: dict) -> str:
    ratio_duck = m["x_duckdb"]
    pandas = f"{m['pandas']:.2f} s" if m["pandas"] else "—"
    ratio_pandas = f"{m['x_pandas']:.1f}" if m["x_pandas"] else "—"
    return (f"| {label} | {m['lines']:,} | {m['bulk']:.2f} s ({m['lines'] / m['bulk']:,.0f} lines/s) | "
            f"{m['duckdb']:.2f} s | **{ratio_duck:.2f}×** | {m['duckdb_process']:.2f} s | {m['x_duckdb_process']:.2f}× | "
            f"{m['cpu']:.1f} / {m['duckdb_cpu']:.1f} | {pandas} | "
            f"{ratio_pandas} | {m['rss'] / 2**20:.0f} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", type=Path, default=REFERENCE)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=int, default=10, help="also load a generated file this many times bigger (0: skip)")
    parser.add_argument("--no-pandas-at-scale", action="store_true", help="skip the slow pandas baseline at scale")
    parser.add_argument("--breakdown", action="store_true", help="only: CPU seconds per stage, in-process")
    args = parser.parse_args()
    if args.breakdown:
        cpu = breakdown(args.file)
        lines = cpu.pop("lines")
        print(f"| stage ({lines:,} lines) | CPU s | µs a line |")
        print("| --- | ---: | ---: |")
        for stage, seconds in cpu.items():
            print(f"| {stage} | {seconds:.2f} | {seconds / lines * 1e6:.1f} |")
        return
    print(f"{args.file} ({args.runs} runs)", flush=True)
    base = measure_file(args.file, args.runs, pandas=True)
    rows = [row(args.file.name, base)]
    if args.scale:
        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / f"generated-{args.scale}x.csv.gz"
            count = REFERENCE_LINES * args.scale
            print(f"generating {count:,} lines...", flush=True)
            subprocess.run([sys.executable, "-m", "shopstream", "generate", "--rows", str(count), "--out", str(big)],
                           check=True, capture_output=True)
            print(f"{big.name} (1 run)", flush=True)
            scaled = measure_file(big, 1, pandas=not args.no_pandas_at_scale)
            rows.append(row(f"generated, {args.scale}×", scaled))
    print()
    print("| file | lines | bulk-load → lake + store + warehouse (verified) | DuckDB read_csv → table + Parquet "
          "| × DuckDB | DuckDB's load as a process | × that | CPU-s (bulk / DuckDB) | pandas read_csv + to_sql (SQLite) | × pandas | peak RSS (bulk-load) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for line in rows:
        print(line)


if __name__ == "__main__":
    main()
