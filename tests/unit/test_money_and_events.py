from datetime import datetime

import pytest

from shopstream.domain.columnar import distinct_totals, events_to_table, from_ipc, table_to_events, to_ipc
from shopstream.domain.events import file_event_id, idempotency_event_id, partition_of, random_event_id
from shopstream.domain.intake import take_in
from shopstream.domain.line import Totals
from shopstream.domain.money import format_money, parse_money_milli
from shopstream.domain.parsing import LineParser
from shopstream.domain.views import CustomerSummary


@pytest.mark.parametrize(
    "milli, text",
    [(139_120, "139.12"), (1, "0.001"), (0, "0.00"), (-102_580, "-102.58"), (9_747_747_934, "9747747.934"),
     (5, "0.005"), (-1, "-0.001"), (2_550, "2.55")],
)
def test_money_text_is_exact_and_round_trips(milli, text):
    assert format_money(milli) == text
    assert parse_money_milli(text) == milli


def test_event_ids_are_stable_where_they_must_be():
    assert file_event_id("ab" * 32, 7) == file_event_id("ab" * 32, 7) == "fabababababababab-7"
    assert idempotency_event_id("key-1", 3) == idempotency_event_id("key-1", 3)
    assert idempotency_event_id("key-1", 3) != idempotency_event_id("key-2", 3)
    assert random_event_id() != random_event_id()


def test_one_invoice_one_partition():
    assert len({partition_of("536365", 8) for _ in range(3)}) == 1
    assert {partition_of(str(n), 8) for n in range(536365, 536465)} == set(range(8))


ROWS = [
    {"InvoiceNo": "536365", "StockCode": "85123A", "Description": "HEART", "Quantity": "6",
     "InvoiceDate": "12/1/2010 8:26", "UnitPrice": "2.55", "CustomerID": "17850.0", "Country": "United Kingdom"},
    {"InvoiceNo": "536365", "StockCode": "71053", "Description": "LANTERN", "Quantity": "oops",
     "InvoiceDate": "12/1/2010 8:26", "UnitPrice": "3.39", "CustomerID": "17850.0", "Country": "United Kingdom"},
    {"InvoiceNo": "C536379", "StockCode": "D", "Description": None, "Quantity": "-1",
     "InvoiceDate": "12/1/2010 9:41", "UnitPrice": "27.5", "CustomerID": "", "Country": "United Kingdom"},
]


def test_take_in_sorts_lines_and_gives_every_line_an_id():
    intake = take_in(ROWS, LineParser(), datetime(2026, 1, 1), "test", event_id_for=lambda i: f"row-{i}")
    assert [e.event_id for e in intake.events] == ["row-0", "row-2"]
    assert intake.event_ids == ["row-0", "row-1", "row-2"]
    assert intake.rejection_report() == [
        {"index": 1, "event_id": "row-1", "errors": [{"field": "Quantity", "reason": "must be an integer, got 'oops'"}]}
    ]


def test_events_survive_the_columnar_round_trip():
    intake = take_in(ROWS, LineParser(), datetime(2026, 1, 1, 12), "test", idempotency_key="k")
    table = from_ipc([to_ipc(events_to_table(intake.events))])
    assert table_to_events(table) == intake.events
    assert distinct_totals(pa_concat(table, table)) == Totals(2, 15_300 - 27_500)


def pa_concat(*tables):
    import pyarrow as pa

    return pa.concat_tables(tables)


def test_average_order_value_rounds_half_up_to_the_thousandth():
    summary = CustomerSummary("1", datetime(2011, 1, 1), datetime(2011, 1, 2), 3, 0, 0, 1000)
    assert summary.average_order_value_milli == 333
    assert CustomerSummary("1", datetime(2011, 1, 1), datetime(2011, 1, 1), 2, 0, 0, 1).average_order_value_milli == 1
    assert CustomerSummary("1", datetime(2011, 1, 1), datetime(2011, 1, 1), 0, 0, 0, 0).as_dict()["average_order_value"] is None


def test_by_partition_keeps_each_invoice_together_and_in_order():
    import pyarrow as pa

    from shopstream.domain.events import by_partition

    invoices = [str(536365 + i % 7) for i in range(40)]
    table = pa.table({"invoice_no": invoices, "row": list(range(40))})
    parts = by_partition(table, 4)
    assert [p for p, _ in parts] == sorted({partition_of(no, 4) for no in invoices})
    rows = [row for _, part in parts for row in part["row"].to_pylist()]
    assert sorted(rows) == list(range(40))  # every row once
    for number, part in parts:
        assert {partition_of(no, 4) for no in part["invoice_no"].to_pylist()} == {number}
        assert part["row"].to_pylist() == sorted(part["row"].to_pylist())  # table order kept
    assert by_partition(table.slice(0, 0), 4) == []
