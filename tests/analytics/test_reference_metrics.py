"""The issue's acceptance figures over the reference file, and every metric against the
independent computation over all 541,909 lines."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shopstream.analytics import Period
from tests.analytics import checks


def test_net_revenue_is_the_data_sets_total(reference_analytics):
    summary = reference_analytics.summary(Period())
    assert summary["net_revenue"] == "9747747.934"
    assert (summary["lines"], summary["customers"], summary["data_version"]) == (541_909, 4_372, 541_909)
    assert summary["orders"] + summary["cancellations"] == 25_900


def test_thirteen_months_sum_to_the_net_revenue(reference_analytics):
    months = reference_analytics.sales("month", Period())["buckets"]
    assert [b["bucket"][:7] for b in months] == ["2010-12"] + [f"2011-{m:02d}" for m in range(1, 13)]
    assert sum(Decimal(b["net_revenue"]) for b in months) == Decimal("9747747.934")
    assert sum(b["lines"] for b in months) == 541_909


def test_the_most_sold_product_is_23843(reference_analytics):
    top = reference_analytics.top_products(Period(), 1)["products"][0]
    assert (top["stock_code"], top["quantity"]) == ("23843", 80_995)
    assert top["description"] == "PAPER CRAFT , LITTLE BIRDIE"


def test_the_highest_invoice_is_581483(reference_analytics):
    top = reference_analytics.top_invoices(Period(), 1)["invoices"][0]
    assert (top["invoice_no"], top["total"], top["customer_id"]) == ("581483", "168469.60", "16446")


@pytest.mark.parametrize("check", checks.ALL, ids=lambda c: c.__name__)
def test_every_metric_matches_the_independent_computation(reference_analytics, reference_frame, check):
    check(reference_analytics, reference_frame)


@pytest.mark.parametrize("check", checks.ALL, ids=lambda c: c.__name__)
def test_the_same_sql_on_postgresql_gives_the_same_answers(reference_postgres, reference_frame, check):
    check(reference_postgres, reference_frame)
