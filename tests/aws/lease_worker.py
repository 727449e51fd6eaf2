"""A consumer task for the lease tests: the real consumer loop, its sink a JSON-lines file.

    python -m tests.aws.lease_worker OUT   (settings from the environment, as a service's)

Each batch becomes one line {"batch": id, "shard": shard, "events": [...]}, flushed
before the loop commits, so the file shows what the task processed.
"""

from __future__ import annotations

import os
import sys

import orjson

from shopstream.bootstrap import Container
from shopstream.consumer import ConsumerSpec, run_consumer
from shopstream.entrypoints.services import configure_logging

GROUP = "lease-probe"


def main(out: str) -> None:
    configure_logging()
    sink = open(out, "ab")

    def write(batch) -> int:
        ids = batch.table["event_id"].to_pylist()
        sink.write(orjson.dumps({"batch": batch.batch_id, "shard": batch.position[0], "events": ids}) + b"\n")
        sink.flush()
        os.fsync(sink.fileno())
        return len(ids)

    run_consumer(ConsumerSpec(GROUP, lambda container: write), Container())


if __name__ == "__main__":
    main(sys.argv[1])
