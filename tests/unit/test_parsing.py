"""The data contract: every input shape real clients send, and every refusal's reason."""

from datetime import datetime

import pytest

from shopstream.domain.parsing import LineParser

parse = LineParser("Europe/London")

KAGGLE_JSON = {  # what pandas' Series.to_json() makes of a Kaggle CSV row
    "InvoiceNo": 536365, "StockCode": "85123A", "Description": "WHITE HANGING HEART T-LIGHT HOLDER",
    "Quantity": 6, "InvoiceDate": "12/1/2010 8:26", "UnitPrice": 2.55, "CustomerID": 17850.0,
    "Country": "United Kingdom",
}
SNAKE = {
    "invoice_no": "536365", "stock_code": "85123A", "description": "WHITE HANGING HEART T-LIGHT HOLDER",
    "quantity": "6", "invoice_date": "2010-12-01 08:26:00", "unit_price": "2.55", "customer_id": "17850",
    "country": "United Kingdom",
}


def ok(raw):
    line, _, errors = parse(raw)
    assert errors == [], errors
    return line


def reasons(raw):
    line, _, errors = parse(raw)
    assert line is None
    return {e.field: e.reason for e in errors}


def test_kaggle_json_and_snake_case_give_the_same_line():
    a, b = ok(KAGGLE_JSON), ok(SNAKE)
    assert a == b
    assert a.invoice_no == "536365" and a.customer_id == "17850" and a.quantity == 6
    assert a.invoice_date == datetime(2010, 12, 1, 8, 26)
    assert str(a.unit_price) == "2.550" and a.line_total_milli == 15_300


@pytest.mark.parametrize(
    "text, expected",
    [
        ("12/1/2010 8:26", datetime(2010, 12, 1, 8, 26)),
        ("12/13/2010 17:05", datetime(2010, 12, 13, 17, 5)),
        ("2010-12-01 08:26:00", datetime(2010, 12, 1, 8, 26)),
        ("2010-12-01T08:26:00", datetime(2010, 12, 1, 8, 26)),
        ("2010-12-01T08:26:00Z", datetime(2010, 12, 1, 8, 26)),  # London is UTC in December
        ("2011-06-01T08:26:00+00:00", datetime(2011, 6, 1, 9, 26)),  # ... and UTC+1 in June
        (1291191960000, datetime(2010, 12, 1, 8, 26)),  # pandas epoch milliseconds
    ],
)
def test_dates_in_every_accepted_shape(text, expected):
    assert ok(KAGGLE_JSON | {"InvoiceDate": text}).invoice_date == expected


@pytest.mark.parametrize("value", [17850, 17850.0, "17850", "17850.0", " 17850 "])
def test_customer_id_shapes(value):
    assert ok(KAGGLE_JSON | {"CustomerID": value}).customer_id == "17850"


@pytest.mark.parametrize("value", [None, "", float("nan")])
def test_guests_have_no_customer(value):
    assert ok(KAGGLE_JSON | {"CustomerID": value}).customer_id is None


@pytest.mark.parametrize("value, milli", [(2.55, 2550), ("2.55", 2550), (3, 3000), ("0.001", 1), (0, 0), (-11062.06, -11062060)])
def test_prices_are_exact(value, milli):
    assert ok(KAGGLE_JSON | {"UnitPrice": value}).unit_price_milli == milli


def test_flagged_lines_are_valid():
    cancelled = ok(KAGGLE_JSON | {"InvoiceNo": "C536379", "Quantity": -1})
    assert cancelled.is_cancellation and not cancelled.is_sale
    assert ok(KAGGLE_JSON | {"InvoiceNo": "A563185", "StockCode": "B"}).is_adjustment
    assert ok(KAGGLE_JSON | {"Description": None}).description is None
    assert ok(KAGGLE_JSON | {"StockCode": "POST"}).is_service
    assert not ok(KAGGLE_JSON | {"UnitPrice": 0}).is_sale


@pytest.mark.parametrize(
    "change, field, reason",
    [
        ({"Quantity": "six"}, "Quantity", "must be an integer, got 'six'"),
        ({"Quantity": 1.5}, "Quantity", "must be an integer, got 1.5"),
        ({"Quantity": True}, "Quantity", "must be an integer, got True"),
        ({"Quantity": 10**12}, "Quantity", "out of range (at most 1,000,000 in absolute value)"),
        ({"UnitPrice": "abc"}, "UnitPrice", "must be a number, got 'abc'"),
        ({"UnitPrice": "NaN"}, "UnitPrice", "must be a finite number, got 'NaN'"),
        ({"UnitPrice": float("inf")}, "UnitPrice", "must be a finite number, got inf"),
        ({"UnitPrice": "2.5555"}, "UnitPrice", "has more than 3 decimal places: '2.5555'"),
        ({"InvoiceDate": "yesterday"}, "InvoiceDate",
         "unparseable date 'yesterday': expected e.g. 12/1/2010 8:26, 2010-12-01 08:26:00 or ISO 8601"),
        ({"InvoiceDate": "13/45/2010 8:26"}, "InvoiceDate", "unparseable date '13/45/2010 8:26'"),
        ({"InvoiceDate": "1900-01-01 00:00:00"}, "InvoiceDate", "year 1900 is out of range (1970-2100)"),
        ({"InvoiceNo": "../../etc/passwd"}, "InvoiceNo",
         "unknown invoice number shape '../../etc/passwd': expected digits, optionally prefixed C "
         "(cancellation) or A (adjustment)"),
        ({"Description": "x" * 201}, "Description", "longer than 200 characters"),
        ({"Country": "United\x00Kingdom"}, "Country", "contains control characters"),
        ({"Country": None}, "Country", "required field is null"),
        ({"CustomerID": "17850'; DROP TABLE lines;--"}, "CustomerID",
         "must be letters, digits, '-' or '_' (at most 32), got \"17850'; DROP TABLE lines;--\""),
        ({"StockCode": {"nested": [1]}}, "StockCode", "must be text, got {'nested': [1]}"),
    ],
)
def test_invalid_values_are_refused_with_a_reason(change, field, reason):
    assert reasons(KAGGLE_JSON | change) == {field: reason}


def test_missing_fields_are_each_named():
    raw = {k: v for k, v in SNAKE.items() if k not in ("quantity", "country")}
    assert reasons(raw) == {"quantity": "required field is missing", "country": "required field is missing"}


def test_a_line_must_be_an_object():
    assert reasons([1, 2]) == {"line": "must be a JSON object, got list"}


def test_client_event_ids_are_taken_and_checked():
    _, event_id, _ = parse(SNAKE | {"event_id": "shop-1:row.7"})
    assert event_id == "shop-1:row.7"
    assert reasons(SNAKE | {"event_id": "a b"}) == {"event_id": "must be 1-128 letters, digits or . _ : -"}
    # a final newline too: the id would break every JSON document that carries it unescaped
    assert reasons(SNAKE | {"event_id": "e-1\n"}) == {"event_id": "must be 1-128 letters, digits or . _ : -"}


def test_a_quantity_padded_with_what_python_calls_space_is_read_not_a_crash():
    assert ok(SNAKE | {"quantity": "6\x1f"}).quantity == 6  # str.strip() drops \x1c-\x1f; int() does not


def test_epoch_milliseconds_before_year_one_are_a_reason_not_a_crash():
    assert reasons(SNAKE | {"invoice_date": -62135596800001}) == {
        "invoice_date": "unparseable date -62135596800001: out of range"}


def test_cached_values_do_not_confuse_types():
    # "1" (text) was parsed and cached; True must still be refused, 1 still accepted
    assert ok(SNAKE | {"quantity": "1"}).quantity == 1
    assert reasons(SNAKE | {"quantity": True}) == {"quantity": "must be an integer, got True"}
    assert ok(SNAKE | {"quantity": 1}).quantity == 1
