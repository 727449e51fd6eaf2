"""Load a transaction CSV straight into a warehouse, fast, for analytics tests and benchmarks.

Not the product's bulk loader (that validates every line and feeds every sink): this
maps the reference file's clean columns to an EVENT_SCHEMA table with DuckDB and calls
`Warehouse.write`, which is all the analytics tests need. Event ids are the ones
`shopstream send` derives (`f<sha256[:16]>-<row>`), so the same file loaded twice is
stored once.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from shopstream.domain.columnar import EVENT_SCHEMA
from shopstream.files import content_hash

_SELECT = """
SELECT
    'f{hash}-' || CAST(row AS VARCHAR)                    AS event_id,
    TIMESTAMP '2026-01-01 00:00:00'                                AS received_at,
    'test-load'                                                    AS source,
    upper(trim(InvoiceNo))                                         AS invoice_no,
    trim(StockCode)                                                AS stock_code,
    nullif(Description, '')                                        AS description,
    CAST(Quantity AS BIGINT)                                       AS quantity,
    CAST(InvoiceDate AS TIMESTAMP)                                 AS invoice_date,
    CAST(CAST(UnitPrice AS DECIMAL(18,3)) * 1000 AS BIGINT)        AS unit_price_milli,
    nullif(regexp_replace(trim(CustomerID), '\\.0$', ''), '')      AS customer_id,
    trim(Country)                                                  AS country,
    '{}'                                                           AS raw
FROM rows
"""


def csv_event_table(path: Path) -> pa.Table:
    """Every row of a reference-format CSV (plain or .gz) as an EVENT_SCHEMA table."""
    conn = duckdb.connect()
    try:
        conn.execute(
            f"""CREATE TABLE rows AS
                SELECT row_number() OVER () AS row, *
                FROM read_csv('{str(path).replace("'", "''")}', header = true, all_varchar = true,
                              parallel = false)"""
        )
        table = conn.sql(_SELECT.replace("{hash}", content_hash(path)[:16])).to_arrow_table()
    finally:
        conn.close()
    return table.cast(EVENT_SCHEMA)


def load_csv(warehouse, path: Path, batch_rows: int = 250_000) -> int:
    """Write the file's rows to `warehouse` (any Warehouse adapter) and publish; returns new lines."""
    table = csv_event_table(path)
    new = sum(warehouse.write(batch) for batch in _slices(table, batch_rows))
    warehouse.publish()
    return new


def _slices(table: pa.Table, size: int):
    for start in range(0, table.num_rows, size):
        yield table.slice(start, size)
