from datetime import datetime

from shopstream.domain.intake import take_in
from shopstream.domain.parsing import LineParser


def test_rejected_lines_are_kept_with_their_reasons(dead_letters):
    intake = take_in(
        [{"InvoiceNo": "536365", "Quantity": "six"}, "not an object"],
        LineParser(), datetime(2026, 11, 25, 10), "test", idempotency_key="k",
    )
    dead_letters.write(intake.dead_letters)
    dead_letters.write(intake.dead_letters)  # a retried request
    assert dead_letters.count() == 2
    kept = {d.index: d for d in dead_letters.recent(10)}
    assert {e.field: e.reason for e in kept[0].errors}["Quantity"] == "must be an integer, got 'six'"
    assert kept[1].errors[0].reason == "must be a JSON object, got str"
    assert kept[0].raw == '{"InvoiceNo":"536365","Quantity":"six"}'
