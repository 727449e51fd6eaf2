"""The business metrics of METRICS.md as portable SQL (DuckDB, PostgreSQL, Redshift). No I/O.

Two layers:

- **Marts**: small tables derived from `fact_sales_line` and kept up to date by the
  warehouse's writer (`MART_DDL` once, then `MART_REFRESH` in one transaction before it
  publishes). They make every endpoint fast: sales per exact invoice timestamp (23,260
  rows for 541,909 lines), invoices (25,900), product names, the top product of every
  bucket at every grain, RFM scores over all the data.
- **Queries**: one SELECT per metric over the marts (the fact table only for products in
  an arbitrary period), with `:name` parameters. Money comes back as integer thousandths
  (CAST(SUM(x) * 1000 AS BIGINT): exact, and far cheaper to fetch than DECIMAL).
  `from`/`to` filter on invoice_date (inclusive from, exclusive to): line metrics use each
  line's own date, invoice metrics the invoice date (the min over its lines, METRICS.md).

Portability rules kept here: no engine-only functions; date_trunc units are literals
(chosen from `GRAINS`, never from input); CAST rather than `::`; ratios and averages are
computed in Python from exact counts and sums (engines differ in integer division and
decimal scale). Ties are broken by codes and ids compared
byte-wise: DuckDB always does; PostgreSQL needs a database created with
LC_COLLATE 'C' (Redshift compares byte-wise).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from shopstream.domain.rfm import segment_sql
from shopstream.domain.warehouse_sql import FACT_TABLE

GRAINS = ("hour", "day", "week", "month", "year")
PROFILES = ("hour", "weekday")

# Bounds used when a request gives no from/to (every engine takes these timestamps).
EARLIEST = datetime(1900, 1, 1)
LATEST = datetime(9999, 1, 1)

# -- marts ---------------------------------------------------------------------------

# Bump when a mart's shape or meaning changes: writers drop and rebuild marts of another version.
MARTS_VERSION = 3

MART_DDL = (
    # net revenue and its parts per exact invoice timestamp: every time grain rolls up from here
    """CREATE TABLE IF NOT EXISTS mart_sales_by_time (
        invoice_date TIMESTAMP NOT NULL,
        net_revenue DECIMAL(18,3) NOT NULL,
        gross_sales DECIMAL(18,3) NOT NULL,
        returns DECIMAL(18,3) NOT NULL,
        lines BIGINT NOT NULL
    )""",
    # one row per invoice, or per part of one should an invoice ever mix customers or
    # countries: then exactly one part is primary and carries the whole invoice's totals
    """CREATE TABLE IF NOT EXISTS mart_invoice (
        invoice_no VARCHAR(16) NOT NULL,
        customer_id VARCHAR(32),
        country VARCHAR(64) NOT NULL,
        invoice_date TIMESTAMP NOT NULL,
        total DECIMAL(18,3) NOT NULL,
        gross_sales DECIMAL(18,3) NOT NULL,
        lines BIGINT NOT NULL,
        is_cancellation BOOLEAN NOT NULL,
        is_adjustment BOOLEAN NOT NULL,
        is_primary BOOLEAN NOT NULL,
        invoice_total DECIMAL(18,3) NOT NULL,
        invoice_lines BIGINT NOT NULL,
        is_customer_primary BOOLEAN NOT NULL
    )""",
    # the description most often used for each stock code (ties: smallest)
    """CREATE TABLE IF NOT EXISTS mart_product_name (
        stock_code VARCHAR(32) NOT NULL,
        description VARCHAR(200) NOT NULL
    )""",
    # every product ranked by units sold over all the data
    """CREATE TABLE IF NOT EXISTS mart_top_products (
        position INTEGER NOT NULL,
        stock_code VARCHAR(32) NOT NULL,
        quantity BIGINT NOT NULL
    )""",
    # the most sold product of every bucket at every grain, over all the data
    """CREATE TABLE IF NOT EXISTS mart_top_product_per_bucket (
        grain VARCHAR(8) NOT NULL,
        bucket TIMESTAMP NOT NULL,
        stock_code VARCHAR(32) NOT NULL,
        quantity BIGINT NOT NULL
    )""",
    # RFM scores over all the data, as of its latest invoice date
    """CREATE TABLE IF NOT EXISTS mart_rfm (
        customer_id VARCHAR(32) NOT NULL,
        recency INTEGER NOT NULL,
        frequency BIGINT NOT NULL,
        monetary BIGINT NOT NULL,
        r INTEGER NOT NULL,
        f INTEGER NOT NULL,
        m INTEGER NOT NULL,
        segment VARCHAR(32) NOT NULL
    )""",
    # what the marts were built from: the fact table only grows, so its line count
    # identifies the data (the dashboard reloads when it changes)
    """CREATE TABLE IF NOT EXISTS mart_meta (
        marts_version INTEGER NOT NULL,
        lines BIGINT NOT NULL,
        first_invoice_date TIMESTAMP,
        last_invoice_date TIMESTAMP
    )""",
)

MART_TABLES = ("mart_sales_by_time", "mart_invoice", "mart_product_name", "mart_top_products",
               "mart_top_product_per_bucket", "mart_rfm", "mart_meta")

_SALE_PRODUCT = "is_sale AND NOT is_service"


def _grain(grain: str) -> str:
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}; one of {', '.join(GRAINS)}")
    return grain


def _top_product_per_bucket(grain: str, where: str = "", dialect: str = "ansi") -> str:
    """SELECT bucket, stock_code, quantity: the top-1 product of each bucket at `grain`
    (most units; ties: the smallest code). `dialect="duckdb"`: the same rows by DuckDB's
    arg_min, one aggregate instead of a window over every (bucket, product): ~2.5x faster,
    which a bulk load's final refresh waits for (tests/analytics compare it with PostgreSQL's)."""
    unit = _grain(grain)
    if dialect == "duckdb":
        return f"""
SELECT bucket, arg_min(stock_code, (-quantity, stock_code)) AS stock_code, MAX(quantity) AS quantity FROM (
    SELECT date_trunc('{unit}', invoice_date) AS bucket, stock_code, SUM(quantity) AS quantity
    FROM {FACT_TABLE}
    WHERE {_SALE_PRODUCT}{where}
    GROUP BY date_trunc('{unit}', invoice_date), stock_code
) per_product
GROUP BY bucket"""
    return f"""
SELECT bucket, stock_code, quantity FROM (
    SELECT bucket, stock_code, quantity,
           ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY quantity DESC, stock_code) AS position
    FROM (
        SELECT date_trunc('{unit}', invoice_date) AS bucket, stock_code, SUM(quantity) AS quantity
        FROM {FACT_TABLE}
        WHERE {_SALE_PRODUCT}{where}
        GROUP BY date_trunc('{unit}', invoice_date), stock_code
    ) per_product
) ranked
WHERE position = 1"""


# -- queries -------------------------------------------------------------------------

_IN_RANGE = "invoice_date >= :from_date AND invoice_date < :to_date"

MARTS_STATE = f"""
SELECT (SELECT MAX(marts_version) FROM mart_meta), (SELECT MAX(lines) FROM mart_meta),
       (SELECT COUNT(*) FROM {FACT_TABLE})"""
"""For writers: the marts' version, the lines they were built from, the lines there are."""


def sales_per_period(grain: str) -> str:
    """bucket, net_revenue, lines for the buckets with at least one line."""
    unit = _grain(grain)
    return f"""
SELECT date_trunc('{unit}', invoice_date) AS bucket,
       CAST(SUM(net_revenue) * 1000 AS BIGINT),
       CAST(SUM(lines) AS BIGINT)
FROM mart_sales_by_time
WHERE {_IN_RANGE}
GROUP BY date_trunc('{unit}', invoice_date)
ORDER BY bucket"""


def sales_profile(by: str) -> str:
    """hour 0-23 or ISO weekday 1 (Monday) - 7, net revenue, lines."""
    if by == "hour":
        key = "CAST(EXTRACT(HOUR FROM invoice_date) AS INTEGER)"
    elif by == "weekday":  # EXTRACT(DOW) is 0 on Sunday everywhere; ISODOW is not in Redshift
        key = "CAST(EXTRACT(DOW FROM invoice_date) AS INTEGER)"
    else:
        raise ValueError(f"unknown profile {by!r}; one of {', '.join(PROFILES)}")
    return f"""
SELECT {key} AS slot, CAST(SUM(net_revenue) * 1000 AS BIGINT), CAST(SUM(lines) AS BIGINT)
FROM mart_sales_by_time
WHERE {_IN_RANGE}
GROUP BY {key}
ORDER BY slot"""


SUMMARY = f"""
SELECT lines.net_revenue, lines.gross_sales, lines.returns, lines.lines, lines.first_date, lines.last_date,
       invoices.orders, invoices.cancellations, invoices.customers,
       (SELECT MAX(lines) FROM mart_meta)
FROM (
    SELECT CAST(COALESCE(SUM(net_revenue), 0) * 1000 AS BIGINT) AS net_revenue,
           CAST(COALESCE(SUM(gross_sales), 0) * 1000 AS BIGINT) AS gross_sales,
           CAST(COALESCE(SUM(returns), 0) * 1000 AS BIGINT) AS returns,
           CAST(COALESCE(SUM(lines), 0) AS BIGINT) AS lines,
           MIN(invoice_date) AS first_date, MAX(invoice_date) AS last_date
    FROM mart_sales_by_time
    WHERE {_IN_RANGE}
) lines
CROSS JOIN (
    SELECT COALESCE(SUM(CASE WHEN is_primary AND NOT is_cancellation THEN 1 ELSE 0 END), 0) AS orders,
           COALESCE(SUM(CASE WHEN is_primary AND is_cancellation THEN 1 ELSE 0 END), 0) AS cancellations,
           COUNT(DISTINCT customer_id) AS customers
    FROM mart_invoice
    WHERE {_IN_RANGE}
) invoices"""
"""Lines in range: net revenue, gross sales, returns, lines, first and last date. Invoices
in range: orders (non-cancellation invoices), cancellation invoices, customers. Then the
data version."""

TOP_INVOICES = f"""
SELECT invoice_no, invoice_date, customer_id, country, CAST(invoice_total * 1000 AS BIGINT), invoice_lines
FROM mart_invoice
WHERE {_IN_RANGE} AND is_primary AND NOT is_cancellation AND NOT is_adjustment
ORDER BY invoice_total DESC, invoice_no
LIMIT :limit"""

COUNTRIES = f"""
SELECT country, CAST(SUM(total) * 1000 AS BIGINT), COUNT(DISTINCT invoice_no), COUNT(DISTINCT customer_id)
FROM mart_invoice
WHERE {_IN_RANGE}
GROUP BY country
ORDER BY SUM(total) DESC, country"""


def cancellations(grain: str) -> str:
    """bucket, distinct invoices, distinct cancellation invoices (bucketed by invoice date)."""
    unit = _grain(grain)
    return f"""
SELECT date_trunc('{unit}', invoice_date) AS bucket,
       SUM(CASE WHEN is_primary THEN 1 ELSE 0 END),
       SUM(CASE WHEN is_primary AND is_cancellation THEN 1 ELSE 0 END)
FROM mart_invoice
WHERE {_IN_RANGE}
GROUP BY date_trunc('{unit}', invoice_date)
ORDER BY bucket"""


def top_products(precomputed: bool) -> str:
    """stock_code, description, quantity of the `:limit` most sold products.

    `precomputed`: the ranking over all the data (the mart); otherwise over the period."""
    if precomputed:
        top = "(SELECT stock_code, quantity FROM mart_top_products WHERE position <= :limit) top"
    else:
        top = f"""(
    SELECT stock_code, SUM(quantity) AS quantity
    FROM {FACT_TABLE}
    WHERE {_SALE_PRODUCT} AND {_IN_RANGE}
    GROUP BY stock_code
    ORDER BY SUM(quantity) DESC, stock_code
    LIMIT :limit
) top"""
    return f"""
SELECT top.stock_code, COALESCE(names.description, ''), top.quantity
FROM {top}
LEFT JOIN mart_product_name names ON names.stock_code = top.stock_code
ORDER BY top.quantity DESC, top.stock_code"""


def top_product_per_bucket(grain: str, precomputed: bool) -> str:
    """bucket, stock_code, description, quantity.

    `precomputed`: read the mart, filtering whole buckets (only right when from/to fall
    on bucket boundaries, see `is_bucket_start`); otherwise compute from the lines."""
    unit = _grain(grain)
    if precomputed:
        source = f"""(SELECT bucket, stock_code, quantity FROM mart_top_product_per_bucket
                      WHERE grain = '{unit}' AND bucket >= :from_date AND bucket < :to_date)"""
    else:
        source = f"({_top_product_per_bucket(unit, ' AND ' + _IN_RANGE)})"
    return f"""
SELECT top.bucket, top.stock_code, COALESCE(names.description, ''), top.quantity
FROM {source} top
LEFT JOIN mart_product_name names ON names.stock_code = top.stock_code
ORDER BY top.bucket"""


def _customer_figures(where: str = _IN_RANGE) -> str:
    return f"""
SELECT customer_id,
       MIN(invoice_date) AS first_date,
       MAX(invoice_date) AS last_date,
       SUM(CASE WHEN is_customer_primary AND NOT is_cancellation THEN 1 ELSE 0 END) AS orders,
       CAST(SUM(total) * 1000 AS BIGINT) AS net_spend,
       CAST(SUM(CASE WHEN is_cancellation THEN total ELSE 0 END) * 1000 AS BIGINT) AS returns,
       CAST(SUM(gross_sales) * 1000 AS BIGINT) AS gross_sales
FROM mart_invoice
WHERE {where} AND customer_id IS NOT NULL
GROUP BY customer_id"""


TOP_CUSTOMERS = f"""
SELECT customer_id, first_date, last_date, orders, net_spend, returns, gross_sales, COUNT(*) OVER ()
FROM ({_customer_figures()}) figures
ORDER BY net_spend DESC, customer_id
LIMIT :limit"""
"""The customer summary of the `:limit` biggest net spenders, and how many customers there are."""


def _rfm_scores(as_of: str = "CAST(:as_of AS TIMESTAMP)", where: str = _IN_RANGE) -> str:
    """customer_id, recency (whole days to `as_of`), frequency, monetary, r, f, m, segment."""
    return f"""
SELECT customer_id, recency, orders AS frequency, net_spend AS monetary, r, f, m,
       {segment_sql("r", "f")} AS segment
FROM (
    SELECT customer_id, recency, orders, net_spend,
           NTILE(5) OVER (ORDER BY recency DESC, customer_id) AS r,
           NTILE(5) OVER (ORDER BY orders, customer_id) AS f,
           NTILE(5) OVER (ORDER BY net_spend, customer_id) AS m
    FROM (
        SELECT customer_id, orders, net_spend,
               CAST(FLOOR((EXTRACT(EPOCH FROM {as_of}) - EXTRACT(EPOCH FROM last_date)) / 86400) AS INTEGER)
                   AS recency
        FROM ({_customer_figures(where)}) figures
    ) with_recency
) scored"""


def rfm(precomputed: bool) -> str:
    """One query, two kinds of rows. ('segment', name, customers, net spend) for every
    segment with customers; ('customer', segment, recency, frequency, monetary, r, f, m,
    customer_id) for the `:limit` biggest spenders (of segment `:segment`, or all for '').
    `precomputed`: the mart (all the data, as of its latest date)."""
    source = "mart_rfm" if precomputed else f"({_rfm_scores()}) computed"
    return f"""
WITH scores AS (SELECT customer_id, recency, frequency, monetary, r, f, m, segment FROM {source})
SELECT 'segment', segment, COUNT(*), CAST(SUM(monetary) AS BIGINT), NULL, NULL, NULL, NULL, NULL
FROM scores
GROUP BY segment
UNION ALL
SELECT 'customer', segment, recency, frequency, monetary, r, f, m, customer_id
FROM (
    SELECT * FROM scores
    WHERE segment = :segment OR :segment = ''
    ORDER BY monetary DESC, customer_id
    LIMIT :limit
) top"""


LATEST_INVOICE_DATE = f"SELECT MAX(invoice_date) FROM mart_sales_by_time WHERE {_IN_RANGE}"

COHORTS = f"""
WITH first_month AS (
    SELECT customer_id, date_trunc('month', MIN(invoice_date)) AS cohort
    FROM mart_invoice
    WHERE {_IN_RANGE} AND customer_id IS NOT NULL
    GROUP BY customer_id
)
SELECT cohort, NULL, COUNT(*)
FROM first_month
GROUP BY cohort
UNION ALL
SELECT first_month.cohort, active.month, COUNT(*)
FROM first_month
JOIN (
    SELECT DISTINCT customer_id, date_trunc('month', invoice_date) AS month
    FROM mart_invoice
    WHERE {_IN_RANGE} AND customer_id IS NOT NULL AND NOT is_cancellation
) active ON active.customer_id = first_month.customer_id
GROUP BY first_month.cohort, active.month
UNION ALL
SELECT NULL, MAX(invoice_date), NULL
FROM mart_invoice
WHERE {_IN_RANGE}"""
"""Rows (cohort, NULL, customers in the cohort); (cohort, month, customers of the cohort
with an order that month); and one (NULL, the latest invoice date in the period, NULL).
A customer's cohort is the month of their first invoice (of any kind) in the period."""


# -- refreshing the marts ------------------------------------------------------------

def _top_product_refresh(grain: str, dialect: str) -> tuple[str, str]:
    since = f"date_trunc('{grain}', CAST(:since AS TIMESTAMP))"
    return (
        f"DELETE FROM mart_top_product_per_bucket WHERE grain = '{grain}' AND bucket >= {since}",
        (f"INSERT INTO mart_top_product_per_bucket SELECT '{grain}', bucket, stock_code, quantity FROM ("
         f"{_top_product_per_bucket(grain, f' AND invoice_date >= {since}', dialect)}) top"),
    )


# DISTINCT: DuckDB's IN (subquery) probes a hash table of every line's invoice number
# otherwise, duplicates and all (16M lines, 3.3M since: 1.81 s against 0.23 s)
_TOUCHED_INVOICES = f"SELECT DISTINCT invoice_no FROM {FACT_TABLE} WHERE invoice_date >= :since"

def mart_refresh(dialect: str = "ansi", rebuild: bool = False) -> tuple[str, ...]:
    """Brings the marts up to date after lines with invoice_date >= :since were added (run
    in one transaction; `:since` = EARLIEST rebuilds everything). Only buckets and invoices
    at or after `since` are recomputed, so a stream of current sales refreshes cheaply.
    `dialect`: "ansi" (PostgreSQL, Redshift) or "duckdb" (see _top_product_per_bucket).
    `rebuild`: for `:since` = EARLIEST only: every invoice without first finding the touched
    ones (~15 % of a bulk load's final refresh)."""
    touched = "" if rebuild else f"WHERE invoice_no IN ({_TOUCHED_INVOICES})"
    return (
        "DELETE FROM mart_sales_by_time WHERE invoice_date >= :since",
        f"""INSERT INTO mart_sales_by_time
SELECT invoice_date,
       SUM(line_total),
       SUM(CASE WHEN is_sale THEN line_total ELSE 0 END),
       SUM(CASE WHEN is_cancellation THEN line_total ELSE 0 END),
       COUNT(*)
FROM {FACT_TABLE}
WHERE invoice_date >= :since
GROUP BY invoice_date""",
        f"DELETE FROM mart_invoice {touched}",
        # an invoice's date is the earliest of its parts' (one scan, no self-join)
        f"""INSERT INTO mart_invoice
SELECT invoice_no, customer_id, country, MIN(part_date) OVER (PARTITION BY invoice_no), total, gross_sales, lines,
       is_cancellation, is_adjustment,
       ROW_NUMBER() OVER (PARTITION BY invoice_no ORDER BY customer_id NULLS LAST, country) = 1,
       SUM(total) OVER (PARTITION BY invoice_no),
       SUM(lines) OVER (PARTITION BY invoice_no),
       ROW_NUMBER() OVER (PARTITION BY invoice_no, customer_id ORDER BY country) = 1
FROM (
    SELECT invoice_no, customer_id, country, MIN(invoice_date) AS part_date,
           SUM(line_total) AS total,
           SUM(CASE WHEN is_sale THEN line_total ELSE 0 END) AS gross_sales,
           COUNT(*) AS lines, is_cancellation, is_adjustment
    FROM {FACT_TABLE}
    {touched}
    GROUP BY invoice_no, customer_id, country, is_cancellation, is_adjustment
) parts""",
        "DELETE FROM mart_product_name",
        f"""INSERT INTO mart_product_name
SELECT stock_code, description FROM (
    SELECT stock_code, description,
           ROW_NUMBER() OVER (PARTITION BY stock_code ORDER BY uses DESC, description) AS position
    FROM (
        SELECT stock_code, description, COUNT(*) AS uses
        FROM {FACT_TABLE}
        WHERE description IS NOT NULL
        GROUP BY stock_code, description
    ) used
) ranked
WHERE position = 1""",
        "DELETE FROM mart_top_products",
        f"""INSERT INTO mart_top_products
SELECT ROW_NUMBER() OVER (ORDER BY quantity DESC, stock_code), stock_code, quantity
FROM (SELECT stock_code, SUM(quantity) AS quantity FROM {FACT_TABLE} WHERE {_SALE_PRODUCT} GROUP BY stock_code) sold""",
        *(statement for grain in GRAINS for statement in _top_product_refresh(grain, dialect)),
        "DELETE FROM mart_rfm",
        f"""INSERT INTO mart_rfm
SELECT * FROM ({_rfm_scores(f"(SELECT MAX(invoice_date) FROM {FACT_TABLE})", "1 = 1")}) rfm""",
        "DELETE FROM mart_meta",
        f"INSERT INTO mart_meta SELECT {MARTS_VERSION}, COUNT(*), MIN(invoice_date), MAX(invoice_date) FROM {FACT_TABLE}",
    )


MART_REFRESH = mart_refresh()
MART_REFRESH_DUCKDB = mart_refresh("duckdb")
MART_REBUILD_DUCKDB = mart_refresh("duckdb", rebuild=True)

# -- pure helpers --------------------------------------------------------------------



def bucket_start(grain: str, at: datetime) -> datetime:
    """date_trunc(grain, at), weeks starting on Monday."""
    _grain(grain)
    if grain == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def is_bucket_start(grain: str, at: datetime) -> bool:
    return at in (EARLIEST, LATEST) or bucket_start(grain, at) == at


def mean_milli(total_milli: int, count: int) -> int:
    """An average of money in thousandths, rounded to the thousandth (half to even)."""
    if not count:
        return 0
    return int((Decimal(total_milli) / count).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def ratio(part: int, whole: int, places: int = 6) -> float:
    return round(part / whole, places) if whole else 0.0


def iso_weekday(dow: int) -> int:
    """EXTRACT(DOW) (0 = Sunday) to ISO (1 = Monday ... 7 = Sunday)."""
    return 7 if dow == 0 else dow


def month_offset(start: datetime, later: datetime) -> int:
    return (later.year - start.year) * 12 + later.month - start.month
