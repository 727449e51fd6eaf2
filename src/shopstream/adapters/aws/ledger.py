"""The accepted-events ledger on the aws profile: one DynamoDB item per accepted event id.

    <table>-ledger:  event_id (key), amount_milli

The producer looks ids up before PutRecords (an id already there is a duplicate, not
appended again) and writes the items after PutRecords succeeded, so an item exists
only for an event that is in the stream. A crash in between leaves records without
items: the client gets no 202, retries, and the retry appends again (the sinks are
idempotent on event_id) and then writes the items. Two racing requests with the same
new id both append it and both write the same item: it is still counted once.
`totals()` is a strongly consistent scan of the ledger (only `verify` calls it): ~30 MB,
~30 pages, for the 541,909-line reference set. (A parallel scan would be faster on AWS
but costs moto a whole-table walk per segment.)
"""

from __future__ import annotations

from collections.abc import Iterable

from shopstream.adapters.aws.clients import Aws, batch_get, batch_write, n, paginate, s
from shopstream.domain.columnar import EventTable, line_totals_milli
from shopstream.domain.line import Totals


class DynamoLedger:
    def __init__(self, aws: Aws, table: str) -> None:
        self.aws, self.table = aws, table

    def known(self, event_ids: Iterable[str]) -> set[str]:
        keys = [{"event_id": s(i)} for i in dict.fromkeys(event_ids)]
        return {item["event_id"]["S"] for item in batch_get(self.aws, self.table, keys, "event_id")}

    def record(self, table: EventTable) -> None:
        """Items for every row (callers pass each event id once)."""
        amounts = line_totals_milli(table).to_pylist()
        batch_write(self.aws, self.table, [
            {"PutRequest": {"Item": {"event_id": s(event_id), "amount_milli": n(amount)}}}
            for event_id, amount in zip(table["event_id"].to_pylist(), amounts)
        ])

    def totals(self) -> Totals:
        items = paginate(self.aws.client("dynamodb").scan, TableName=self.table, ConsistentRead=True,
                         ProjectionExpression="amount_milli")
        amounts = [int(item["amount_milli"]["N"]) for item in items]
        return Totals(len(amounts), sum(amounts))
