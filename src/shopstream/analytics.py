"""The analytics use cases: run the metric SQL on an AnalyticsSource, shape the answers.

Every answer names its metric and grain and echoes its period; money is an exact
decimal string, counts are integers, shares are numbers rounded to 6 places.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from shopstream.domain import metrics as sql
from shopstream.domain.metrics import iso_weekday, mean_milli, month_offset, ratio
from shopstream.domain.money import format_money
from shopstream.domain.rfm import SEGMENTS
from shopstream.ports import AnalyticsSource

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def money(milli: int | None) -> str:
    """Integer thousandths (as the metric SQL returns money) -> an exact decimal string."""
    return format_money(int(milli or 0))


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.replace(microsecond=0).isoformat(" ")


@dataclass(frozen=True)
class Period:
    """Lines (or invoices) with from <= invoice_date < to; None is unbounded."""

    start: datetime | None = None
    end: datetime | None = None

    def params(self, **more) -> dict:
        return {"from_date": self.start or sql.EARLIEST, "to_date": self.end or sql.LATEST, **more}

    def echo(self) -> dict:
        return {"from": timestamp(self.start), "to": timestamp(self.end)}


class Analytics:
    def __init__(self, source: AnalyticsSource) -> None:
        self.source = source

    def _answer(self, metric: str, grain: str, period: Period, **body) -> dict:
        return {"metric": metric, "grain": grain, **period.echo(), **body}

    # -- sales ---------------------------------------------------------------------

    def summary(self, period: Period) -> dict:
        (net, gross, returns, lines, first, last, orders, cancellations, customers, version), = (
            self.source.query(sql.SUMMARY, period.params())
        )
        return self._answer(
            "summary", "period", period,
            net_revenue=money(net), gross_sales=money(gross), returns=money(returns), lines=lines,
            orders=orders, cancellations=cancellations, customers=customers,
            average_order_value=money(mean_milli(gross, orders)),
            first_invoice_date=timestamp(first), last_invoice_date=timestamp(last),
            data_version=version or 0,
        )

    def _sales_rows(self, grain: str, period: Period) -> list[tuple]:
        return self.source.query(sql.sales_per_period(grain), period.params())

    def sales(self, grain: str, period: Period) -> dict:
        rows = self._sales_rows(grain, period)
        return self._answer(
            "sales per period", grain, period,
            buckets=[
                {"bucket": timestamp(bucket), "net_revenue": money(net), "lines": lines}
                for bucket, net, lines in rows
            ],
            net_revenue=money(sum(r[1] for r in rows)),
        )

    def sales_average(self, grain: str, period: Period) -> dict:
        rows = self._sales_rows(grain, period)
        total = sum(r[1] for r in rows)
        return self._answer(
            "average sales per period", grain, period,
            average=money(mean_milli(total, len(rows))), buckets=len(rows), net_revenue=money(total),
        )

    def profile(self, by: str, period: Period) -> dict:
        rows = self.source.query(sql.sales_profile(by), period.params())
        if by == "hour":
            slots = [{"hour": slot, "net_revenue": money(net), "lines": lines} for slot, net, lines in rows]
            return self._answer("hour-of-day profile", "hour", period, slots=slots)
        slots = sorted(
            ({"weekday": iso_weekday(slot), "name": WEEKDAYS[iso_weekday(slot) - 1], "net_revenue": money(net),
              "lines": lines} for slot, net, lines in rows),
            key=lambda s: s["weekday"],
        )
        return self._answer("weekday profile", "weekday", period, slots=slots)

    # -- products and invoices -----------------------------------------------------

    def top_products(self, period: Period, limit: int) -> dict:
        # the mart ranks every product over all the data: the dashboard's usual question
        precomputed = period.start is None and period.end is None
        rows = self.source.query(sql.top_products(precomputed), period.params(limit=limit))
        return self._answer(
            "most sold products", "period", period, limit=limit,
            products=[
                {"rank": rank, "stock_code": code, "description": description, "quantity": quantity}
                for rank, (code, description, quantity) in enumerate(rows, start=1)
            ],
        )

    def top_product_per_bucket(self, grain: str, period: Period) -> dict:
        # The mart holds whole buckets; a period cutting through one is computed from the lines.
        precomputed = all(sql.is_bucket_start(grain, at) for at in period.params().values())
        rows = self.source.query(sql.top_product_per_bucket(grain, precomputed), period.params())
        return self._answer(
            "most sold product per bucket", grain, period,
            buckets=[
                {"bucket": timestamp(bucket), "stock_code": code, "description": description, "quantity": quantity}
                for bucket, code, description, quantity in rows
            ],
        )

    def top_invoices(self, period: Period, limit: int) -> dict:
        rows = self.source.query(sql.TOP_INVOICES, period.params(limit=limit))
        return self._answer(
            "highest invoices", "invoice", period, limit=limit,
            invoices=[
                {"rank": rank, "invoice_no": no, "invoice_date": timestamp(date), "customer_id": customer,
                 "country": country, "total": money(total), "lines": lines}
                for rank, (no, date, customer, country, total, lines) in enumerate(rows, start=1)
            ],
        )

    def countries(self, period: Period) -> dict:
        rows = self.source.query(sql.COUNTRIES, period.params())
        return self._answer(
            "country sales", "country", period,
            countries=[
                {"country": country, "net_revenue": money(net), "invoices": invoices, "customers": customers}
                for country, net, invoices, customers in rows
            ],
        )

    def cancellations(self, grain: str, period: Period) -> dict:
        rows = self.source.query(sql.cancellations(grain), period.params())
        invoices = sum(r[1] for r in rows)
        cancelled = sum(r[2] for r in rows)
        return self._answer(
            "cancellation rate", grain, period,
            buckets=[
                {"bucket": timestamp(bucket), "invoices": n, "cancellations": c, "rate": ratio(c, n)}
                for bucket, n, c in rows
            ],
            invoices=invoices, cancellations=cancelled, rate=ratio(cancelled, invoices),
        )

    # -- customers -----------------------------------------------------------------

    def customers(self, period: Period, limit: int) -> dict:
        rows = self.source.query(sql.TOP_CUSTOMERS, period.params(limit=limit))
        return self._answer(
            "customer summary", "customer", period, customers=rows[0][-1] if rows else 0, limit=limit,
            top=[
                {"customer_id": cid, "first_invoice_date": timestamp(first), "last_invoice_date": timestamp(last),
                 "invoices": orders, "net_spend": money(net), "returns": money(returns),
                 "average_order_value": money(mean_milli(gross, orders))}
                for cid, first, last, orders, net, returns, gross, _count in rows
            ],
        )

    def rfm(self, period: Period, as_of: datetime | None, segment: str | None, limit: int) -> dict:
        # the mart holds the scores over all the data as of its latest date: the usual question
        precomputed = as_of is None and period.start is None and period.end is None
        if as_of is None:
            (as_of,), = self.source.query(sql.LATEST_INVOICE_DATE, period.params())
        if as_of is None:  # nothing in the period
            return self._answer("RFM", "customer", period, as_of=None, customers=0,
                                segments=[{"segment": name, "customers": 0, "share": 0.0, "net_spend": "0.00"}
                                          for name in SEGMENTS], scores=[])
        params = period.params(as_of=as_of, segment=segment or "", limit=limit)
        sizes: dict[str, tuple[int, int]] = {}
        listed = []
        for kind, name, *values in self.source.query(sql.rfm(precomputed), params):
            if kind == "segment":
                sizes[name] = (values[0], values[1])
            else:
                listed.append((name, *values))
        listed.sort(key=lambda row: (-row[3], row[-1]))  # biggest spenders first
        total = sum(n for n, _ in sizes.values())
        return self._answer(
            "RFM", "customer", period, as_of=timestamp(as_of), customers=total,
            segments=[
                {"segment": name, "customers": sizes.get(name, (0, 0))[0],
                 "share": ratio(sizes.get(name, (0, 0))[0], total), "net_spend": money(sizes.get(name, (0, 0))[1])}
                for name in SEGMENTS
            ],
            scores=[
                {"customer_id": cid, "recency": recency, "frequency": frequency, "monetary": money(monetary),
                 "r": r, "f": f, "m": m, "segment": name}
                for name, recency, frequency, monetary, r, f, m, cid in listed
            ],
        )

    def cohorts(self, period: Period) -> dict:
        sizes: dict[datetime, int] = {}
        active: dict[datetime, dict[int, int]] = defaultdict(dict)
        last = None  # the latest invoice date in the period
        for cohort, month, customers in self.source.query(sql.COHORTS, period.params()):
            if cohort is None:
                last = month
            elif month is None:
                sizes[cohort] = customers
            else:
                active[cohort][month_offset(cohort, month)] = customers
        cohorts = []
        for cohort, size in sorted(sizes.items()):
            months = month_offset(cohort, last) + 1
            counts = [active[cohort].get(k, 0) for k in range(months)]
            cohorts.append({"cohort": cohort.strftime("%Y-%m"), "customers": size, "active": counts,
                            "retention": [ratio(n, size) for n in counts]})
        return self._answer("cohort retention", "month", period, cohorts=cohorts)
