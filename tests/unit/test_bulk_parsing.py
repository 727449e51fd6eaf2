"""The bulk path validates a column at a time; it must agree with the API's row-by-row
parser (LineParser) on every row: same accepted lines, same rejects, same reasons."""

from __future__ import annotations

from datetime import datetime

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopstream.domain.bulk_parsing import ColumnParser
from shopstream.domain.columnar import raw_text
from shopstream.domain.line import FieldError

KAGGLE = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
SNAKE = ["invoice_no", "stock_code", "description", "quantity", "invoice_date", "unit_price", "customer_id", "country"]
AT = datetime(2026, 11, 25, 12, 0)

# Values that real files hold, and values that trip validators up.
TRICKY = {
    0: ["536365", "C536379", "A563185", "c536379", " 536365 ", "", "53 6365", "1234567890123", "../x", "536365.0",
        "123456789012", "536365\n", "C", "０１２"],
    1: ["85123A", "POST", " POST ", "", "x" * 32, "x" * 33, "BANK CHARGES", "a\tb", "ü", "\u00a0M", "M\u00a0",
        "ü" * 32, "ü" * 33, "a b", "x\x7f", "\u2028", " POST", "POST "],
    2: ["WHITE HANGING HEART", "", "x" * 200, "x" * 201, "£40 voucher", "tab\there", "quote \" and \\", "\x7f",
        "é" * 200, "é" * 201, " padded ", "\u2028", "😀" * 200],
    3: ["6", "-1", "0", "+3", "6.0", "6.5", "", "six", " 12 ", "1000000", "1000001", "-1000000", "1e3", "٣",
        "-0", "0000007", "9999999", "-1000001", "12\n"],
    4: ["2010-12-01 08:26:00", "12/1/2010 8:26", "12/13/2010 17:05:09", "2010-12-01T08:26:00Z",
        "2011-06-01T08:26:00+00:00", "13/45/2010 8:26", "1900-01-01 00:00:00", "yesterday", "", "2010-02-30 10:00:00",
        "2012-02-29 00:00:00", "2011-02-29 00:00:00", "2010-12-01 24:00:00", "2010-12-01 23:59:60",
        "1969-12-31 23:59:59", "1970-01-01 00:00:00", "2100-12-31 23:59:59", "2101-01-01 00:00:00",
        "0000-01-01 00:00:00", "2010-13-01 00:00:00", "2010-00-10 00:00:00", "2010-12-01 08:26:00.5"],
    5: ["2.55", "0.001", "0", "-11062.06", "2.5555", "abc", "NaN", "Infinity", "", " 3 ", "1e-3", "1000000.001",
        "1_000", "38970"],
    6: ["17850.0", "17850", "", " 17850 ", "17850.5", "abc-12_x", "17850'; DROP", "x" * 33, "0017850.00",
        "17850.", "-17850.0", "-17850", "1" * 32 + ".0", "1" * 33 + ".0", ".0", "17850.0\n"],
    7: ["United Kingdom", "EIRE", "", " France ", "Unspecified", "a\x00b", "x" * 64, "x" * 65, "Côte d'Ivoire",
        "France ", "\u00a0France"],
}


def ids_for(n: int) -> pa.Array:
    return pa.array([f"fdeadbeef00000000-{i + 1}" for i in range(n)], pa.string())


def both_ways(header, columns):
    n = len(columns[0])
    ids, rows = ids_for(n), pa.array(range(1, n + 1), pa.int64())
    fast = ColumnParser().parse(header, columns, ids, rows, AT, "bulk:test")
    slow = ColumnParser().parse_rowwise(header, columns, ids, rows, AT, "bulk:test")
    return fast, slow


def assert_same(fast, slow):
    assert fast.table.schema == slow.table.schema
    assert fast.table.to_pylist() == slow.table.to_pylist()
    # raw as stored (JSON text): NaN and infinities are null in JSON either way
    assert [(d.event_id, d.index, d.errors, raw_text(d.raw)) for d in fast.dead_letters] == [
        (d.event_id, d.index, d.errors, raw_text(d.raw)) for d in slow.dead_letters
    ]


cell = st.one_of(st.sampled_from(sum(TRICKY.values(), [])), st.text(max_size=12))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    header=st.sampled_from([KAGGLE, SNAKE, KAGGLE + ["Extra"], [h for h in KAGGLE if h != "CustomerID"]]),
    n=st.integers(1, 40),
)
def test_columnar_validation_equals_the_row_by_row_parser(data, header, n):
    columns = []
    for i, _ in enumerate(header):
        pool = st.one_of(st.sampled_from(TRICKY.get(i, [""])), cell)
        columns.append(pa.array(data.draw(st.lists(pool, min_size=n, max_size=n)), pa.string()))
    assert_same(*both_ways(header, columns))


def test_every_tricky_value_agrees_with_the_row_by_row_parser():
    """Each column's tricky values once at least, beside plain ones: the plain shapes that Arrow
    parses (bulk_parsing._PLAIN) end exactly where LineParser's rules start to matter."""
    good = ["536365", "85123A", "WHITE HANGING HEART", "6", "2010-12-01 08:26:00", "2.55", "17850.0", "EIRE"]
    rows = [good[:i] + [value] + good[i + 1:] for i in range(8) for value in TRICKY[i]]  # one odd cell a row
    columns = [pa.array([row[i] for row in rows], pa.string()) for i in range(8)]
    for header in (KAGGLE, SNAKE):
        fast, slow = both_ways(header, columns)
        assert_same(fast, slow)
        assert 0 < fast.table.num_rows < len(rows)  # some rows pass, some fail


typed_cell = {
    "InvoiceNo": st.one_of(st.integers(-10, 10**13), st.sampled_from(["C536379", "536365"]), st.none()),
    "StockCode": st.one_of(st.integers(0, 99999), st.sampled_from(["85123A", ""]), st.none()),
    "Description": st.one_of(st.none(), st.sampled_from(TRICKY[2])),
    "Quantity": st.one_of(st.integers(-2_000_000, 2_000_000), st.floats(allow_nan=True), st.none()),
    "InvoiceDate": st.one_of(st.datetimes(datetime(1960, 1, 1), datetime(2120, 1, 1)), st.none()),
    "UnitPrice": st.one_of(st.floats(-2e6, 2e6), st.sampled_from([2.55, 0.001, 1e-4]), st.none()),
    "CustomerID": st.one_of(st.floats(0, 1e6), st.integers(0, 99999), st.none()),
    "Country": st.one_of(st.sampled_from(TRICKY[7]), st.none()),
}
TYPES = {"InvoiceNo": pa.string(), "StockCode": pa.string(), "Description": pa.string(), "Quantity": None,
         "InvoiceDate": pa.timestamp("us"), "UnitPrice": pa.float64(), "CustomerID": pa.float64(),
         "Country": pa.string()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(1, 30))
def test_typed_columns_parquet_and_xlsx_agree_too(data, n):
    columns = []
    for name in KAGGLE:
        values = data.draw(st.lists(typed_cell[name], min_size=n, max_size=n))
        if name in ("InvoiceNo", "StockCode"):
            values = [None if v is None else str(v) for v in values]
        if name == "Quantity":
            kind = data.draw(st.sampled_from([pa.int64(), pa.float64()]))
            values = [None if v is None else (int(v) if kind == pa.int64() and v == v and abs(v) < 2**62 else None)
                      for v in values] if kind == pa.int64() else [None if v is None else float(v) for v in values]
            columns.append(pa.array(values, kind))
            continue
        if name == "CustomerID":
            values = [None if v is None else float(v) for v in values]
        columns.append(pa.array(values, TYPES[name]))
    assert_same(*both_ways(KAGGLE, columns))


def test_raw_is_the_json_send_posts_for_the_row():
    columns = [pa.array([v], pa.string()) for v in
               ["536365", "85123A", 'A "quoted" \\ £ line', "6", "2010-12-01 08:26:00", "2.55", "17850.0", "UK"]]
    fast, _ = both_ways(KAGGLE, columns)
    row = dict(zip(KAGGLE, (c[0].as_py() for c in columns))) | {"event_id": "fdeadbeef00000000-1"}
    assert fast.table["raw"][0].as_py() == orjson.dumps(row).decode()


def test_rejects_carry_row_number_and_every_reason():
    columns = [pa.array(v, pa.string()) for v in (
        ["536365", "536366", "x1"], ["85123A", "85123A", "85123A"], ["A", "B", "C"], ["6", "six", "1.5"],
        ["2010-12-01 08:26:00", "2010-12-01 08:26:00", "soon"], ["2.55", "2.55", "abc"], ["", "", ""],
        ["UK", "UK", "UK"])]
    fast, slow = both_ways(KAGGLE, columns)
    assert_same(fast, slow)
    assert fast.table.num_rows == 1 and pc.sum(fast.table["quantity"]).as_py() == 6
    assert [(d.index, d.errors) for d in fast.dead_letters] == [
        (2, (FieldError("Quantity", "must be an integer, got 'six'"),)),
        (3, (
            FieldError("InvoiceNo", "unknown invoice number shape 'x1': expected digits, optionally prefixed C "
                                    "(cancellation) or A (adjustment)"),
            FieldError("Quantity", "must be an integer, got '1.5'"),
            FieldError("InvoiceDate", "unparseable date 'soon': expected e.g. 12/1/2010 8:26, "
                                      "2010-12-01 08:26:00 or ISO 8601"),
            FieldError("UnitPrice", "must be a number, got 'abc'"),
        )),
    ]


def test_a_column_given_twice_is_judged_row_by_row():
    header = KAGGLE + ["quantity"]
    columns = [pa.array([v], pa.string()) for v in
               ["536365", "85123A", "X", "6", "2010-12-01 08:26:00", "2.55", "", "UK", "7"]]
    assert ColumnParser.columnar_plan(header) is None
    fast, slow = both_ways(header, columns)
    assert_same(fast, slow)
    assert fast.dead_letters[0].errors == (FieldError("quantity", "given twice (under two names)"),)
