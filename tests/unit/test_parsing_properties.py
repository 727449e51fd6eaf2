"""Property-based tests of the parser and validator (hypothesis): whatever a client sends,
a line is either accepted with exactly its values or rejected with per-field reasons,
and nothing raises."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shopstream.domain.intake import take_in
from shopstream.domain.parsing import (
    CANONICAL_FIELDS,
    CUSTOMER_ID_PATTERN,
    MAX_QUANTITY,
    Invalid,
    LineParser,
    parse_customer_id,
    parse_invoice_no,
    parse_unit_price_milli,
)

EXAMPLES = 300
parse = LineParser("Europe/London")
KAGGLE = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=300),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20,
)
valid_quantity = st.integers(min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY)
valid_milli = st.integers(min_value=-1_000_000_000, max_value=1_000_000_000)
valid_date = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30)).map(
    lambda d: d.replace(second=0, microsecond=0))
plain_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_characters="\x7f"),
                     min_size=1, max_size=30).filter(lambda t: t.strip() == t and t.strip())


def a_valid_line(quantity, milli, date, customer, country, code):
    return {"InvoiceNo": 536365, "StockCode": code, "Description": "X", "Quantity": quantity,
            "InvoiceDate": date.strftime("%m/%d/%Y %H:%M").lstrip("0").replace("/0", "/"),
            "UnitPrice": str(Decimal(milli).scaleb(-3)), "CustomerID": customer, "Country": country}


def outcome(raw):
    line, event_id, errors = parse(raw)
    assert (line is None) == bool(errors), (line, errors)
    return line, errors


@settings(max_examples=EXAMPLES)
@given(raw=json_values)
def test_anything_at_all_is_accepted_or_rejected_never_raises(raw):
    line, errors = outcome(raw)
    if not isinstance(raw, dict):
        assert [e.field for e in errors] == ["line"]


@settings(max_examples=EXAMPLES)
@given(field=st.sampled_from(KAGGLE), value=json_values, quantity=valid_quantity, milli=valid_milli,
       date=valid_date)
def test_any_value_in_any_field_is_accepted_exactly_or_named_in_the_rejection(field, value, quantity, milli, date):
    raw = a_valid_line(quantity, milli, date, 17850, "United Kingdom", "85123A") | {field: value}
    line, errors = outcome(raw)
    if errors:
        assert {e.field for e in errors} == {field}, errors
        assert all(e.reason for e in errors)


@settings(max_examples=EXAMPLES)
@given(quantity=valid_quantity, milli=valid_milli, date=valid_date,
       customer=st.one_of(st.none(), st.integers(1, 99_999)), country=plain_text, code=plain_text,
       shape=st.sampled_from(["int", "float", "str"]))
def test_valid_lines_keep_their_exact_values(quantity, milli, date, customer, country, code, shape):
    price = Decimal(milli).scaleb(-3)
    raw = a_valid_line(quantity, milli, date, customer, country, code)
    raw["UnitPrice"] = {"int": int(price) if price == int(price) else str(price), "float": float(price),
                        "str": str(price)}[shape]
    raw["Quantity"] = {"int": quantity, "float": float(quantity), "str": str(quantity)}[shape]
    if customer is not None:
        raw["CustomerID"] = {"int": customer, "float": float(customer), "str": f"{customer}.0"}[shape]
    line, errors = outcome(raw)
    assert not errors
    assert (line.quantity, line.unit_price_milli, line.invoice_date) == (quantity, milli, date)
    assert line.customer_id == (None if customer is None else str(customer))
    assert line.line_total_milli == quantity * milli
    snake = {name: raw[kaggle] for name, kaggle in zip(CANONICAL_FIELDS, KAGGLE)}
    assert parse(snake)[0] == line  # Kaggle and snake_case names give the same line


@settings(max_examples=EXAMPLES)
@given(milli=valid_milli, extra=st.integers(1, 9), places=st.integers(1, 6))
def test_more_than_three_decimals_is_refused_never_rounded(milli, extra, places):
    text = f"{Decimal(milli).scaleb(-3):.3f}" + "0" * (places - 1) + str(extra)  # 4+ places, last not 0
    try:
        parse_unit_price_milli(text)
    except Invalid as error:
        assert "more than 3 decimal places" in str(error) or "out of range" in str(error)
    else:
        raise AssertionError(f"{text} was accepted")


@settings(max_examples=EXAMPLES)
@given(quantity=st.integers().filter(lambda q: abs(q) > MAX_QUANTITY))
def test_quantities_out_of_range_are_refused(quantity):
    _, errors = outcome(a_valid_line(quantity, 1000, datetime(2011, 1, 1), 1, "X", "Y"))
    assert [(e.field, e.reason) for e in errors] == [("Quantity", f"out of range (at most {MAX_QUANTITY:,} in absolute value)")]


@settings(max_examples=EXAMPLES)
@given(text=st.text(min_size=1, max_size=40), control=st.characters(max_codepoint=0x1F), field=st.sampled_from(
    ["StockCode", "Description", "Country"]))
def test_control_characters_in_text_are_refused(text, control, field):
    raw = a_valid_line(1, 1000, datetime(2011, 1, 1), 1, "X", "Y") | {field: text[:10] + control + text[10:]}
    _, errors = outcome(raw)
    assert [e.field for e in errors] == [field]


@settings(max_examples=EXAMPLES)
@given(text=st.one_of(st.text(max_size=30), st.from_regex(r"[CcAa]?[0-9]{1,14}", fullmatch=True)))
def test_invoice_numbers_are_digits_with_an_optional_c_or_a(text):
    try:
        parsed = parse_invoice_no(text)
    except Invalid as error:
        assert "unknown invoice number shape" in str(error)
        assert not re.fullmatch(r"[CA]?[0-9]{1,12}", text.strip().upper())
    else:
        assert re.fullmatch(r"[CA]?[0-9]{1,12}", parsed) and parsed == text.strip().upper()


@settings(max_examples=EXAMPLES)
@given(value=json_values)
def test_customer_ids_are_none_or_safe_text(value):
    try:
        parsed = parse_customer_id(value)
    except Invalid:
        return
    assert parsed is None or CUSTOMER_ID_PATTERN.match(parsed)


@settings(max_examples=EXAMPLES)
@given(raws=st.lists(st.one_of(json_values, st.builds(a_valid_line, valid_quantity, valid_milli, valid_date,
                                                      st.just(1), st.just("UK"), st.just("A1"))), max_size=30),
       key=st.one_of(st.none(), st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)))
def test_intake_gives_every_line_one_id_and_one_fate(raws, key):
    first = take_in(raws, parse, datetime(2026, 1, 1), "http:test", idempotency_key=key)
    assert len(first.events) + len(first.dead_letters) == len(raws) == len(first.event_ids)
    assert all(d.errors for d in first.dead_letters)
    if key is not None:  # a retry with the same Idempotency-Key gets the same ids
        again = take_in(raws, parse, datetime(2026, 1, 2), "http:test", idempotency_key=key)
        assert again.event_ids == first.event_ids
