"""METRICS.md computed a second time, independently: pandas over the lines, no SQL, no project code.

Everything the analytics API answers is compared with these functions. Money is in
integer thousandths throughout (exact); dates are pandas Timestamps.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np
import pandas as pd

SERVICE_CODES = {"POST", "DOT", "C2", "M", "m", "D", "S", "B", "CRUK", "BANK CHARGES", "AMAZONFEE", "PADS"}
SEGMENT_BY_RF = {  # METRICS.md's "usual table", written out cell by cell
    (1, 1): "Lost", (1, 2): "Hibernating", (2, 1): "Hibernating", (2, 2): "Hibernating",
    (1, 3): "At risk", (1, 4): "At risk", (2, 3): "At risk", (2, 4): "At risk",
    (1, 5): "Can't lose them", (2, 5): "Can't lose them",
    (3, 1): "About to sleep", (3, 2): "About to sleep", (3, 3): "Need attention",
    (3, 4): "Loyal", (3, 5): "Loyal", (4, 4): "Loyal", (4, 5): "Loyal",
    (4, 1): "Promising", (5, 1): "New",
    (4, 2): "Potential loyalists", (4, 3): "Potential loyalists", (5, 2): "Potential loyalists",
    (5, 3): "Potential loyalists", (5, 4): "Champions", (5, 5): "Champions",
}


def frame(rows) -> pd.DataFrame:
    """rows: (invoice_no, stock_code, description, quantity, 'YYYY-MM-DD HH:MM:SS', price text, customer, country)."""
    df = pd.DataFrame(rows, columns=["invoice_no", "stock_code", "description", "quantity", "invoice_date",
                                     "unit_price", "customer_id", "country"])
    df["quantity"] = df["quantity"].astype("int64")
    df["invoice_date"] = pd.to_datetime(df["invoice_date"], format="%Y-%m-%d %H:%M:%S")
    df["price_milli"] = [int(Decimal(str(p)) * 1000) for p in df["unit_price"]]
    df["customer_id"] = df["customer_id"].astype(object).where(df["customer_id"].notna(), None)
    df["description"] = df["description"].astype(object).where(df["description"].notna(), None)
    return _flags(df)


def read_reference(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = pd.DataFrame({
        "invoice_no": raw["InvoiceNo"].str.strip().str.upper(),
        "stock_code": raw["StockCode"].str.strip(),
        "description": raw["Description"].where(raw["Description"] != "", None),
        "quantity": raw["Quantity"].astype("int64"),
        "invoice_date": pd.to_datetime(raw["InvoiceDate"], format="%Y-%m-%d %H:%M:%S"),
        "price_milli": [int(Decimal(p) * 1000) for p in raw["UnitPrice"]],
        "customer_id": raw["CustomerID"].str.replace(r"\.0$", "", regex=True).where(raw["CustomerID"] != "", None),
        "country": raw["Country"].str.strip(),
    })
    return _flags(df)


def _flags(df: pd.DataFrame) -> pd.DataFrame:
    df["total"] = df["quantity"] * df["price_milli"]
    df["cancel"] = df["invoice_no"].str.startswith("C")
    df["adjust"] = df["invoice_no"].str.startswith("A")
    df["service"] = df["stock_code"].isin(SERVICE_CODES)
    df["sale"] = ~df["cancel"] & ~df["adjust"] & (df["quantity"] > 0) & (df["price_milli"] > 0)
    df["inv_date"] = df.groupby("invoice_no")["invoice_date"].transform("min")
    return df


def bucket(dates: pd.Series, grain: str) -> pd.Series:
    days = dates.dt.floor("D")
    return {
        "hour": lambda: dates.dt.floor("h"),
        "day": lambda: days,
        "week": lambda: days - pd.to_timedelta(days.dt.day_of_week, unit="D"),
        "month": lambda: days - pd.to_timedelta(days.dt.day - 1, unit="D"),
        "year": lambda: pd.to_datetime(dates.dt.year.astype(str) + "-01-01"),
    }[grain]()


def text(ts) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def money(milli: int) -> Decimal:
    return Decimal(int(milli)).scaleb(-3)


def in_period(df: pd.DataFrame, start=None, end=None, column="invoice_date") -> pd.DataFrame:
    keep = pd.Series(True, index=df.index)
    if start is not None:
        keep &= df[column] >= pd.Timestamp(start)
    if end is not None:
        keep &= df[column] < pd.Timestamp(end)
    return df[keep]


# -- the metrics ---------------------------------------------------------------------


def sales(df, grain) -> list[tuple[str, Decimal, int]]:
    g = df.groupby(bucket(df["invoice_date"], grain)).agg(net=("total", "sum"), lines=("total", "size"))
    return [(text(b), money(r.net), int(r.lines)) for b, r in g.sort_index().iterrows()]


def average(df, grain) -> Decimal:
    per = [net for _, net, _ in sales(df, grain)]
    return (sum(per, Decimal(0)) / len(per)).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)


def profile(df, by) -> list[tuple[int, Decimal]]:
    key = df["invoice_date"].dt.hour if by == "hour" else df["invoice_date"].dt.day_of_week + 1
    g = df.groupby(key)["total"].sum().sort_index()
    return [(int(k), money(v)) for k, v in g.items()]


def descriptions(df) -> dict[str, str]:
    used = df[df["description"].notna()].groupby(["stock_code", "description"]).size().reset_index(name="uses")
    used = used.sort_values(["stock_code", "uses", "description"], ascending=[True, False, True])
    return dict(used.drop_duplicates("stock_code")[["stock_code", "description"]].itertuples(index=False))


def top_products(df, limit, names=None) -> list[tuple[str, str, int]]:
    names = names if names is not None else descriptions(df)
    sold = df[df["sale"] & ~df["service"]].groupby("stock_code")["quantity"].sum().reset_index()
    sold = sold.sort_values(["quantity", "stock_code"], ascending=[False, True]).head(limit)
    return [(code, names.get(code, ""), int(q)) for code, q in sold.itertuples(index=False)]


def top_product_per_bucket(df, grain, names=None) -> list[tuple[str, str, str, int]]:
    names = names if names is not None else descriptions(df)
    sold = df[df["sale"] & ~df["service"]]
    g = sold.groupby([bucket(sold["invoice_date"], grain).rename("bucket"), "stock_code"])["quantity"].sum().reset_index()
    g = g.sort_values(["bucket", "quantity", "stock_code"], ascending=[True, False, True]).drop_duplicates("bucket")
    return [(text(b), code, names.get(code, ""), int(q)) for b, code, q in g.itertuples(index=False)]


def top_invoices(df, limit) -> list[tuple[str, str, Decimal]]:
    orders = df[~df["cancel"] & ~df["adjust"]]
    g = orders.groupby("invoice_no").agg(date=("inv_date", "min"), total=("total", "sum")).reset_index()
    g = g.sort_values(["total", "invoice_no"], ascending=[False, True]).head(limit)
    return [(no, text(date), money(total)) for no, date, total in g.itertuples(index=False)]


def countries(df) -> dict[str, tuple[Decimal, int, int]]:
    g = df.groupby("country").agg(net=("total", "sum"), invoices=("invoice_no", "nunique"),
                                  customers=("customer_id", "nunique"))
    return {c: (money(r.net), int(r.invoices), int(r.customers)) for c, r in g.iterrows()}


def cancellations(df, grain) -> list[tuple[str, int, int]]:
    invoices = df.drop_duplicates("invoice_no")
    g = invoices.groupby(bucket(invoices["inv_date"], grain)).agg(
        invoices=("invoice_no", "size"), cancelled=("cancel", "sum"))
    return [(text(b), int(r.invoices), int(r.cancelled)) for b, r in g.sort_index().iterrows()]


def customers(df) -> pd.DataFrame:
    """Per customer: first, last, orders, net, returns, gross, aov (thousandths, half even)."""
    known = df[df["customer_id"].notna()].copy()
    known["order_no"] = known["invoice_no"].where(~known["cancel"])
    known["returned"] = known["total"].where(known["cancel"], 0)
    known["gross"] = known["total"].where(known["sale"], 0)
    g = known.groupby("customer_id").agg(first=("inv_date", "min"), last=("inv_date", "max"),
                                         orders=("order_no", "nunique"), net=("total", "sum"),
                                         returns=("returned", "sum"), gross=("gross", "sum"))
    g["aov"] = [
        int((Decimal(int(gross)) / orders).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)) if orders else 0
        for gross, orders in zip(g["gross"], g["orders"])
    ]
    return g


def ntile(ordered_ids: list[str], tiles: int = 5) -> dict[str, int]:
    """NTILE as SQL defines it: the first (n mod tiles) groups are one row bigger."""
    return {cid: tile + 1 for tile, chunk in enumerate(np.array_split(np.array(ordered_ids, dtype=object), tiles))
            for cid in chunk}


def rfm(df, as_of=None) -> pd.DataFrame:
    c = customers(df)
    as_of = pd.Timestamp(as_of) if as_of is not None else df["invoice_date"].max()
    c["recency"] = (as_of - c["last"]).dt.days  # whole days, floored
    ids = sorted(c.index)
    c["r"] = pd.Series(ntile(sorted(ids, key=lambda i: (-c.at[i, "recency"], i))))
    c["f"] = pd.Series(ntile(sorted(ids, key=lambda i: (c.at[i, "orders"], i))))
    c["m"] = pd.Series(ntile(sorted(ids, key=lambda i: (c.at[i, "net"], i))))
    c["segment"] = [SEGMENT_BY_RF[(r, f)] for r, f in zip(c["r"], c["f"])]
    return c


def cohorts(df) -> dict[str, tuple[int, list[int]]]:
    """cohort 'YYYY-MM' -> (customers, [active customers at month offset 0, 1, ...])."""
    known = df[df["customer_id"].notna()]
    month = lambda s: s.dt.year * 12 + s.dt.month - 1  # noqa: E731
    first = known.groupby("customer_id")["inv_date"].min()
    cohort_of = month(first)
    active = known[~known["cancel"]].assign(m=month(known["inv_date"]))[["customer_id", "m"]].drop_duplicates()
    active["k"] = active["m"] - active["customer_id"].map(cohort_of)
    last = int(month(df["inv_date"]).max())  # the latest month with an invoice
    out = {}
    for cohort, members in cohort_of.groupby(cohort_of):
        counts = active[active["customer_id"].isin(members.index)].groupby("k").size()
        label = f"{cohort // 12}-{cohort % 12 + 1:02d}"
        out[label] = (len(members), [int(counts.get(k, 0)) for k in range(last - cohort + 1)])
    return out
