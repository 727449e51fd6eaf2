"""The other shapes the reference data comes in, made from the reference file in tests
(the Kaggle CSV, the UCI Excel workbook, Parquet): none of them is committed."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import itertools
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]


def reference_rows(path: Path, limit: int | None = None) -> Iterator[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == HEADER
        yield from itertools.islice(reader, limit)


def totals(rows: Iterator[list[str]]) -> tuple[int, Decimal]:
    """Lines and Σ quantity × unit price, computed independently of shopstream."""
    count, money = 0, Decimal(0)
    for row in rows:
        count += 1
        money += int(row[3]) * Decimal(row[5])
    return count, money


@functools.lru_cache(maxsize=65536)
def kaggle_date(text: str) -> str:
    at = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    return f"{at.month}/{at.day}/{at.year} {at.hour}:{at.minute:02d}"


def write_kaggle_csv(source: Path, target: Path) -> None:
    """The Kaggle download: ISO-8859-1, `12/1/2010 8:26`, customer ids as `17850`.
    (DuckDB rewrites the columns in a second; Python's csv module would take ten.)"""
    import duckdb

    conn = duckdb.connect()
    quoted = str(source).replace("'", "''")
    out = str(target.with_suffix(".utf8.tmp")).replace("'", "''")
    conn.execute(f"""
        COPY (
            SELECT InvoiceNo, StockCode, Description, Quantity,
                   strftime(strptime(InvoiceDate, '%Y-%m-%d %H:%M:%S'), '%-m/%-d/%Y %-H:%M') AS InvoiceDate,
                   UnitPrice, regexp_replace(CustomerID, '\\.0$', '') AS CustomerID, Country
            FROM read_csv('{quoted}', all_varchar = true, header = true)
        ) TO '{out}' (HEADER, DELIMITER ',')
    """)
    conn.close()
    utf8 = target.with_suffix(".utf8.tmp")
    target.write_bytes(utf8.read_bytes().decode("utf-8").encode("iso-8859-1"))
    utf8.unlink()


def _number(text: str):
    """Excel keeps numeric-looking cells as numbers (InvoiceNo 536365, StockCode 22633)."""
    if text.isdigit():
        return int(text)
    return text


def write_xlsx(source: Path, target: Path, limit: int) -> None:
    """The UCI workbook's shape: numbers as numbers, dates as Excel datetimes."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(target), {"constant_memory": True})
    sheet = workbook.add_worksheet("Online Retail")
    date_format = workbook.add_format({"num_format": "m/d/yyyy h:mm"})
    sheet.write_row(0, 0, HEADER)
    for r, row in enumerate(reference_rows(source, limit), start=1):
        sheet.write(r, 0, _number(row[0]))
        sheet.write(r, 1, _number(row[1]))
        if row[2]:
            sheet.write_string(r, 2, row[2])
        sheet.write_number(r, 3, int(row[3]))
        sheet.write_datetime(r, 4, datetime.strptime(row[4], "%Y-%m-%d %H:%M:%S"), date_format)
        sheet.write_number(r, 5, float(row[5]))
        if row[6]:
            sheet.write_number(r, 6, int(float(row[6])))
        sheet.write_string(r, 7, row[7])
    workbook.close()


def write_parquet(source: Path, target: Path, limit: int | None = None) -> None:
    """Typed columns, as a data engineer would export them (pandas-like dtypes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(reference_rows(source, limit))
    columns = list(zip(*rows))
    table = pa.table({
        "InvoiceNo": pa.array(columns[0], pa.string()),
        "StockCode": pa.array(columns[1], pa.string()),
        "Description": pa.array([d or None for d in columns[2]], pa.string()),
        "Quantity": pa.array([int(q) for q in columns[3]], pa.int64()),
        "InvoiceDate": pa.array([datetime.strptime(d, "%Y-%m-%d %H:%M:%S") for d in columns[4]], pa.timestamp("ns")),
        "UnitPrice": pa.array([float(p) for p in columns[5]], pa.float64()),
        "CustomerID": pa.array([float(c) if c else None for c in columns[6]], pa.float64()),
        "Country": pa.array(columns[7], pa.string()),
    })
    pq.write_table(table, target, row_group_size=7_000)


def write_csv(target: Path, rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8") -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    target.write_bytes(buffer.getvalue().encode(encoding))
