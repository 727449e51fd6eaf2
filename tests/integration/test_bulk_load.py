"""A bulk load in-process against the real local sinks: broken rows, formats, ids."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from shopstream.bootstrap import Container
from shopstream.bulk.load import load_file
from shopstream.client import file_lines
from shopstream.config import Settings
from shopstream.domain.line import FieldError, Totals
from shopstream.files import CsvFormatError
from shopstream.verify import measure
from tests.bulk_files import reference_rows, totals, write_csv, write_parquet, write_xlsx
from tests.conftest import reference_file

GOOD = ["536365", "85123A", "WHITE HANGING HEART", "6", "2010-12-01 08:26:00", "2.55", "17850.0", "United Kingdom"]


def container(tmp_path: Path) -> Container:
    return Container(Settings(data_dir=tmp_path / "data", snapshot_interval_seconds=3600))


def figures(c: Container) -> dict[str, Totals]:
    report = measure(c)
    return {"accepted": report.accepted, **report.sinks}


def test_broken_rows_are_dead_lettered_with_row_and_reason_while_good_rows_load(tmp_path):
    rows = [GOOD] * 3 + [
        GOOD[:3] + ["six"] + GOOD[4:],  # row 4
        GOOD[:4] + ["31/31/2010 8:26"] + GOOD[5:],  # row 5
        ["536366", "22633"],  # row 6: ragged
        GOOD[:5] + ["1.2345"] + GOOD[6:7] + [""],  # row 7: two reasons
    ] + [GOOD] * 2
    path = tmp_path / "broken.csv"
    write_csv(path, rows)
    c = container(tmp_path)
    summary = load_file(path, c, chunk_rows=4)
    assert (summary.rows, summary.loaded, summary.rejected) == (9, 5, 4)
    assert summary.amount_milli == 5 * 6 * 2550
    assert summary.rejected_by_reason == {
        "Quantity: must be an integer": 2,
        "InvoiceDate: unparseable date": 2,
        "UnitPrice: must be a number": 1,
        "UnitPrice: has more than 3 decimal places": 1,
        "Country: must not be empty": 2,
    }
    letters = {d.index: d for d in c.dead_letters.recent(100)}
    assert sorted(letters) == [4, 5, 6, 7]
    assert letters[4].errors == (FieldError("Quantity", "must be an integer, got 'six'"),)
    assert letters[5].errors == (FieldError("InvoiceDate", "unparseable date '31/31/2010 8:26'"),)
    assert letters[7].errors == (FieldError("UnitPrice", "has more than 3 decimal places: '1.2345'"),
                                 FieldError("Country", "must not be empty"))
    assert [e.field for e in letters[6].errors] == ["Quantity", "InvoiceDate", "UnitPrice", "Country"]
    assert c.dead_letters.count() == 4
    assert set(figures(c).values()) == {Totals(5, 5 * 6 * 2550)}
    c.close()


def test_event_ids_are_the_ones_send_gives_the_same_rows(tmp_path):
    path = tmp_path / "small.csv"
    write_csv(path, list(reference_rows(reference_file(), 500)))
    c = container(tmp_path)
    load_file(path, c, chunk_rows=200)
    import pyarrow.parquet as pq

    stored = sorted(i for p in c.lake.objects() for i in pq.read_table(p, columns=["event_id"])["event_id"].to_pylist())
    assert stored == sorted(row["event_id"] for row in file_lines(path))
    c.close()


@pytest.mark.parametrize("fmt", ["xlsx", "parquet"])
def test_xlsx_and_parquet_give_the_figures_of_the_same_rows(tmp_path, fmt):
    limit = 4_000
    lines, money = totals(reference_rows(reference_file(), limit))
    path = tmp_path / f"Online Retail.{fmt}"
    (write_xlsx if fmt == "xlsx" else write_parquet)(reference_file(), path, limit)
    c = container(tmp_path)
    summary = load_file(path, c, chunk_rows=1500)
    expected = Totals(lines, int(money * 1000))
    assert (summary.format, summary.rows, summary.loaded, summary.rejected) == (fmt, limit, limit, 0)
    assert set(figures(c).values()) == {expected}
    invoice = c.store.invoice("536365")
    assert (invoice.header.customer_id, invoice.header.line_count, invoice.header.total_milli) == ("17850", 7, 139_120)
    assert Decimal(expected.amount_milli) / 1000 == money
    c.close()


def test_unreadable_files_fail_with_a_clear_error_and_write_nothing(tmp_path):
    notes = tmp_path / "notes.csv"
    notes.write_text("name,amount\nx,1\n")
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"PK\x03\x04 not really a workbook")
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    c = container(tmp_path)
    with pytest.raises(CsvFormatError, match="lacks"):
        load_file(notes, c)
    with pytest.raises(CsvFormatError, match="not a readable XLSX workbook"):
        load_file(fake, c)
    with pytest.raises(CsvFormatError, match="unreadable"):  # the inbox files it under failed/
        load_file(broken, c)
    assert set(figures(c).values()) == {Totals(0, 0)}
    c.close()


def test_header_only_file_loads_nothing(tmp_path):
    path = tmp_path / "empty.csv"
    write_csv(path, [])
    c = container(tmp_path)
    summary = load_file(path, c)
    assert (summary.rows, summary.loaded) == (0, 0)
    c.close()


def test_header_names_in_snake_case_work_too(tmp_path):
    path = tmp_path / "snake.csv"
    write_csv(path, [GOOD], header=[h for h in ("invoice_no", "stock_code", "description", "quantity",
                                                "invoice_date", "unit_price", "customer_id", "country")])
    c = container(tmp_path)
    assert load_file(path, c).loaded == 1
    c.close()


def test_a_load_failing_in_a_sink_leaves_no_reader_thread_behind(tmp_path):
    import threading
    import time

    c = container(tmp_path)
    path = tmp_path / "many.csv"
    write_csv(path, [GOOD] * 5000)

    def outage(docs):
        raise OSError("disk full")

    c.store.write_documents = outage
    with pytest.raises(OSError, match="disk full"):
        load_file(path, c, chunk_rows=1000)
    deadline = time.monotonic() + 5
    while any(t.name in ("bulk-read", "bulk-inflate") for t in threading.enumerate()):
        assert time.monotonic() < deadline, [t.name for t in threading.enumerate()]
        time.sleep(0.05)
    assert measure(c).accepted == Totals(0, 0)
    c.close()
