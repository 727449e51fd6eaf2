"""Stream records (domain/columnar.py): Arrow IPC, compressed whole; older records still read."""

from __future__ import annotations

import pyarrow as pa

from shopstream.domain.columnar import events_to_table, from_ipc, to_ipc
from tests.contract.conftest import make_events


def table_of(n: int) -> pa.Table:
    events = make_events()
    return events_to_table([events[i % len(events)] for i in range(n)])


def test_records_read_back_exactly_small_or_compressed():
    small, large = table_of(5), table_of(1000)
    assert to_ipc(small)[:4] == b"\xff\xff\xff\xff"  # plain IPC: too small to compress
    assert to_ipc(large)[:4] == b"SSZ1"
    assert len(to_ipc(large)) < int.from_bytes(to_ipc(large)[4:12], "little") / 3  # vs the plain IPC size
    assert from_ipc([to_ipc(small), to_ipc(large)]).equals(pa.concat_tables([small, large]))


def test_records_written_before_whole_compression_still_read():
    table = table_of(1000)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    assert from_ipc([sink.getvalue().to_pybytes()]).equals(table)
