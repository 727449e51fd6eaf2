"""Reading transaction files as users have them: the CSV variants, plain or gzipped.

- the reference copy: UTF-8, `2010-12-01 08:26:00`, customer ids like `17850.0`;
- the Kaggle download: ISO-8859-1 (the pound sign is byte 0xA3), `12/1/2010 8:26`.

Each line is decoded as UTF-8 and, where that fails, as ISO-8859-1, so a file is read
right whichever it is, even if the first non-ASCII byte is a million lines in.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from shopstream.domain.parsing import canonical_key

CHUNK = 1 << 20


def open_binary(path: Path) -> IO[bytes]:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes as stored: the root of its rows' event ids."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _decoded(lines: IO[bytes]) -> Iterator[str]:
    for raw in lines:
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            yield raw.decode("iso-8859-1")


class CsvFormatError(ValueError):
    pass


def read_csv_rows(path: Path) -> Iterator[dict[str, str]]:
    """Yield each data row as {header name: text}; row numbers are 1-based, header excluded."""
    with open_binary(path) as f:
        reader = csv.reader(_decoded(f))
        try:
            header = next(reader)
        except StopIteration:
            raise CsvFormatError(f"{path} is empty") from None
        header = [h.strip().lstrip("\ufeff") for h in header]
        known = {canonical_key(h) for h in header} - {None}
        missing = {"invoice_no", "stock_code", "quantity", "invoice_date", "unit_price", "country"} - known
        if missing:
            raise CsvFormatError(
                f"{path}: the header {header} lacks {sorted(missing)}; expected the columns "
                "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
            )
        width = len(header)
        for row in reader:
            if len(row) == width:
                yield dict(zip(header, row))
            elif not row:
                continue
            else:  # a ragged row is still a row: the validator will say what is wrong
                yield dict(zip(header, row + [""] * (width - len(row))))
