"""Stream contract: durable appends, one checkpoint per group, redelivery until commit."""


from shopstream.domain.columnar import events_to_table
from shopstream.domain.line import Totals
from tests.contract.conftest import FILE, FIXTURE_LINES, FIXTURE_MILLI, ROWS, file_events, make_events, make_table


def drain(reader, max_events=3):
    batches = []
    while (batch := reader.read(max_events)) is not None:
        batches.append(batch)
        reader.commit(batch)
    return batches


def test_appended_events_are_read_back_exactly(stream):
    events = make_events()
    assert stream.append(events_to_table(events)).appended == FIXTURE_LINES
    batches = drain(stream.reader("g"), max_events=100)
    got = [e for b in batches for e in b.events]
    assert sorted(e.event_id for e in got) == sorted(e.event_id for e in events)
    assert {e.event_id: e for e in got} == {e.event_id: e for e in events}
    assert stream.accepted() == Totals(FIXTURE_LINES, FIXTURE_MILLI)


def test_lines_of_one_invoice_keep_their_order(stream):
    stream.append(make_table(prefix="a"))
    stream.append(make_table(prefix="b"))
    got = [e for b in drain(stream.reader("g")) for e in b.events]
    for invoice in {e.line.invoice_no for e in got}:
        ids = [e.event_id for e in got if e.line.invoice_no == invoice]
        assert ids == sorted(ids, key=lambda i: (i[0], int(i.split("-")[1])))


def test_an_event_id_is_accepted_once(stream):
    events = make_events()
    stream.append(events_to_table(events))
    again = stream.append(events_to_table(events + make_events(prefix="new")))
    assert again.appended == FIXTURE_LINES
    assert again.duplicates == {e.event_id for e in events}
    assert stream.accepted() == Totals(2 * FIXTURE_LINES, 2 * FIXTURE_MILLI)
    assert sum(b.table.num_rows for b in drain(stream.reader("g"), 100)) == 2 * FIXTURE_LINES


def test_uncommitted_batches_are_redelivered_with_the_same_id(stream):
    stream.append(make_table())
    reader = stream.reader("g")
    first = reader.read(3)
    reader.close()  # a crash before commit
    reader = stream.reader("g")
    again = reader.read(3)
    assert again.batch_id == first.batch_id
    assert again.table.equals(first.table)
    reader.commit(again)
    reader.close()
    rest = drain(stream.reader("g"), 100)
    assert sum(b.table.num_rows for b in rest) == FIXTURE_LINES - first.table.num_rows
    assert first.batch_id not in {b.batch_id for b in rest}


def test_groups_have_their_own_checkpoints_and_lag(stream):
    stream.append(make_table())
    drain(stream.reader("fast"), 100)
    status = {s.group: s.lag for s in stream.status(["fast", "slow"])}
    assert status == {"fast": 0, "slow": FIXTURE_LINES}
    assert sum(b.table.num_rows for b in drain(stream.reader("slow"))) == FIXTURE_LINES


def test_nothing_to_read_is_none(stream):
    assert stream.reader("g").read(10) is None
    assert stream.append(make_table([])).appended == 0


def test_bulk_loads_record_what_they_accepted(stream):
    events = make_events()
    stream.append(events_to_table(events[:3]))
    assert stream.record_accepted(events_to_table(events)) == FIXTURE_LINES - 3
    assert stream.accepted() == Totals(FIXTURE_LINES, FIXTURE_MILLI)
    assert stream.append(events_to_table(events)).appended == 0  # known now, whichever way it came
    assert sum(b.table.num_rows for b in drain(stream.reader("g"), 100)) == 3


def test_accepted_among_names_exactly_the_ids_accepted_before(stream):
    events = make_events()  # ids e-0 ... e-7
    stream.append(events_to_table(events[2:4]))
    stream.record_accepted(events_to_table(events[6:7]))
    assert stream.accepted_among([]) == set()
    assert stream.accepted_among(["a-1", "b-2", "e-1", "e-5", "f-1"]) == set()  # ranges around and between them
    assert stream.accepted_among(["e-0", "e-3", "e-6", "zz"]) == {"e-3", "e-6"}


def test_holds_prefix_tells_whether_a_file_was_accepted_before(stream):
    cannot_tell = stream.holds_prefix("e-") is None  # a ledger without ranges (every chunk is looked up)
    assert cannot_tell or stream.holds_prefix("e-") is False
    stream.record_accepted(events_to_table(make_events()[:1]))  # id e-0
    answers = tuple(stream.holds_prefix(p) for p in ("e-", "e", "d-", "e-0", "e-1"))
    assert answers == ((None,) * 5 if cannot_tell else (True, True, False, True, False))


def totals_of(events) -> Totals:
    return Totals(len(events), sum(e.line.line_total_milli for e in events))


def test_a_files_rows_are_accepted_once_whichever_way_they_come(stream):
    loaded = file_events([row for row in range(1, 41) if row != 4])  # row 4 a dead letter, say
    assert stream.record_accepted(events_to_table(loaded)) == 39
    assert stream.accepted() == totals_of(loaded)
    assert stream.record_accepted(events_to_table(loaded)) == 0  # a re-run
    every = file_events(range(1, 49))
    assert stream.accepted_among([e.event_id for e in every] + [f"{FILE}04", f"{FILE}0", "f-1"]) == {
        e.event_id for e in loaded}
    sent = stream.append(events_to_table(every))  # `send` of the same file afterwards
    assert sent.appended == 9 and sent.duplicates == {e.event_id for e in loaded}
    assert stream.accepted() == totals_of(every)
    assert stream.record_accepted(events_to_table(file_events(range(38, 49)))) == 0  # known both ways
    assert stream.accepted() == totals_of(every)
    assert stream.holds_prefix(FILE) is not False and stream.holds_prefix("f0123456789abcdee-") is not True
    assert stream.holds_prefix(f"{FILE}12") is not False and stream.holds_prefix(f"{FILE}99999") is not True


def test_chunks_of_a_file_next_to_and_across_each_other(stream):
    assert stream.record_accepted(events_to_table(file_events(range(1, 21)))) == 20
    assert stream.record_accepted(events_to_table(file_events(range(21, 41)))) == 20
    assert stream.record_accepted(events_to_table(file_events([*range(10, 31), 45]))) == 1  # chunked otherwise
    assert stream.accepted() == totals_of(file_events([*range(1, 41), 45]))
    assert stream.append(events_to_table(file_events(range(1, 61)))).appended == 19
    assert stream.accepted() == totals_of(file_events(range(1, 61)))


def test_blocks_of_a_file_sent_in_any_order_are_accepted_once(stream):
    assert stream.append(events_to_table(file_events([*range(1, 21), *range(401, 421)]))).appended == 40
    assert stream.append(events_to_table(file_events(range(21, 401)))).appended == 380
    again = stream.append(events_to_table(file_events(range(15, 46))))  # a retried request
    assert again.appended == 0 and again.duplicates == {f"{FILE}{row}" for row in range(15, 46)}
    assert stream.accepted() == totals_of(file_events(range(1, 421)))
    assert sum(b.table.num_rows for b in drain(stream.reader("g"), 1000)) == 420
