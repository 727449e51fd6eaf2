"""Shard leases, checkpoints and worker heartbeats in DynamoDB: a small KCL.

Every consumer group reads every shard; the tasks of one group split the shards
between them. Items of the lease table (docs/aws.md):

    PK = LEASE#<group>   SK = <shard id>    owner, token, expires_at, checkpoint
    PK = WORKER#<group>  SK = <worker id>   expires_at   (the heartbeat)

- A worker's fair share is ceil(eligible shards / live workers), itself included.
- It takes a lease only if the lease is free or expired, or (one per round) from a
  worker holding more than its fair share. Every take is a conditional update on the
  state it observed, so two workers never both win.
- Taking a lease draws a new random token. Renewals and checkpoints are conditional on
  owner + token and never change the token, so they cannot race each other (the bug
  measured in native-aws-kcl-py), and a worker that lost a lease can neither renew
  nor checkpoint it: it drops the shard and stops reading it.
- A shard is eligible once its parents (after a split or merge) are checkpointed at
  SHARD_END, so an invoice's lines are read in order across resharding.
- Expiry compares wall clocks (tasks run NTP-synchronised); a lease lives
  `lease_seconds`, renewed every third of that.
"""

from __future__ import annotations

import logging
import math
import os
import random
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from shopstream.adapters.aws.clients import Aws, error_code, n, paginate, s

log = logging.getLogger("shopstream.leases")

SHARD_END = "SHARD_END"
_NAMES = {"#o": "owner", "#t": "token", "#e": "expires_at", "#c": "checkpoint"}


@dataclass
class Lease:
    shard_id: str
    owner: str  # "" when free
    token: str
    expires_at: float
    checkpoint: str  # "" = not started, SHARD_END, or the last committed sequence number

    @classmethod
    def from_item(cls, item: dict) -> Lease:
        return cls(item["SK"]["S"], item.get("owner", {}).get("S", ""), item.get("token", {}).get("S", ""),
                   float(item.get("expires_at", {}).get("N", "0")), item.get("checkpoint", {}).get("S", ""))


def list_all_shards(kinesis: Any, stream: str) -> list[dict]:
    """ListShards, paged the way AWS requires (a NextToken goes alone, without StreamName)."""
    shards: list[dict] = []
    request: dict[str, Any] = {"StreamName": stream}
    while True:
        response = kinesis.list_shards(**request)
        shards += response["Shards"]
        token = response.get("NextToken")
        if not token:
            return shards
        request = {"NextToken": token}


def read_leases(aws: Aws, table: str, group: str) -> dict[str, Lease]:
    items = paginate(aws.client("dynamodb").query, TableName=table, ConsistentRead=True,
                     KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": s(f"LEASE#{group}")})
    return {lease.shard_id: lease for lease in map(Lease.from_item, items)}


class LeaseCoordinator:
    def __init__(
        self, aws: Aws, table: str, kinesis: Any, stream: str, group: str, lease_seconds: float = 10.0,
        worker_id: str | None = None,
    ) -> None:
        self.aws, self.table, self.kinesis, self.stream, self.group = aws, table, kinesis, stream, group
        self.lease_seconds = lease_seconds
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._owned: dict[str, Lease] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def _ddb(self):
        return self.aws.client("dynamodb")

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """One round now (so the first read has shards), then a round every lease/3 seconds."""
        self.tick()
        self._thread = threading.Thread(target=self._run, name=f"leases-{self.group}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.lease_seconds / 3)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.tick()
            except Exception as error:  # the next round retries; expired leases drop below
                log.warning("%s: lease round failed (%s: %s)", self.group, type(error).__name__, error)
                self._drop_expired()

    def wake(self) -> None:
        """Run a round soon (a shard ended: its children may be eligible now)."""
        self._wake.set()

    def close(self) -> None:
        """Stop, and hand every lease back so other workers take over at once."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for lease in list(self.owned().values()):
            self._update(lease.shard_id, "SET #o = :empty, #t = :empty, #e = :zero",
                         {":empty": s(""), ":zero": n(0)}, owner=self.worker_id, token=lease.token)
        with self._lock:
            self._owned.clear()
        try:
            self._ddb.delete_item(TableName=self.table, Key=self._worker_key())
        except Exception as error:
            log.warning("%s: could not remove the heartbeat (%s)", self.group, error)

    # -- what the reader uses -----------------------------------------------------------

    def owned(self) -> dict[str, Lease]:
        with self._lock:
            return dict(self._owned)

    def checkpoint(self, shard_id: str, token: str, checkpoint: str) -> bool:
        """Move the checkpoint if this worker still holds the lease; False if it lost it."""
        ok = self._update(shard_id, "SET #c = :c", {":c": s(checkpoint)}, owner=self.worker_id, token=token)
        with self._lock:
            lease = self._owned.get(shard_id)
            if lease is not None and lease.token == token:
                if ok and checkpoint != SHARD_END:
                    lease.checkpoint = checkpoint
                else:  # lost, or finished: nothing more to read there
                    del self._owned[shard_id]
        return ok

    # -- one round ------------------------------------------------------------------------

    def tick(self) -> None:
        now = time.time()
        self._heartbeat(now)
        self._renew(now)
        self._balance(now)

    def _worker_key(self) -> dict:
        return {"PK": s(f"WORKER#{self.group}"), "SK": s(self.worker_id)}

    def _heartbeat(self, now: float) -> None:
        self._ddb.put_item(TableName=self.table,
                           Item=self._worker_key() | {"expires_at": n(math.ceil(now + self.lease_seconds))})

    def _live_workers(self, now: float) -> int:
        items = paginate(self._ddb.query, TableName=self.table, ConsistentRead=True,
                         KeyConditionExpression="PK = :pk",
                         ExpressionAttributeValues={":pk": s(f"WORKER#{self.group}")})
        live = {i["SK"]["S"] for i in items if float(i["expires_at"]["N"]) > now}
        return len(live | {self.worker_id})

    def _renew(self, now: float) -> None:
        expires = now + self.lease_seconds
        for lease in list(self.owned().values()):
            if self._update(lease.shard_id, "SET #e = :e", {":e": n(math.ceil(expires))},
                            owner=self.worker_id, token=lease.token):
                lease.expires_at = math.ceil(expires)
            else:
                log.info("%s: lost the lease on %s", self.group, lease.shard_id)
                with self._lock:
                    self._owned.pop(lease.shard_id, None)

    def _drop_expired(self) -> None:
        """Without DynamoDB a worker cannot renew: past expiry others may own its shards."""
        now = time.time()
        with self._lock:
            for shard_id in [k for k, v in self._owned.items() if v.expires_at < now]:
                del self._owned[shard_id]

    def _balance(self, now: float) -> None:
        shards = list_all_shards(self.kinesis, self.stream)
        leases = read_leases(self.aws, self.table, self.group)
        for shard in shards:
            if shard["ShardId"] not in leases:
                leases[shard["ShardId"]] = self._create(shard["ShardId"])
        listed = {shard["ShardId"] for shard in shards}
        finished = {sid for sid, lease in leases.items() if lease.checkpoint == SHARD_END}
        eligible = [
            shard["ShardId"] for shard in shards
            if shard["ShardId"] not in finished
            and all(p not in listed or p in finished
                    for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p)
        ]
        with self._lock:
            for shard_id in [sid for sid in self._owned if sid not in eligible]:
                del self._owned[shard_id]  # ended: nothing more to read there
            mine = set(self._owned)
        fair = math.ceil(len(eligible) / self._live_workers(now)) if eligible else 0
        want = fair - len(mine)
        if want <= 0:
            return
        free = [sid for sid in eligible if sid not in mine
                and (not leases[sid].owner or leases[sid].expires_at < now)]
        random.shuffle(free)  # workers starting together contend less
        for shard_id in free:
            if want and self._take(leases[shard_id], now, steal=False):
                want -= 1
        if want:
            held = Counter(leases[sid].owner for sid in eligible
                           if sid not in mine and leases[sid].owner and leases[sid].expires_at >= now)
            if held:
                victim, count = held.most_common(1)[0]
                if count > fair:  # one per round, as KCL does, so shares settle without thrashing
                    shard_id = random.choice([sid for sid in eligible if leases[sid].owner == victim])
                    self._take(leases[shard_id], now, steal=True)

    def _create(self, shard_id: str) -> Lease:
        lease = Lease(shard_id, "", "", 0.0, "")
        try:
            self._ddb.put_item(
                TableName=self.table,
                Item={"PK": s(f"LEASE#{self.group}"), "SK": s(shard_id), "owner": s(""), "token": s(""),
                      "expires_at": n(0), "checkpoint": s("")},
                ConditionExpression="attribute_not_exists(PK)",
            )
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return read_leases(self.aws, self.table, self.group)[shard_id]
        return lease

    def _take(self, seen: Lease, now: float, steal: bool) -> bool:
        token = secrets.token_hex(8)
        expires = math.ceil(now + self.lease_seconds)
        # Conditional on exactly what was observed; a free/expired take also on its expiry,
        # so an owner that renewed in between keeps its lease.
        condition = "#o = :seen_owner AND #t = :seen_token" + ("" if steal else " AND #e = :seen_expires")
        values = {":me": s(self.worker_id), ":token": s(token), ":e": n(expires),
                  ":seen_owner": s(seen.owner), ":seen_token": s(seen.token)}
        if not steal:
            values[":seen_expires"] = n(int(seen.expires_at))
        try:
            response = self._ddb.update_item(
                TableName=self.table, Key={"PK": s(f"LEASE#{self.group}"), "SK": s(seen.shard_id)},
                UpdateExpression="SET #o = :me, #t = :token, #e = :e", ConditionExpression=condition,
                ExpressionAttributeNames={"#o": "owner", "#t": "token", "#e": "expires_at"},
                ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
            )
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        lease = Lease.from_item(response["Attributes"])
        log.info("%s: %s %s (checkpoint %s)", self.group, "took over" if steal or seen.owner else "took",
                 seen.shard_id, lease.checkpoint or "none")
        with self._lock:
            self._owned[seen.shard_id] = lease
        return True

    def _update(self, shard_id: str, expression: str, values: dict, owner: str, token: str) -> bool:
        names = {k: v for k, v in _NAMES.items() if k in expression or k in ("#o", "#t")}
        try:
            self._ddb.update_item(
                TableName=self.table, Key={"PK": s(f"LEASE#{self.group}"), "SK": s(shard_id)},
                UpdateExpression=expression, ConditionExpression="#o = :owner AND #t = :owner_token",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values | {":owner": s(owner), ":owner_token": s(token)},
            )
            return True
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
