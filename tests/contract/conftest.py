from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from shopstream.domain.columnar import events_to_table
from shopstream.domain.intake import take_in
from shopstream.domain.parsing import LineParser
from tests.contract import backends

# A small fixture with known answers (METRICS.md terms in the comments).
ROWS = [
    # invoice 536365, customer 17850: two sale lines = 15.30 + 20.34
    ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, "2010-12-01 08:26:00", "2.55", "17850", "United Kingdom"),
    ("536365", "71053", "WHITE METAL LANTERN", 6, "2010-12-01 08:26:00", "3.39", "17850", "United Kingdom"),
    # invoice 536366, customer 17850, a minute-spanning invoice: 22.20 + 0.001 (price 0.001)
    ("536366", "22633", "HAND WARMER UNION JACK", 6, "2010-12-01 08:28:00", "1.85", "17850", "United Kingdom"),
    ("536366", "22632", "HAND WARMER RED POLKA DOT", 1, "2010-12-01 08:29:00", "0.001", "17850", "United Kingdom"),
    # cancellation of customer 17850: -27.50
    ("C536379", "D", "Discount", -1, "2010-12-01 09:41:00", "27.50", "17850", "United Kingdom"),
    # a guest's invoice: 3 x 2.10 = 6.30, and a postage line 18.00
    ("536367", "84879", "ASSORTED COLOUR BIRD ORNAMENT", 3, "2010-12-02 10:00:00", "2.10", None, "France"),
    ("536367", "POST", "POSTAGE", 1, "2010-12-02 10:00:00", "18", None, "France"),
    # another customer, later: 10 x 1.25 = 12.50
    ("536400", "21730", "GLASS STAR FROSTED T-LIGHT HOLDER", 10, "2010-12-03 11:00:00", "1.25", "12583", "France"),
]
FIXTURE_LINES = len(ROWS)
FIXTURE_MILLI = 15_300 + 20_340 + 11_100 + 1 - 27_500 + 6_300 + 18_000 + 12_500


def make_events(rows=ROWS, prefix="e", received_at=datetime(2026, 11, 25, 10, 0)):
    raws = [
        dict(zip(("invoice_no", "stock_code", "description", "quantity", "invoice_date", "unit_price",
                  "customer_id", "country"), row))
        for row in rows
    ]
    intake = take_in(raws, LineParser(), received_at, "test", event_id_for=lambda i: f"{prefix}-{i}")
    assert not intake.dead_letters
    return intake.events


def make_table(rows=ROWS, prefix="e", **kwargs):
    return events_to_table(make_events(rows, prefix, **kwargs))


FILE = "f0123456789abcdef-"  # a file's event id prefix (file_event_id): rows 1, 2, ...


def file_events(rows):
    """Lines whose ids are rows of one file, as a bulk load or `send` gives them."""
    events = make_events(ROWS * 8)
    return [replace(events[(row - 1) % len(events)], event_id=f"{FILE}{row}") for row in rows]


def _closing(factory):
    def fixture(request, tmp_path):
        made = factory[request.param](tmp_path)
        yield made
        for port in (made.writer,) if isinstance(made, backends.WarehousePair) else (made,):
            port.close()

    return fixture


stream = pytest.fixture(params=list(backends.STREAMS))(_closing(backends.STREAMS))
lake = pytest.fixture(params=list(backends.LAKES))(_closing(backends.LAKES))
store = pytest.fixture(params=list(backends.STORES))(_closing(backends.STORES))
warehouse = pytest.fixture(params=list(backends.WAREHOUSES))(_closing(backends.WAREHOUSES))
dead_letters = pytest.fixture(params=list(backends.DEAD_LETTERS))(_closing(backends.DEAD_LETTERS))
