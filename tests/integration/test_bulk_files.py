"""The CSV reader that `send` and `bulk-load` share: the same rows, numbers and text as
Python's csv module gives, on the awkward files users have."""

from __future__ import annotations

import csv
import gzip
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from shopstream.files import CsvFormatError, PacedReads, read_csv_chunks, read_csv_rows
from tests.bulk_files import HEADER

LINE = "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"


def python_csv_rows(path: Path) -> list[dict]:
    """What the reader must give: Python's csv module, each line decoded as UTF-8 or
    else ISO-8859-1, blank lines skipped, ragged rows padded or cut to the header."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        def lines():
            for raw in f:
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield raw.decode("iso-8859-1")

        reader = csv.reader(lines())
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
        return [dict(zip(header, (row + [""] * len(header))[: len(header)])) for row in reader if row]


AWKWARD = {
    "crlf_bom_quotes": ("\ufeff" + ",".join(HEADER) + "\r\n" + LINE + "\r\n"
                        + '536366,22633,"HAND WARMER, RED ""SPOT""",6,2010-12-01 08:28:00,1.85,,France\r\n').encode(),
    "blank_lines_and_newline_in_value": (",".join(HEADER) + "\n\n" + LINE + "\n\n\n"
                                         + '536367,POST,"two\nlines",1,2010-12-02 10:00:00,18,,France\n').encode(),
    "ragged_rows": (",".join(HEADER) + "\n" + LINE + "\n536368,22\n" + LINE + ",extra,fields\n"
                    + ",,,,,,,\n" + " \n" + LINE + "\n").encode(),
    "latin1_lines_among_utf8": (",".join(HEADER) + "\n" + LINE.replace("WHITE", "WHITE £") + "\n").encode()
    + (LINE.replace("WHITE", "Gift £40") + "\n").encode("iso-8859-1") + (LINE + "\n").encode(),
    "ragged_latin1_row": (",".join(HEADER) + "\n" + LINE + "\n").encode()
    + "536369,£,short\n".encode("iso-8859-1") + (LINE + "\n").encode(),
    "no_final_newline": (",".join(HEADER) + "\n" + LINE).encode(),
}


@pytest.mark.parametrize("name", sorted(AWKWARD))
@pytest.mark.parametrize("gz", [False, True])
def test_rows_match_pythons_csv_module(tmp_path, name, gz):
    path = tmp_path / (name + (".csv.gz" if gz else ".csv"))
    path.write_bytes(gzip.compress(AWKWARD[name]) if gz else AWKWARD[name])
    expected = python_csv_rows(path)
    assert list(read_csv_rows(path)) == expected
    numbers = [n for chunk in read_csv_chunks(path) for n in chunk.rows.to_pylist()]
    assert numbers == list(range(1, len(expected) + 1))


def test_small_blocks_keep_numbering_and_ragged_rows_in_place(tmp_path):
    lines = [",".join(HEADER)]
    for i in range(3000):
        if i % 97 == 5:
            lines.append(f"{540000 + i},short")
        elif i % 101 == 7:
            lines.append("")
        else:
            lines.append(LINE.replace("536365", str(540000 + i)))
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n")
    chunks = list(read_csv_chunks(path, block_bytes=4096))
    assert len(chunks) > 10
    rows = [r for c in chunks for r in c.to_dicts()]
    assert rows == python_csv_rows(path)
    assert [n for c in chunks for n in c.rows.to_pylist()] == list(range(1, len(rows) + 1))


def test_a_file_without_the_columns_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("name,amount\nx,1\n")
    with pytest.raises(CsvFormatError, match=r"lacks \['country', 'invoice_date', 'invoice_no'"):
        list(read_csv_chunks(path))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CsvFormatError, match="is empty"):
        list(read_csv_chunks(empty))


def test_values_keep_the_text_the_file_has(tmp_path):
    path = tmp_path / "text.csv"
    path.write_text(",".join(HEADER) + "\n00536365,1,X,006,2010-12-01 08:26:00,2.550,17850.0,UK\n")
    assert list(read_csv_rows(path)) == [dict(zip(HEADER, ["00536365", "1", "X", "006", "2010-12-01 08:26:00",
                                                           "2.550", "17850.0", "UK"]))]


def test_the_csv_reader_reads_at_most_two_blocks_past_the_batches_taken(tmp_path):
    """Arrow's streaming reader reads (and inflates) up to 32 blocks ahead on a thread of its
    own: a long bulk load's memory grew by 32 blocks (~180 MB) until its reads were paced."""
    path = tmp_path / "long.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([",".join(HEADER)] + [LINE] * 5000) + "\n").encode()))
    raw = pa.OSFile(str(path))
    paced = PacedReads(pa.CompressedInputStream(raw, "gzip"))
    reader = pacsv.open_csv(pa.PythonFile(paced, mode="r"), read_options=pacsv.ReadOptions(block_size=8192))
    rows = reader.read_next_batch().num_rows
    paced.took()
    time.sleep(0.3)  # time for the reader's thread to run ahead
    assert (paced.taken, paced.reads) == (1, 3)
    for batch in reader:
        paced.took()
        rows += batch.num_rows
        assert paced.reads <= paced.taken + 2
    assert rows == 5000 and paced.taken > 40  # every row, in ~50 blocks
    paced.stop()
    raw.close()
