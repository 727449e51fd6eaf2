"""The dashboard in a real browser (Debian's Chromium driven by Playwright): the charts
show the warehouse's numbers, the grain switch redraws them, new lines appear without a
reload, and nothing goes wrong in the console. Leaves test-artifacts/dashboard.png."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.analytics import independent
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"

# Two new lines of a new invoice, streamed in while the page is open: 10 x 25.00 + 2 x 0.50 = 251.00
NEW_LINES = [
    {"InvoiceNo": "581600", "StockCode": "23843", "Description": "PAPER CRAFT , LITTLE BIRDIE", "Quantity": 10,
     "InvoiceDate": "2011-12-09 13:00:00", "UnitPrice": "25.00", "CustomerID": "12346", "Country": "Iceland",
     "event_id": "dashboard-test-1"},
    {"InvoiceNo": "581600", "StockCode": "POST", "Description": "POSTAGE", "Quantity": 2,
     "InvoiceDate": "2011-12-09 13:00:00", "UnitPrice": "0.50", "CustomerID": "12346", "Country": "Iceland",
     "event_id": "dashboard-test-2"},
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: ./scripts/test installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(browser, analytics_stack):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-GB")
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    opened.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    opened.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    opened.goto(f"{analytics_stack.analytics_url}/?refresh=1#key={analytics_stack.api_key}")
    opened.wait_for_selector("body[data-state=ready]", timeout=60_000)
    opened.problems = problems
    yield opened
    context.close()


def chart_data(page, canvas_id):
    return page.evaluate(
        """id => { const c = Chart.getChart(id);
                   return {labels: c.data.labels, values: c.data.datasets[0].data,
                           exact: c.data.datasets[0].exact || null, type: c.config.type}; }""",
        canvas_id,
    )


def kpi(page, name):
    value = page.locator(f"#kpi-{name} .value")
    return value.inner_text(), value.get_attribute("data-exact")


def test_kpi_tiles_show_the_warehouse_totals(page):
    assert kpi(page, "net-revenue") == ("9,747,747.93", "9747747.934")
    assert kpi(page, "orders") == ("22,064", "22064")
    assert kpi(page, "customers") == ("4,372", "4372")
    assert kpi(page, "aov")[1] == "482.942"


def test_the_sales_chart_has_thirteen_months_summing_to_the_net_revenue(page):
    sales = chart_data(page, "sales-chart")
    assert sales["labels"][0] == "Dec 2010" and sales["labels"][-1] == "Dec 2011" and len(sales["labels"]) == 13
    assert sum(Decimal(v) for v in sales["exact"]) == Decimal("9747747.934")
    assert sales["values"][sales["labels"].index("Nov 2011")] == pytest.approx(1_461_756.25, abs=0.01)


def test_switching_the_grain_redraws_the_chart(page, reference_frame):
    weeks = independent.sales(reference_frame, "week")
    page.click(".grains button[data-grain=week]")
    page.wait_for_selector("#sales-chart[data-grain=week]")
    page.wait_for_selector("body[data-state=ready]")
    sales = chart_data(page, "sales-chart")
    assert len(sales["labels"]) == len(weeks) and sales["labels"][0] == "w/c 2010-11-29"
    assert [Decimal(v) for v in sales["exact"]] == [net for _, net, _ in weeks]
    assert page.locator(".grains button[data-grain=week]").get_attribute("aria-pressed") == "true"
    page.click(".grains button[data-grain=day]")
    page.wait_for_selector("#sales-chart[data-grain=day]")
    assert chart_data(page, "sales-chart")["type"] == "line"
    assert len(chart_data(page, "sales-chart")["labels"]) == 305
    page.click(".grains button[data-grain=month]")
    page.wait_for_selector("#sales-chart[data-grain=month]")


def test_profiles_products_invoices_countries_segments_and_cohorts(page, reference_frame):
    hours = chart_data(page, "hour-chart")
    assert hours["labels"] == [f"{h:02d}:00" for h, _ in independent.profile(reference_frame, "hour")]
    assert chart_data(page, "weekday-chart")["labels"] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sun"]
    products = chart_data(page, "products-chart")
    assert products["labels"][0].startswith("23843 PAPER CRAFT") and products["values"][0] == 80_995
    first_invoice = page.locator("#invoices-table tbody tr").first
    assert first_invoice.get_attribute("data-invoice") == "581483"
    assert "168,469.60" in first_invoice.inner_text()
    countries = chart_data(page, "countries-chart")
    assert countries["labels"][0] == "United Kingdom" and len(countries["labels"]) == 12
    segments = chart_data(page, "rfm-chart")
    assert len(segments["labels"]) == 11 and sum(segments["values"]) == 4_372
    cohorts = page.locator("#cohort-table tbody tr")
    assert cohorts.count() == 13
    assert cohorts.first.locator("td.cell").count() == 13
    assert cohorts.first.locator("td.cell").first.get_attribute("title") == "885 of 948 ordered in month +0"


def test_new_lines_appear_without_a_reload(page, analytics_stack):
    december = Decimal(chart_data(page, "sales-chart")["exact"][-1])
    response = httpx.post(f"{analytics_stack.ingest_url}/transactions", json=NEW_LINES,
                          headers=analytics_stack.auth, timeout=30)
    assert response.status_code == 202, response.text
    page.wait_for_function(
        "document.querySelector('#kpi-net-revenue .value').dataset.exact === '9747998.934'", timeout=60_000)
    page.wait_for_selector("body[data-state=ready]")
    assert kpi(page, "orders") == ("22,065", "22065")
    sales = chart_data(page, "sales-chart")
    assert Decimal(sales["exact"][-1]) == december + Decimal("251.00")
    assert page.locator("#status").inner_text().startswith("live · 541,911 lines")


def test_a_date_range_filters_every_panel(page, reference_frame):
    december = independent.in_period(reference_frame, "2011-12-01", "2011-12-10")
    expected = independent.money(december["total"].sum()) + Decimal("251.00")  # with the streamed lines
    page.fill("#from", "2011-12-01")
    page.fill("#to", "2011-12-09")  # through the 9th: the API gets to=2011-12-10
    page.dispatch_event("#to", "change")
    page.wait_for_function("document.querySelector('#kpi-net-revenue .value').dataset.exact !== '9747998.934'")
    page.wait_for_selector("body[data-state=ready]")
    assert Decimal(kpi(page, "net-revenue")[1]) == expected
    assert chart_data(page, "sales-chart")["labels"] == ["Dec 2011"]
    products = chart_data(page, "products-chart")
    top = independent.top_products(december, 1)[0]
    assert products["labels"][0].startswith(top[0] + " ")
    assert products["values"][0] == top[2] + (10 if top[0] == "23843" else 0)  # the streamed 10 units
    page.click("#all-time")
    page.wait_for_function("document.querySelector('#kpi-net-revenue .value').dataset.exact === '9747998.934'")
    page.wait_for_selector("body[data-state=ready]")


def test_no_console_errors_and_a_screenshot(page):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    assert page.problems == []


def test_without_a_key_the_page_asks_for_one(browser, analytics_stack):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-GB")
    opened = context.new_page()
    try:
        opened.goto(f"{analytics_stack.analytics_url}/")  # no #key=
        form = opened.locator("#key-form")
        form.wait_for(state="visible", timeout=30_000)
        assert "needs an API key (scope analytics:read)" in opened.locator("#key-message").inner_text()
        assert kpi(opened, "net-revenue")[0] == "–"  # no data shown without a key
        opened.fill("#key", analytics_stack.api_key)
        opened.click("#key-form button")
        opened.wait_for_selector("body[data-state=ready]", timeout=60_000)
        # the reference data, plus whatever another test of this module streamed in meanwhile
        assert Decimal(opened.locator("#kpi-net-revenue .value").get_attribute("data-exact")) >= Decimal(
            "9747747.934")
        assert form.is_hidden()
    finally:
        context.close()
