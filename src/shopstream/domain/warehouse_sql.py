"""Warehouse SQL shared by every warehouse adapter (DuckDB, PostgreSQL, Redshift).

Plain portable SQL: no engine-only functions; date_trunc units are literals.
"""

from __future__ import annotations

FACT_TABLE = "fact_sales_line"

# One row per accepted line. Flags are derived once at load time (METRICS.md terms).
FACT_DDL = f"""
CREATE TABLE IF NOT EXISTS {FACT_TABLE} (
    event_id VARCHAR(128) NOT NULL,
    invoice_no VARCHAR(16) NOT NULL,
    stock_code VARCHAR(32) NOT NULL,
    description VARCHAR(200),
    quantity INTEGER NOT NULL,
    invoice_date TIMESTAMP NOT NULL,
    unit_price DECIMAL(18,3) NOT NULL,
    line_total DECIMAL(18,3) NOT NULL,
    customer_id VARCHAR(32),
    country VARCHAR(64) NOT NULL,
    is_cancellation BOOLEAN NOT NULL,
    is_adjustment BOOLEAN NOT NULL,
    is_service BOOLEAN NOT NULL,
    is_sale BOOLEAN NOT NULL,
    received_at TIMESTAMP NOT NULL,
    source VARCHAR(200) NOT NULL
)
"""

FACT_COLUMNS = (
    "event_id",
    "invoice_no",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "unit_price",
    "line_total",
    "customer_id",
    "country",
    "is_cancellation",
    "is_adjustment",
    "is_service",
    "is_sale",
    "received_at",
    "source",
)

TOTALS_SQL = f"SELECT count(*), coalesce(sum(line_total), 0) FROM {FACT_TABLE}"
