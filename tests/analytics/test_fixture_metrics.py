"""Every metric over the hand-made fixture, on DuckDB and on PostgreSQL: the answers worked
out by hand (fixture.py), then everything against the independent computation."""

from __future__ import annotations

from datetime import datetime

import pytest

from shopstream.adapters.local.warehouse import DuckDBSnapshotReader
from shopstream.analytics import Analytics, Period
from tests.analytics import checks, fixture, independent
from tests.analytics.conftest import duckdb_warehouse


def test_net_revenue_and_kpis(fixture_analytics):
    s = fixture_analytics.summary(Period())
    assert (s["net_revenue"], s["gross_sales"], s["returns"]) == (fixture.NET_REVENUE, "246.131", "-59.48")
    assert (s["lines"], s["orders"], s["cancellations"], s["customers"]) == (18, 10, 3, 3)
    assert s["average_order_value"] == "24.613"  # 246.131 / 10, to the thousandth
    assert (s["first_invoice_date"], s["last_invoice_date"]) == ("2010-12-01 08:26:00", "2011-02-01 09:00:00")
    assert s["data_version"] == 18


def test_sales_per_month_and_week(fixture_analytics):
    months = fixture_analytics.sales("month", Period())
    assert [(b["bucket"], b["net_revenue"]) for b in months["buckets"]] == fixture.MONTHS
    assert months["net_revenue"] == fixture.NET_REVENUE
    weeks = fixture_analytics.sales("week", Period())  # weeks start on Monday
    assert [(b["bucket"], b["net_revenue"]) for b in weeks["buckets"]] == fixture.WEEKS
    average = fixture_analytics.sales_average("month", Period())
    assert (average["average"], average["buckets"]) == ("95.55", 3)  # 286.651 / 3 = 95.5503...


def test_an_invoice_spanning_an_hour_counts_its_lines_in_their_hours(fixture_analytics):
    hours = {b["bucket"]: b["net_revenue"] for b in fixture_analytics.sales("hour", Period())["buckets"]}
    assert hours["2010-12-01 08:00:00"] == "46.74" and hours["2010-12-01 09:00:00"] == "-27.499"
    cancellations = fixture_analytics.cancellations("hour", Period())["buckets"]
    # ...but the invoice itself is dated 08:59
    assert [(b["bucket"], b["invoices"]) for b in cancellations[:2]] == [
        ("2010-12-01 08:00:00", 2), ("2010-12-01 09:00:00", 1)]


def test_weekday_profile(fixture_analytics):
    slots = fixture_analytics.profile("weekday", Period())["slots"]
    assert [(s["weekday"], s["name"], s["net_revenue"]) for s in slots] == [
        (1, "Monday", "72.55"), (2, "Tuesday", "100.00"), (3, "Wednesday", "89.801"), (7, "Sunday", "24.30")]


def test_most_sold_products_break_ties_by_stock_code(fixture_analytics):
    top = fixture_analytics.top_products(Period(), 10)["products"]
    assert [(p["stock_code"], p["quantity"]) for p in top] == fixture.TOP_PRODUCTS
    # 85123A was described two ways, once each: the smaller wins; a missing description never does
    assert top[2]["description"] == "CREAM HANGING HEART"
    per_month = fixture_analytics.top_product_per_bucket("month", Period())["buckets"]
    assert [(b["bucket"][:7], b["stock_code"], b["quantity"]) for b in per_month] == [
        ("2010-12", "85123A", 11), ("2011-01", "21730", 24), ("2011-02", "22632", 12)]  # 21730 ties 84879


def test_highest_invoices_skip_cancellations_and_adjustments(fixture_analytics):
    top = fixture_analytics.top_invoices(Period(), 20)["invoices"]
    assert [(i["invoice_no"], i["total"]) for i in top] == [
        ("539004", "70.56"), ("539000", "54.33"), ("536365", "35.64"), ("540000", "25.20"), ("536367", "24.30"),
        ("536400", "12.50"), ("536401", "12.50"), ("536366", "11.101"), ("539003", "0.00")]
    assert top[0]["invoice_date"] == "2011-01-12 15:00:00" and top[7]["invoice_date"] == "2010-12-01 08:59:00"


def test_countries(fixture_analytics):
    countries = fixture_analytics.countries(Period())["countries"]
    assert [(c["country"], c["net_revenue"], c["invoices"], c["customers"]) for c in countries] == [
        ("United Kingdom", "166.791", 6, 1), ("France", "74.50", 5, 1), ("Germany", "45.36", 2, 1)]


def test_cancellation_rate_per_month(fixture_analytics):
    answer = fixture_analytics.cancellations("month", Period())
    assert [(b["invoices"], b["cancellations"], b["rate"]) for b in answer["buckets"]] == [
        (6, 1, 0.166667), (5, 1, 0.2), (2, 1, 0.5)]
    assert (answer["invoices"], answer["cancellations"], answer["rate"]) == (13, 3, 0.230769)


def test_customer_summary(fixture_analytics):
    answer = fixture_analytics.customers(Period(), 10)
    assert answer["customers"] == 3
    first = answer["top"][0]
    assert first == {"customer_id": "17850", "first_invoice_date": "2010-12-01 08:26:00",
                     "last_invoice_date": "2011-01-10 10:00:00", "invoices": 3, "net_spend": "66.791",
                     "returns": "-34.28", "average_order_value": "33.69"}


def test_rfm_scores_and_segments(fixture_analytics):
    answer = fixture_analytics.rfm(Period(), None, None, 10)
    assert answer["as_of"] == "2011-02-01 09:00:00"
    assert [(s["customer_id"], s["recency"], s["frequency"], s["r"], s["f"], s["m"], s["segment"])
            for s in answer["scores"]] == [
        ("17850", 21, 3, 1, 2, 3, "Hibernating"),
        ("12583", 0, 4, 2, 3, 2, "At risk"),
        ("13047", 0, 1, 3, 1, 1, "About to sleep"),
    ]
    only = fixture_analytics.rfm(Period(), datetime(2011, 3, 1), "At risk", 10)
    assert only["as_of"] == "2011-03-01 00:00:00"
    assert [(s["customer_id"], s["recency"]) for s in only["scores"]] == [("12583", 27)]


def test_cohort_retention(fixture_analytics):
    cohorts = fixture_analytics.cohorts(Period())["cohorts"]
    assert cohorts == [
        {"cohort": "2010-12", "customers": 2, "active": [2, 2, 1], "retention": [1.0, 1.0, 0.5]},
        # 13047's only February invoice is a cancellation: not retained
        {"cohort": "2011-01", "customers": 1, "active": [1, 0], "retention": [1.0, 0.0]},
    ]


def test_a_period_filters_lines_by_date_and_invoices_by_invoice_date(fixture_analytics, fixture_frame):
    january = Period(datetime(2011, 1, 1), datetime(2011, 2, 1))
    s = checks.check_summary(fixture_analytics, fixture_frame, january)
    assert (s["net_revenue"], s["orders"], s["from"], s["to"]) == ("218.11", 4, "2011-01-01 00:00:00",
                                                                    "2011-02-01 00:00:00")
    checks.check_sales(fixture_analytics, fixture_frame, january)
    # 09:00 cuts invoice 536366 (08:59 + 09:00): its 09:00 line counts, the invoice does not
    s = checks.check_summary(fixture_analytics, fixture_frame, Period(datetime(2010, 12, 1, 9), None))
    assert (s["net_revenue"], s["orders"]) == ("239.911", 8)
    empty = fixture_analytics.summary(Period(datetime(2020, 1, 1), None))
    assert (empty["net_revenue"], empty["orders"], empty["first_invoice_date"]) == ("0.00", 0, None)
    assert fixture_analytics.rfm(Period(datetime(2020, 1, 1), None), None, None, 5)["customers"] == 0
    assert fixture_analytics.cohorts(Period(datetime(2020, 1, 1), None))["cohorts"] == []


def test_top_products_per_bucket_in_a_period_cutting_through_buckets(fixture_analytics, fixture_frame):
    # a period that is not made of whole weeks is computed from the lines, not the mart
    period = Period(datetime(2010, 12, 5), datetime(2011, 1, 11))
    got = fixture_analytics.top_product_per_bucket("week", period)["buckets"]
    assert [(b["bucket"][:10], b["stock_code"], b["quantity"]) for b in got] == [
        ("2010-11-29", "84879", 3), ("2010-12-06", "21730", 10), ("2011-01-10", "85123A", 12)]


@pytest.mark.parametrize("check", checks.ALL, ids=lambda c: c.__name__)
def test_every_metric_matches_the_independent_computation(fixture_analytics, fixture_frame, check):
    check(fixture_analytics, fixture_frame)


def test_an_invoice_mixing_customers_and_countries_is_still_counted_exactly(tmp_path):
    # never in the reference data, but nothing stops a client sending it
    rows = fixture.ROWS + [
        ("536365", "22633", "HAND WARMER UNION JACK", 2, "2010-12-01 08:27:00", "1.85", "12583", "France"),
        ("539004", "22632", "HAND WARMER RED POLKA DOT", 1, "2011-01-12 15:00:00", "2.10", None, "Germany"),
    ]
    duckdb_warehouse(tmp_path / "warehouse.duckdb", rows).close()
    analytics = Analytics(DuckDBSnapshotReader(tmp_path / "warehouse.duckdb"))
    frame = independent.frame(rows)
    for check in checks.ALL:
        check(analytics, frame)
    top = analytics.top_invoices(Period(), 1)["invoices"][0]
    assert (top["invoice_no"], top["total"], top["lines"], top["customer_id"]) == ("539004", "72.66", 3, "13047")
