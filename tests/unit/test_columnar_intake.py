"""A request of uniform lines is parsed a column at a time (LineParser.parse_many's Arrow path);
it must give exactly what the line-by-line parser gives: the same accepted lines and
values, the same rejections and reasons, the same event ids."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopstream.domain.intake import take_in
from shopstream.domain.parsing import LineParser
from tests.unit.test_bulk_parsing import TRICKY

AT = datetime(2026, 12, 2, 12, 0)
KEYS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]

# values as JSON clients send them: text, integers, floats, null, booleans, and odd types
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
    st.text(max_size=12), st.lists(st.integers(), max_size=2),
)
field_values = {
    i: st.one_of(st.sampled_from(TRICKY[i]), scalar) for i in range(len(KEYS))
}
# pandas' to_json of a CSV row: numbers as numbers, CustomerID a float or null
typical = {
    0: st.sampled_from([536365, 536366, "C536379", 536367]),
    3: st.integers(-5, 50), 5: st.sampled_from([2.55, 0.001, 3.39, 0.0, -11062.06]),
    6: st.sampled_from([17850.0, 13047.0, None]),
}




def lines_of(raws):
    """The row-by-row reference: each line alone (a request of one line never goes columnar)."""
    parse = LineParser()
    return [take_in([raw], parse, AT, "test", event_id_for=lambda i, n=n: f"e-{n}") for n, raw in enumerate(raws)]


def assert_same(raws):
    whole = take_in(raws, LineParser(), AT, "test", event_id_for=lambda i: f"e-{i}")
    alone = lines_of(raws)
    assert whole.event_ids == [i.event_ids[0] for i in alone]
    assert whole.table.to_pylist() == [row for i in alone for row in i.table.to_pylist()]
    assert [(d.index, d.errors) for d in whole.dead_letters] == [
        (n, d.errors) for n, i in enumerate(alone) for d in i.dead_letters]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(9, 30), with_ids=st.booleans())
def test_columnar_requests_equal_the_line_by_line_parser(data, n, with_ids):
    pools = [st.one_of(typical[i], field_values[i]) if i in typical else field_values[i] for i in range(len(KEYS))]
    columns = [data.draw(st.lists(pool, min_size=n, max_size=n)) for pool in pools]
    raws = [dict(zip(KEYS, row)) for row in zip(*columns)]
    if with_ids:
        ids = data.draw(st.lists(st.one_of(st.none(), st.sampled_from(["ok-1", "a b", "x\n", 7]),
                                           st.from_regex(r"[a-z0-9-]{1,10}", fullmatch=True)), min_size=n, max_size=n))
        raws = [raw | {"event_id": i} for raw, i in zip(raws, ids)]
    assert_same(raws)


def test_a_uniform_pandas_style_request_goes_columnar_and_matches():
    raws = [{"InvoiceNo": 536365 + i % 3, "StockCode": "85123A", "Description": "WHITE HANGING HEART",
             "Quantity": 6 - i, "InvoiceDate": "12/1/2010 8:26", "UnitPrice": 2.55, "CustomerID": 17850.0,
             "Country": "United Kingdom", "event_id": f"p-{i}"} for i in range(12)]
    parsed = LineParser().parse_many(raws)
    assert all(isinstance(c, pa.Array) for c in parsed.columns.values())  # the Arrow path is taken
    assert_same(raws)
    whole = take_in(raws, LineParser(), AT, "test")
    assert [d.index for d in whole.dead_letters] == []  # quantities 6 .. -5 are all valid
    assert whole.table.column("quantity").to_pylist() == [6 - i for i in range(12)]
