"""analytics-api over real HTTP (`shopstream up`): answers, error bodies, the page's assets."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.e2e


def get(stack, path, **params) -> httpx.Response:
    return httpx.get(f"{stack.analytics_url}{path}", params=params, headers=stack.auth, timeout=30)


REFERENCE_ONLY = {"to": "2011-12-09T13:00"}  # test_dashboard streams lines in at 13:00


def test_known_answers_over_http(analytics_stack):
    summary = get(analytics_stack, "/analytics/summary", **REFERENCE_ONLY).json()
    assert (summary["metric"], summary["net_revenue"], summary["lines"]) == ("summary", "9747747.934", 541_909)
    months = get(analytics_stack, "/analytics/sales", grain="month").json()
    assert (months["metric"], months["grain"], len(months["buckets"])) == ("sales per period", "month", 13)
    top = get(analytics_stack, "/analytics/products/top", limit=3, **REFERENCE_ONLY).json()
    assert (top["products"][0]["stock_code"], top["products"][0]["quantity"], top["limit"]) == ("23843", 80_995, 3)
    invoices = get(analytics_stack, "/analytics/invoices/top", limit=1, **REFERENCE_ONLY).json()["invoices"]
    assert (invoices[0]["invoice_no"], invoices[0]["total"]) == ("581483", "168469.60")


def test_filters_and_names(analytics_stack):
    december = get(analytics_stack, "/analytics/sales", grain="day", **{"from": "2011-12-01", "to": "2011-12-10"}).json()
    assert (december["from"], december["to"]) == ("2011-12-01 00:00:00", "2011-12-10 00:00:00")
    assert [b["bucket"][:10] for b in december["buckets"]] == [
        "2011-12-01", "2011-12-02", "2011-12-04", "2011-12-05", "2011-12-06", "2011-12-07", "2011-12-08", "2011-12-09"]
    # an offset is converted to shop time (London is UTC+0 in winter, UTC+1 in summer)
    summer = get(analytics_stack, "/analytics/summary", **{"from": "2011-07-01T00:00:00+01:00"}).json()
    assert summer["from"] == "2011-07-01 00:00:00"
    for path, params, metric in [
        ("/analytics/sales/average", {"grain": "week"}, "average sales per period"),
        ("/analytics/sales/profile", {"by": "weekday"}, "weekday profile"),
        ("/analytics/products/top-per-bucket", {"grain": "year"}, "most sold product per bucket"),
        ("/analytics/countries", {}, "country sales"),
        ("/analytics/cancellations", {"grain": "day"}, "cancellation rate"),
        ("/analytics/customers/summary", {"limit": 1}, "customer summary"),
        ("/analytics/customers/rfm", {"segment": "Champions", "limit": 2}, "RFM"),
        ("/analytics/customers/cohorts", {}, "cohort retention"),
    ]:
        response = get(analytics_stack, path, **params)
        assert response.status_code == 200, response.text
        assert response.json()["metric"] == metric and "grain" in response.json()


@pytest.mark.parametrize("path, params, field, reason", [
    ("/analytics/sales", {"grain": "minute"}, "grain", "Input should be 'hour', 'day', 'week', 'month' or 'year'"),
    ("/analytics/sales", {"from": "yesterday"}, "from", "not a date or date-time: 'yesterday'"),
    ("/analytics/summary", {"from": "2011-05-01", "to": "2011-05-01"}, "to", "must be later than from"),
    ("/analytics/products/top", {"limit": "0"}, "limit", "Input should be greater than or equal to 1"),
    ("/analytics/invoices/top", {"limit": "many"}, "limit", "Input should be a valid integer"),
    ("/analytics/customers/rfm", {"segment": "Whales"}, "segment", "Input should be 'Champions'"),
    ("/analytics/customers/rfm", {"as_of": "0001-01-01"}, "as_of", "must be between the years 1900 and 9998"),
])
def test_bad_parameters_get_a_422_naming_the_field(analytics_stack, path, params, field, reason):
    response = get(analytics_stack, path, **params)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert [e["field"] for e in body["errors"]] == [field]
    assert body["errors"][0]["reason"].startswith(reason)


def test_unknown_paths_are_json_404s(analytics_stack):
    response = get(analytics_stack, "/analytics/nope")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_the_page_loads_nothing_from_elsewhere(analytics_stack):
    page = get(analytics_stack, "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(not re.match(r"[a-z]+://|//", a) for a in assets), assets
    for asset in ("static/chart.umd.min.js", "static/dashboard.js", "static/dashboard.css", "static/chart.js-LICENSE.md"):
        response = get(analytics_stack, "/" + asset)
        assert response.status_code == 200 and len(response.content) > 500, asset
    assert "Chart.js v4" in get(analytics_stack, "/static/chart.umd.min.js").text[:200]
