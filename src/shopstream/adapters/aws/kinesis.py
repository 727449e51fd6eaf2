"""The stream on Kinesis Data Streams: an aggregating producer and lease-based readers.

Producer. A request's new events are grouped by hash group (`partition_of(invoice_no,
kinesis_hash_groups)`, crc32); each group is sent with one fixed ExplicitHashKey, so an
invoice always lands on the same shard and its lines stay in order. A group's events
travel as few records as possible (aggregation: one record is one Arrow IPC stream of
EVENT_SCHEMA, under 1 MB, behind an 8-byte header with its event count). PutRecords
calls carry at most 500 records / 5 MB; failed records are resent with backoff and
jitter until all are in, and only then does `append` return (the API's 202).
The ledger (ledger.py) makes appends idempotent on event_id and gives `verify` its totals.

Reader. Each consumer group reads every shard; the group's tasks split the shards with
leases (leases.py). A batch holds records of one shard; its id is `<shard id>-<first
sequence number>`, so a batch re-read after a crash or a takeover keeps its id.
Checkpoints move only in `commit`, after the sink committed, and only while the lease
is still held.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shopstream.adapters.aws.clients import Aws, backoff, error_code
from shopstream.adapters.aws.leases import SHARD_END, Lease, LeaseCoordinator, list_all_shards, read_leases
from shopstream.adapters.aws.ledger import DynamoLedger
from shopstream.domain.columnar import EventTable, first_occurrences, from_ipc, to_ipc
from shopstream.domain.events import by_partition
from shopstream.domain.line import Totals
from shopstream.ports import AppendResult, Batch, GroupStatus

log = logging.getLogger("shopstream.kinesis")

MAGIC = b"SSA1"  # shopstream aggregated record, version 1: MAGIC, uint32 event count, Arrow IPC
MAX_RECORD_BYTES = 1_000_000 - 64  # 1 MiB per record, less the partition key and header
MAX_CALL_RECORDS = 500
MAX_CALL_BYTES = 5_000_000
MAX_PUT_ATTEMPTS = 12
GET_LIMIT = 1000  # records per GetRecords (each holds many events)


def hash_key(group: int, groups: int) -> int:
    """The middle of the group's slice of Kinesis' 128-bit hash key space."""
    return ((2 * group + 1) << 127) // groups


def encode_records(table: EventTable) -> list[bytes]:
    """One record if it fits in 1 MB, else the rows split in halves until each fits."""
    payload = to_ipc(table)
    if len(payload) + 8 <= MAX_RECORD_BYTES or table.num_rows == 1:
        return [MAGIC + struct.pack(">I", table.num_rows) + payload]
    half = table.num_rows // 2
    return encode_records(table.slice(0, half)) + encode_records(table.slice(half))


def record_count(data: bytes) -> int:
    if data[:4] != MAGIC:
        raise ValueError("not a shopstream record")
    return struct.unpack(">I", data[4:8])[0]


class KinesisStream:
    def __init__(
        self, aws: Aws, stream: str, ledger_table: str, lease_table: str, hash_groups: int = 64,
        poll_seconds: float = 1.0, lease_seconds: float = 10.0, kinesis: Any = None,
    ) -> None:
        self.aws, self.name = aws, stream
        self.kinesis = kinesis or aws.client("kinesis")  # a fake in the resharding tests
        self.ledger = DynamoLedger(aws, ledger_table)
        self.lease_table = lease_table
        self.hash_groups = hash_groups
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self._record_counts: dict[str, tuple[int, list]] = {}  # status: shard -> (from, [(sequence, events)])
        self._readers: list[KinesisReader] = []  # closed with the stream: their lease threads stop

    # -- producer -------------------------------------------------------------------------

    def append(self, table: EventTable) -> AppendResult:
        if table.num_rows == 0:
            return AppendResult(0)
        known = self.ledger.known(table["event_id"].to_pylist())
        fresh = first_occurrences(table, known)
        if fresh.num_rows:
            self._put(fresh)
            self.ledger.record(fresh)  # only after every record is in
        return AppendResult(fresh.num_rows, known)

    def holds_prefix(self, prefix: str) -> bool | None:
        return None  # the ledger's key is the event id, a partition key: no range to probe

    def accepted_among(self, event_ids: Sequence[str]) -> set[str]:
        return set(self.ledger.known(list(event_ids)))

    def record_accepted(self, table: EventTable) -> int:
        if table.num_rows == 0:
            return 0
        fresh = first_occurrences(table, self.ledger.known(table["event_id"].to_pylist()))
        self.ledger.record(fresh)
        return fresh.num_rows

    def _put(self, table: EventTable) -> None:
        entries = [
            {"Data": data, "PartitionKey": f"g{group}", "ExplicitHashKey": str(hash_key(group, self.hash_groups))}
            for group, rows in by_partition(table, self.hash_groups)
            for data in encode_records(rows)
        ]
        call: list[dict] = []
        size = 0
        for entry in entries:
            entry_size = len(entry["Data"]) + len(entry["PartitionKey"])
            if call and (len(call) == MAX_CALL_RECORDS or size + entry_size > MAX_CALL_BYTES):
                self._put_all(call)
                call, size = [], 0
            call.append(entry)
            size += entry_size
        if call:
            self._put_all(call)

    def _put_all(self, entries: list[dict]) -> None:
        pending = entries
        for attempt in range(MAX_PUT_ATTEMPTS):
            response = self.kinesis.put_records(StreamName=self.name, Records=pending)
            if not response.get("FailedRecordCount"):
                return
            failed = [(e, r["ErrorCode"]) for e, r in zip(pending, response["Records"]) if r.get("ErrorCode")]
            log.warning("PutRecords: %d of %d records failed (%s); resending them", len(failed), len(pending),
                        ", ".join(sorted({code for _, code in failed})))
            pending = [e for e, _ in failed]
            time.sleep(backoff(attempt, base=0.1))
        raise RuntimeError(f"PutRecords: {len(pending)} records still failing after {MAX_PUT_ATTEMPTS} tries")

    # -- readers and status --------------------------------------------------------------

    def reader(self, group: str) -> KinesisReader:
        reader = KinesisReader(self, group)
        self._readers.append(reader)
        return reader

    def accepted(self) -> Totals:
        return self.ledger.totals()

    def status(self, groups: Sequence[str]) -> list[GroupStatus]:
        """Each group's lag in events: records after its checkpoint, counted from their headers.

        Records already counted are remembered (sequence number and count only), so a
        caller polling status (verify waiting for the consumers) reads each record once."""
        shards = [shard["ShardId"] for shard in list_all_shards(self.kinesis, self.name)]
        checkpoints = {g: {sid: lease.checkpoint for sid, lease in read_leases(self.aws, self.lease_table, g).items()}
                       for g in groups}
        lag = {g: 0 for g in groups}
        for shard_id in shards:
            marks = [checkpoints[g].get(shard_id, "") for g in groups]
            if all(mark == SHARD_END for mark in marks):
                continue
            counts = self._counted(shard_id, [int(m) if m else -1 for m in marks if m != SHARD_END])
            for g, mark in zip(groups, marks):
                if mark != SHARD_END:
                    floor = int(mark) if mark else -1
                    lag[g] += sum(count for seq, count in counts if seq > floor)
        return [GroupStatus(g, _describe(checkpoints[g], shards), lag[g]) for g in groups]

    def _counted(self, shard_id: str, floors: list[int], max_calls: int = 1000) -> list[tuple[int, int]]:
        """(sequence number, events) of the shard's records after min(floors) (-1: all), up to the tip."""
        floor = min(floors)
        start, known = self._record_counts.get(shard_id, (floor, []))
        if start > floor:  # the cache begins later than needed: read again from the floor
            start, known = floor, []
        known = [(seq, count) for seq, count in known if seq > floor]  # checkpoints only move forward
        last = known[-1][0] if known else floor
        iterator = _iterator(self.kinesis, self.name, shard_id, str(last) if last >= 0 else None)
        for _ in range(max_calls):
            if iterator is None:
                break
            response = self.kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            known += [(int(r["SequenceNumber"]), record_count(r["Data"])) for r in response["Records"]]
            iterator = response.get("NextShardIterator")
            if not response["Records"] and not response.get("MillisBehindLatest"):
                break
        self._record_counts[shard_id] = (floor, known)
        return known

    def close(self) -> None:
        for reader in list(self._readers):
            reader.close()
        self.aws.close()


def _describe(checkpoints: dict[str, str], shards: list[str]) -> str:
    done = sum(1 for sid in shards if checkpoints.get(sid))
    return f"{done}/{len(shards)} shards checkpointed"


def _iterator(kinesis: Any, stream: str, shard_id: str, after: str | None) -> str:
    if after:
        response = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard_id,
                                              ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                              StartingSequenceNumber=after)
    else:
        response = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard_id,
                                              ShardIteratorType="TRIM_HORIZON")
    return response["ShardIterator"]


@dataclass
class _Shard:
    """What a reader knows of one leased shard."""

    shard_id: str
    token: str
    delivered: str | None  # last sequence number handed out in a batch
    committed: str | None  # last sequence number checkpointed
    iterator: str | None = None
    buffer: deque = field(default_factory=deque)  # (sequence number, event count, data)
    ended: bool = False  # the shard is closed and every record has been fetched
    next_poll: float = 0.0


class KinesisReader:
    def __init__(self, stream: KinesisStream, group: str) -> None:
        self.stream = stream
        self.group = group
        self.leases = LeaseCoordinator(stream.aws, stream.lease_table, stream.kinesis, stream.name, group,
                                       stream.lease_seconds)
        self._shards: dict[str, _Shard] = {}
        self._turn = 0
        self._started = False
        self._closed = False
        self._lock = threading.Lock()

    def read(self, max_events: int) -> Batch | None:
        with self._lock:
            if self._closed:
                return None
            if not self._started:
                self.leases.start()
                self._started = True
            self._follow_leases(self.leases.owned())
            order = sorted(self._shards)
            for i in range(len(order)):
                shard = self._shards[order[(self._turn + i) % len(order)]]
                batch = self._read_shard(shard, max_events)
                if batch is not None:
                    self._turn += i + 1
                    return batch
            return None

    def _follow_leases(self, owned: dict[str, Lease]) -> None:
        for shard_id in [sid for sid, st in self._shards.items()
                         if sid not in owned or owned[sid].token != st.token]:
            del self._shards[shard_id]  # lost (or lost and re-taken: start again from its checkpoint)
        for shard_id, lease in owned.items():
            if shard_id not in self._shards:
                mark = lease.checkpoint or None
                self._shards[shard_id] = _Shard(shard_id, lease.token, mark, mark)

    def _read_shard(self, shard: _Shard, max_events: int) -> Batch | None:
        if not shard.buffer and not shard.ended and time.monotonic() >= shard.next_poll:
            self._fetch(shard)
        if not shard.buffer:
            if shard.ended and shard.delivered == shard.committed:
                self._finish(shard)
            return None
        records, total = [], 0
        while shard.buffer and (not records or total + shard.buffer[0][1] <= max_events):
            record = shard.buffer.popleft()
            records.append(record)
            total += record[1]
        shard.delivered = records[-1][0]
        return Batch(
            batch_id=f"{shard.shard_id}-{records[0][0]}",
            table=from_ipc([data[8:] for _, _, data in records]),
            position=(shard.shard_id, shard.token, records[-1][0]),
        )

    def _fetch(self, shard: _Shard) -> None:
        kinesis = self.stream.kinesis
        if shard.iterator is None:
            shard.iterator = _iterator(kinesis, self.stream.name, shard.shard_id, shard.delivered)
        try:
            response = kinesis.get_records(ShardIterator=shard.iterator, Limit=GET_LIMIT)
        except Exception as error:
            if error_code(error) == "ExpiredIteratorException":
                shard.iterator = None  # iterators live 5 minutes; get a new one next time
                return
            raise
        for record in response["Records"]:
            data = record["Data"]
            shard.buffer.append((record["SequenceNumber"], record_count(data), data))
        shard.iterator = response.get("NextShardIterator")
        if shard.iterator is None:
            shard.ended = True  # closed by a split or merge, and read to its end
        elif not response["Records"] and not response.get("MillisBehindLatest"):
            shard.next_poll = time.monotonic() + self.stream.poll_seconds

    def _finish(self, shard: _Shard) -> None:
        """Checkpoint SHARD_END so the shard's children become eligible."""
        if self.leases.checkpoint(shard.shard_id, shard.token, SHARD_END):
            log.info("%s: %s ended; its children are next", self.group, shard.shard_id)
        del self._shards[shard.shard_id]
        self.leases.wake()

    def commit(self, batch: Batch) -> None:
        shard_id, token, sequence = batch.position
        with self._lock:
            if self.leases.checkpoint(shard_id, token, sequence):
                shard = self._shards.get(shard_id)
                if shard is not None and shard.token == token:
                    shard.committed = sequence
            else:
                log.warning("%s: lost the lease on %s before committing batch %s; its new owner "
                            "delivers it again", self.group, shard_id, batch.batch_id)
                self._shards.pop(shard_id, None)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._started:
                self.leases.close()
