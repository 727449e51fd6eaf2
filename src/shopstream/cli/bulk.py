"""`shopstream bulk-load`: registered on the app in cli/app.py; the work is shopstream.bulk."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from shopstream.cli.app import DataDir, _fail, _settings, console


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]}"),
        TimeElapsedColumn(),
        console=console,
    )


def expected_rows(path: Path) -> int | None:
    """For the progress bar: exact for Parquet, estimated for CSVs, else unknown."""
    from shopstream.bulk.readers import detect_format
    from shopstream.files import estimated_lines

    try:
        fmt = detect_format(path)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if fmt.startswith("csv"):
            return max(1, estimated_lines(path) - 1)
    except Exception:  # noqa: BLE001 - a broken file: the load says what is wrong with it
        return None
    return None


def print_summary(summary) -> None:
    from shopstream.domain.money import format_money

    console.print(
        f"{escape(Path(summary.file).name)}: {summary.rows:,} rows in {summary.seconds:.1f}s "
        f"({summary.rows_per_second:,.0f} rows/s): [green]{summary.loaded:,} loaded[/], "
        f"{summary.already_present:,} already present, "
        f"[{'red' if summary.rejected else 'green'}]{summary.rejected:,} rejected[/] "
        f"(accepted money {format_money(summary.amount_milli)})"
    )
    if summary.rejected_by_reason:
        table = Table(title="rejected, by reason (dead letters)")
        table.add_column("field: reason")
        table.add_column("rows", justify="right")
        for reason, count in summary.rejected_by_reason.items():
            table.add_row(escape(reason), f"{count:,}")
        console.print(table)
        for example in summary.examples[:5]:
            reasons = "; ".join(f"{e['field']}: {e['reason']}" for e in example["errors"])
            console.print(f"  row {example['row']:,}: {escape(reasons)}")


def bulk_load(
    files: Annotated[list[str], typer.Argument(
        help="CSV or CSV.gz (reference or Kaggle format), XLSX or Parquet files; s3:// URIs on the aws profile")],
    data_dir: DataDir = None,
    chunk_rows: Annotated[int, typer.Option(min=1000, max=2_000_000, help="rows per chunk (bounds memory)")] = 61_440,  # readers.CHUNK_ROWS
) -> None:
    """Load files straight into the raw lake, the store and the warehouse (loading twice stores once)."""
    from shopstream.bootstrap import Container
    from shopstream.files import CsvFormatError
    from shopstream.memory import lean_memory

    settings = _settings(data_dir)
    for name in files:
        if name.startswith("s3://") and settings.profile != "aws":
            raise _fail(f"{name}: s3:// sources need the aws profile (SHOPSTREAM_PROFILE=aws)")
        if not name.startswith("s3://") and not Path(name).is_file():
            raise _fail(f"no such file: {name}")
    lean_memory()  # as the services do: a bulk load's chunks come and go
    container = Container(settings, bulk=True)
    failed = 0
    try:
        for name in files:
            try:
                with container.files.open(name) as local:  # an S3 object: downloaded and hashed first
                    summary = _load_one(local, container, chunk_rows)
            except (CsvFormatError, OSError) as error:
                failed += 1
                console.print(f"[bold red]error:[/] {escape(str(error))}")
                continue
            print_summary(summary)
    finally:
        container.close()
    if failed:
        raise typer.Exit(1)


def _load_one(local, container, chunk_rows: int):
    from shopstream.bulk.load import load_file

    started = time.perf_counter()
    total = expected_rows(local.path)  # an estimate for CSVs (from the first MiB)
    with _progress() as progress:
        task = progress.add_task(f"loading {local.label.rsplit('/', 1)[-1]}", total=total, rows="")

        def advance(rows: int) -> None:
            rate = rows / max(time.perf_counter() - started, 1e-9)
            done = min(rows, total - 1) if total else rows  # 100% only once it is loaded
            progress.update(task, completed=done, rows=f"{rows:,} rows, {rate:,.0f} rows/s")

        try:
            summary = load_file(local.path, container, chunk_rows=chunk_rows, on_progress=advance,
                                digest=local.digest, label=local.label)
        except BaseException:
            progress.stop()
            raise
        progress.update(task, total=summary.rows or 1, completed=summary.rows or 1)
    return summary
