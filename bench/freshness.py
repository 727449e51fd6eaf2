"""POST → visible: how long until a line sent to ingest-api can be read back.

    python bench/freshness.py [--lines 200] [--rate 20]

Starts the local stack, then sends single lines (unique invoice numbers) at a steady
rate; for each, polls GET /invoices/{no} on invoice-api (every 10 ms) and the
warehouse snapshot (every 50 ms, the way analytics reads it) until the line is
there. Targets (issue 6): p95 <= 1 s to the invoice API, <= 3 s to the warehouse.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import percentiles  # noqa: E402
from _stack import local_stack  # noqa: E402

from shopstream.adapters.local.warehouse import DuckDBSnapshotReader  # noqa: E402


async def follow(client: httpx.AsyncClient, urls: dict, reader: DuckDBSnapshotReader, n: int,
                 invoice_times: list, warehouse_times: list) -> None:
    invoice_no = str(700000 + n)
    line = {"InvoiceNo": invoice_no, "StockCode": "85123A", "Description": "FRESH", "Quantity": 1,
            "InvoiceDate": "2011-12-09 12:00:00", "UnitPrice": 1.25, "CustomerID": 99999, "Country": "United Kingdom",
            "event_id": f"fresh-{n}"}
    sent = time.perf_counter()
    response = await client.post(urls["ingest"] + "/transactions", content=orjson.dumps(line))
    assert response.status_code == 202, response.text
    seen_invoice = seen_warehouse = None
    while seen_invoice is None or seen_warehouse is None:
        if seen_invoice is None:
            if (await client.get(f"{urls['invoice']}/invoices/{invoice_no}")).status_code == 200:
                seen_invoice = time.perf_counter() - sent
        if seen_warehouse is None:
            cursor = reader.connection()
            if cursor is not None:
                found = cursor.execute("SELECT count(*) FROM fact_sales_line WHERE event_id = ?",
                                       [f"fresh-{n}"]).fetchone()[0]
                if found:
                    seen_warehouse = time.perf_counter() - sent
        await asyncio.sleep(0.01)
    invoice_times.append(seen_invoice)
    warehouse_times.append(seen_warehouse)


async def run(urls: dict, data_dir: Path, lines: int, rate: float, key: str) -> tuple[list, list]:
    reader = DuckDBSnapshotReader(data_dir / "warehouse.duckdb")
    invoice_times, warehouse_times = [], []
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        tasks = []
        for n in range(lines):
            tasks.append(asyncio.create_task(follow(client, urls, reader, n, invoice_times, warehouse_times)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    return invoice_times, warehouse_times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, local_stack(Path(tmp)) as (urls, env, _):
        invoice_times, warehouse_times = asyncio.run(run(urls, Path(tmp), args.lines, args.rate,
                                                         env["SHOPSTREAM_API_KEY"]))
    print(f"| POST → visible ({args.lines} lines at {args.rate:.0f}/s) | p50 | p95 | p99 |")
    print("| --- | ---: | ---: | ---: |")
    for label, samples in (("invoice API", invoice_times), ("warehouse (analytics snapshot)", warehouse_times)):
        p = percentiles(samples)
        print(f"| {label} | {p['p50']:.2f} s | {p['p95']:.2f} s | {p['p99']:.2f} s |")


if __name__ == "__main__":
    main()
