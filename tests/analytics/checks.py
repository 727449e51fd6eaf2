"""Every metric of the analytics API against the independent computation, for any data set."""

from __future__ import annotations

from decimal import Decimal

from shopstream.analytics import Analytics, Period
from shopstream.domain.metrics import GRAINS
from tests.analytics import independent as ind


def d(text: str) -> Decimal:
    return Decimal(text)


def check_summary(analytics: Analytics, df, period=Period()):
    lines = ind.in_period(df, period.start, period.end)
    invoices = ind.in_period(df, period.start, period.end, "inv_date")
    s = analytics.summary(period)
    assert (s["metric"], s["grain"]) == ("summary", "period")
    assert d(s["net_revenue"]) == ind.money(lines["total"].sum())
    assert d(s["gross_sales"]) == ind.money(lines.loc[lines["sale"], "total"].sum())
    assert d(s["returns"]) == ind.money(lines.loc[lines["cancel"], "total"].sum())
    assert s["lines"] == len(lines)
    assert s["orders"] == invoices.loc[~invoices["cancel"], "invoice_no"].nunique()
    assert s["cancellations"] == invoices.loc[invoices["cancel"], "invoice_no"].nunique()
    assert s["customers"] == invoices["customer_id"].nunique()
    return s


def check_sales(analytics: Analytics, df, period=Period()):
    lines = ind.in_period(df, period.start, period.end)
    for grain in GRAINS:
        answer = analytics.sales(grain, period)
        assert (answer["metric"], answer["grain"]) == ("sales per period", grain)
        expected = ind.sales(lines, grain)
        assert [(b["bucket"], d(b["net_revenue"]), b["lines"]) for b in answer["buckets"]] == expected
        assert d(answer["net_revenue"]) == ind.money(lines["total"].sum())
        average = analytics.sales_average(grain, period)
        assert (average["metric"], average["grain"]) == ("average sales per period", grain)
        assert (d(average["average"]), average["buckets"]) == (ind.average(lines, grain), len(expected))


def check_profiles(analytics: Analytics, df):
    for by in ("hour", "weekday"):
        answer = analytics.profile(by, Period())
        assert answer["grain"] == by
        assert [(s[by], d(s["net_revenue"])) for s in answer["slots"]] == ind.profile(df, by)


def check_products(analytics: Analytics, df, limit=50):
    names = ind.descriptions(df)
    answer = analytics.top_products(Period(), limit)
    assert answer["metric"] == "most sold products"
    got = [(p["stock_code"], p["description"], p["quantity"]) for p in answer["products"]]
    assert got == ind.top_products(df, limit, names)
    assert [p["rank"] for p in answer["products"]] == list(range(1, len(got) + 1))
    for grain in GRAINS:
        answer = analytics.top_product_per_bucket(grain, Period())
        assert (answer["metric"], answer["grain"]) == ("most sold product per bucket", grain)
        got = [(b["bucket"], b["stock_code"], b["description"], b["quantity"]) for b in answer["buckets"]]
        assert got == ind.top_product_per_bucket(df, grain, names)


def check_invoices(analytics: Analytics, df, limit=50):
    answer = analytics.top_invoices(Period(), limit)
    assert (answer["metric"], answer["grain"]) == ("highest invoices", "invoice")
    got = [(i["invoice_no"], i["invoice_date"], d(i["total"])) for i in answer["invoices"]]
    assert got == ind.top_invoices(df, limit)


def check_countries(analytics: Analytics, df):
    answer = analytics.countries(Period())
    assert (answer["metric"], answer["grain"]) == ("country sales", "country")
    got = {c["country"]: (d(c["net_revenue"]), c["invoices"], c["customers"]) for c in answer["countries"]}
    assert got == ind.countries(df)
    revenues = [d(c["net_revenue"]) for c in answer["countries"]]
    assert revenues == sorted(revenues, reverse=True)


def check_cancellations(analytics: Analytics, df):
    for grain in GRAINS:
        answer = analytics.cancellations(grain, Period())
        assert (answer["metric"], answer["grain"]) == ("cancellation rate", grain)
        got = [(b["bucket"], b["invoices"], b["cancellations"]) for b in answer["buckets"]]
        expected = ind.cancellations(df, grain)
        assert got == expected
        assert [b["rate"] for b in answer["buckets"]] == [round(c / n, 6) for _, n, c in expected]


def check_customers(analytics: Analytics, df, limit=50):
    expected = ind.customers(df).reset_index().sort_values(["net", "customer_id"], ascending=[False, True]).head(limit)
    answer = analytics.customers(Period(), limit)
    assert answer["metric"] == "customer summary"
    assert answer["customers"] == df["customer_id"].nunique()
    got = [(c["customer_id"], c["first_invoice_date"], c["last_invoice_date"], c["invoices"], d(c["net_spend"]),
            d(c["returns"]), d(c["average_order_value"])) for c in answer["top"]]
    assert got == [(r.customer_id, ind.text(r.first), ind.text(r.last), r.orders, ind.money(r.net),
                    ind.money(r.returns), ind.money(r.aov)) for r in expected.itertuples()]


def check_rfm(analytics: Analytics, df, limit=100):
    expected = ind.rfm(df)
    answer = analytics.rfm(Period(), None, None, limit)
    assert (answer["metric"], answer["grain"]) == ("RFM", "customer")
    assert answer["as_of"] == ind.text(df["invoice_date"].max())
    sizes = expected["segment"].value_counts().to_dict()
    assert {s["segment"]: s["customers"] for s in answer["segments"] if s["customers"]} == sizes
    assert sum(s["customers"] for s in answer["segments"]) == answer["customers"] == len(expected)
    top = expected.reset_index().sort_values(["net", "customer_id"], ascending=[False, True]).head(limit)
    got = [(s["customer_id"], s["recency"], s["frequency"], d(s["monetary"]), s["r"], s["f"], s["m"], s["segment"])
           for s in answer["scores"]]
    assert got == [(r.customer_id, r.recency, r.orders, ind.money(r.net), r.r, r.f, r.m, r.segment)
                   for r in top.itertuples()]
    return answer


def check_cohorts(analytics: Analytics, df):
    answer = analytics.cohorts(Period())
    assert (answer["metric"], answer["grain"]) == ("cohort retention", "month")
    got = {c["cohort"]: (c["customers"], c["active"]) for c in answer["cohorts"]}
    assert got == ind.cohorts(df)
    for c in answer["cohorts"]:
        assert c["retention"] == [round(n / c["customers"], 6) for n in c["active"]]
    return answer


ALL = (check_summary, check_sales, check_profiles, check_products, check_invoices, check_countries,
       check_cancellations, check_customers, check_rfm, check_cohorts)
