"""Consumer groups on Kinesis: tasks split the shards, a killed task's shards are taken over,
checkpoints resume; resharding (on a fake Kinesis: moto cannot close a parent shard)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from shopstream.adapters.aws.clients import Aws
from shopstream.adapters.aws.kinesis import KinesisStream, encode_records
from shopstream.adapters.aws.leases import SHARD_END, read_leases
from shopstream.adapters.aws.resources import Names
from shopstream.domain.columnar import events_to_table
from tests.aws.lease_worker import GROUP
from tests.awsenv import aws_env, provisioned
from tests.contract.conftest import make_events

ROOT = Path(__file__).resolve().parents[2]


def rows(first_invoice: int, invoices: int):
    """Two lines per invoice: many invoices spread over every shard."""
    out = []
    for i in range(first_invoice, first_invoice + invoices):
        for code in ("85123A", "71053"):
            out.append((str(i), code, "X", 2, "2010-12-01 08:26:00", "1.25", "17850", "France"))
    return out


def processed(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.endswith(b"}")]


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)
    return result


@pytest.fixture
def lease_env():
    # Leases of 6 s (renewed every 2 s): short enough for a quick takeover, long enough that a
    # task starved of CPU on a busy machine does not lose its leases spuriously.
    settings = provisioned(lease_seconds=6.0, kinesis_poll_seconds=0.1)
    aws, names = Aws.from_settings(settings), Names.from_settings(settings)
    stream = KinesisStream(aws, names.stream, names.ledger_table, names.lease_table, 64, 0.1, 6.0)
    workers: list[subprocess.Popen] = []

    def start(out: Path) -> subprocess.Popen:
        env = dict(os.environ, **aws_env(settings), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        log = open(out.with_suffix(".log"), "wb")
        worker = subprocess.Popen([sys.executable, "-m", "tests.aws.lease_worker", str(out)], env=env, cwd=ROOT,
                                  stdout=log, stderr=subprocess.STDOUT)
        workers.append(worker)
        return worker

    yield stream, names, start
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    stream.close()


def owners(stream: KinesisStream, names: Names) -> dict[str, list[str]]:
    held = defaultdict(list)
    for lease in read_leases(stream.aws, names.lease_table, GROUP).values():
        if lease.owner and lease.expires_at > time.time():
            held[lease.owner].append(lease.shard_id)
    return held


def test_two_tasks_split_the_shards_and_a_killed_ones_are_taken_over(lease_env, tmp_path):
    stream, names, start = lease_env
    a_out, b_out, c_out = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    a, b = start(a_out), start(b_out)
    # Fair share: 4 shards, 2 live tasks -> 2 each (the later one steals from the first).
    wait_for(lambda: sorted(len(v) for v in owners(stream, names).values()) == [2, 2], 60, "a 2/2 split")
    time.sleep(3)  # one renewal round (2 s): the task a lease was taken from has noticed and let go

    first = make_events(rows(600000, 100), prefix="first")
    stream.append(events_to_table(first))
    everything = {e.event_id for e in first}
    wait_for(lambda: {i for r in processed(a_out) + processed(b_out) for i in r["events"]} == everything, 60,
             "both tasks to process the first events")
    a_shards = {r["shard"] for r in processed(a_out)}
    b_shards = {r["shard"] for r in processed(b_out)}
    assert len(a_shards) == len(b_shards) == 2 and not a_shards & b_shards  # each shard by one task

    a.send_signal(signal.SIGKILL)  # no goodbye: its leases must expire
    a.wait()
    a_lines = len(processed(a_out))
    second = make_events(rows(700000, 100), prefix="second")
    stream.append(events_to_table(second))
    wanted = {e.event_id for e in second}
    wait_for(lambda: wanted <= {i for r in processed(b_out) for i in r["events"]}, 60,
             "the survivor to take over the killed task's shards")
    assert {r["shard"] for r in processed(b_out)} == a_shards | b_shards
    assert len(processed(a_out)) == a_lines

    b.send_signal(signal.SIGTERM)  # a clean stop commits and hands its leases back
    assert b.wait(30) == 0
    third = make_events(rows(800000, 20), prefix="third")
    stream.append(events_to_table(third))
    start(c_out)
    wait_for(lambda: {i for r in processed(c_out) for i in r["events"]} >= {e.event_id for e in third}, 60,
             "a new task to resume from the checkpoints")
    # Checkpoints resume: the new task gets only what nobody committed.
    assert {i for r in processed(c_out) for i in r["events"]} == {e.event_id for e in third}
    assert stream.status([GROUP])[0].lag == 0


class FakeKinesis:
    """Kinesis at the boto3 boundary, with shards closed by a split and a merge.

    moto cannot do this: its parent shard never reports its children and accepts
    writes after a split (docs/decisions.md)."""

    def __init__(self, shards: dict[str, dict]) -> None:
        self.shards = shards  # id -> {"parents": [...], "records": [bytes], "closed": bool}
        self.reads: list[str] = []

    def list_shards(self, StreamName=None, NextToken=None):
        assert (StreamName is None) != (NextToken is None)  # AWS: a NextToken goes alone
        ids = sorted(self.shards)
        page = ids[:2] if NextToken is None else ids[2:]
        shards = []
        for sid in page:
            parents = self.shards[sid]["parents"]
            shard = {"ShardId": sid, "HashKeyRange": {}, "SequenceNumberRange": {"StartingSequenceNumber": "1"}}
            if parents:
                shard["ParentShardId"] = parents[0]
            if len(parents) > 1:
                shard["AdjacentParentShardId"] = parents[1]
            shards.append(shard)
        return {"Shards": shards, **({"NextToken": "page-2"} if NextToken is None else {})}

    def get_shard_iterator(self, StreamName, ShardId, ShardIteratorType, StartingSequenceNumber=None):
        position = int(StartingSequenceNumber) if ShardIteratorType == "AFTER_SEQUENCE_NUMBER" else 0
        return {"ShardIterator": f"{ShardId}|{position}"}

    def get_records(self, ShardIterator, Limit):
        shard_id, position = ShardIterator.split("|")
        shard, start = self.shards[shard_id], int(position)
        records = [{"SequenceNumber": str(start + i + 1), "Data": data}
                   for i, data in enumerate(shard["records"][start:start + min(Limit, 2)])]
        self.reads += [shard_id] * len(records)
        end = start + len(records)
        done = shard["closed"] and end == len(shard["records"])
        return {"Records": records, "MillisBehindLatest": 0,
                **({} if done else {"NextShardIterator": f"{shard_id}|{end}"})}


def test_resharding_parents_are_read_before_their_children(tmp_path):
    settings = provisioned(lease_seconds=2.0)
    aws, names = Aws.from_settings(settings), Names.from_settings(settings)

    def records(prefix: str, invoices: int) -> list[bytes]:
        events = make_events(rows(500000, invoices), prefix=prefix, received_at=datetime(2026, 11, 25))
        return [data for e in events for data in encode_records(events_to_table([e]))]

    # 0 split into 1 and 2; then 1 and 2 merged into 3. 4 is an unrelated open shard.
    fake = FakeKinesis({
        "shard-0": {"parents": [], "records": records("p", 2), "closed": True},
        "shard-1": {"parents": ["shard-0"], "records": records("c1", 2), "closed": True},
        "shard-2": {"parents": ["shard-0"], "records": records("c2", 1), "closed": True},
        "shard-3": {"parents": ["shard-1", "shard-2"], "records": records("m", 2), "closed": False},
        "shard-4": {"parents": [], "records": records("o", 1), "closed": False},
    })
    stream = KinesisStream(aws, "fake", names.ledger_table, names.lease_table, 64, 0.05, 2.0, kinesis=fake)
    reader = stream.reader("g")
    got: list[tuple[str, list[str]]] = []
    deadline = time.monotonic() + 30
    while len([i for _, ids in got for i in ids]) < 16 and time.monotonic() < deadline:
        batch = reader.read(3)
        if batch is None:
            time.sleep(0.05)
            continue
        got.append((batch.position[0], batch.table["event_id"].to_pylist()))
        reader.commit(batch)
    ids = [i for _, ids in got for i in ids]
    assert sorted(ids) == sorted(f"{p}-{i}" for p, n in (("p", 4), ("c1", 4), ("c2", 2), ("m", 4), ("o", 2))
                                 for i in range(n))  # every event exactly once
    order = [shard for shard, _ in got]
    last = {s: max(i for i, x in enumerate(order) if x == s) for s in set(order)}
    first = {s: min(i for i, x in enumerate(order) if x == s) for s in set(order)}
    assert last["shard-0"] < first["shard-1"] and last["shard-0"] < first["shard-2"]  # split
    assert max(last["shard-1"], last["shard-2"]) < first["shard-3"]  # merge: both parents first
    leases = read_leases(aws, names.lease_table, "g")
    assert [leases[s].checkpoint for s in ("shard-0", "shard-1", "shard-2")] == [SHARD_END] * 3
    assert (leases["shard-3"].checkpoint, leases["shard-4"].checkpoint) == ("4", "2")  # one record per event
    stream.close()


def test_a_paused_owner_can_neither_renew_nor_checkpoint_after_a_takeover():
    from shopstream.adapters.aws.leases import LeaseCoordinator

    settings = provisioned()
    aws, names = Aws.from_settings(settings), Names.from_settings(settings)
    kinesis = aws.client("kinesis")

    def worker(name: str) -> LeaseCoordinator:
        return LeaseCoordinator(aws, names.lease_table, kinesis, names.stream, "g", lease_seconds=1.0, worker_id=name)

    a = worker("a")
    a.tick()
    assert len(a.owned()) == 4  # alone: every shard
    shard, lease = sorted(a.owned().items())[0]
    assert a.checkpoint(shard, lease.token, "7")
    a.tick()  # a renewal in between does not invalidate the next checkpoint (no shared counter)
    assert a.checkpoint(shard, lease.token, "8")
    time.sleep(2.1)  # "a" pauses (a long GC, a stalled host) past its leases' expiry
    b = worker("b")
    b.tick()
    assert set(b.owned()) == set(a.owned())  # expired leases are taken over
    assert not a.checkpoint(shard, lease.token, "9")  # fenced by the token
    assert shard not in a.owned()
    a.tick()  # its renewals fail and it drops those; it may take one back fairly (a new token)
    leases = read_leases(aws, names.lease_table, "g")
    for sid, mine in a.owned().items():
        assert (leases[sid].owner, leases[sid].token) == ("a", mine.token) and mine.token != lease.token
    assert leases[shard].checkpoint == "8"  # whoever owns it resumes from a's last checkpoint
    b.tick()  # b's renewal of anything "a" took back fails: the views agree again
    assert not set(a.owned()) & set(b.owned()) and len(a.owned()) + len(b.owned()) == 4
