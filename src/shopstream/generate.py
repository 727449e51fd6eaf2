"""Synthetic transaction files with the reference set's columns and quirks.

Deterministic per seed, streamed (any size in constant memory). The quirks of the
real data are all there: cancellations (`C` invoices, negative quantities), guests
(no customer id), service stock codes (POST, M, DOT, BANK CHARGES...), adjustments
(`A` invoices), lines without description, exact duplicate lines, seasonality
(a Christmas peak; no Saturday trade), and long tails of products and customers.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import io
import itertools
import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

from shopstream.iterutil import batched

HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
START, END = date(2010, 12, 1), date(2011, 12, 9)
LINES_PER_INVOICE = 21  # about the reference set's mean

_ADJECTIVES = ["WHITE", "RED", "PINK", "BLUE", "GREEN", "VINTAGE", "RETRO", "JUMBO", "SMALL", "LARGE",
               "REGENCY", "CREAM", "IVORY", "GLASS", "WOODEN", "METAL", "PAPER", "FELT", "HEART", "STAR",
               "SPOTTY", "FLORAL", "CHRISTMAS", "PARTY", "GARDEN", "KITCHEN", "ANTIQUE", "LOVE", "SET OF 3"]
_ITEMS = ["T-LIGHT HOLDER", "LANTERN", "COAT HANGER", "HOT WATER BOTTLE", "BAG", "MUG", "CAKE STAND",
          "NAPKINS", "BUNTING", "CANDLE", "CLOCK", "DOORMAT", "LUNCH BOX", "TEACUP", "PHOTO FRAME",
          "TIN", "JAR", "CUSHION COVER", "NOTEBOOK", "WRAP", "STICKERS", "BOWL", "PLATE", "BELL",
          "DECORATION", "SIGN", "PURSE", "ALARM CLOCK", "BIRD ORNAMENT", "RIBBONS"]
_COUNTRIES = [("United Kingdom", 880), ("Germany", 20), ("France", 19), ("EIRE", 18), ("Spain", 6),
              ("Netherlands", 5), ("Belgium", 5), ("Switzerland", 4), ("Portugal", 3), ("Australia", 3),
              ("Norway", 2), ("Italy", 2), ("Channel Islands", 2), ("Finland", 2), ("Cyprus", 1),
              ("Sweden", 1), ("Austria", 1), ("Denmark", 1), ("Japan", 1), ("Poland", 1), ("USA", 1)]
_SERVICES = [("POST", "POSTAGE", 18.0), ("M", "Manual", 2.55), ("DOT", "DOTCOM POSTAGE", 11.06),
             ("C2", "CARRIAGE", 50.0), ("BANK CHARGES", "Bank Charges", 15.0), ("PADS", "PADS TO MATCH ALL CUSHIONS", 0.001)]
_QUANTITIES = [1, 2, 3, 4, 6, 8, 10, 12, 12, 12, 24, 24, 48, 96]


def _weights(rng: random.Random, n: int, skew: float) -> list[float]:
    """Cumulative Zipf-like weights: a few hits and a long tail."""
    return list(itertools.accumulate(1.0 / (rank + 1) ** skew for rank in range(n)))


def _pick(rng: random.Random, cumulative: list[float]) -> int:
    return bisect.bisect_left(cumulative, rng.random() * cumulative[-1])


def _price(rng: random.Random) -> float:
    base = rng.lognormvariate(0.7, 0.8)
    price = round(min(base, 60.0), 2)
    if price < 0.1:
        price = 0.19
    return float(f"{int(price)}.{rng.choice(['25', '45', '55', '65', '85', '95', '10', '50'])}") if price >= 1 else price


def _fmt(price: float) -> str:
    return f"{price:.3f}".rstrip("0").rstrip(".")


def _day_weight(day: date) -> float:
    if day.weekday() == 5:  # the shop never trades on Saturdays
        return 0.0
    season = 1.0 + 1.6 * max(0.0, (day.timetuple().tm_yday - 240) / 125) ** 2 if day.year == 2011 else 1.8
    return season * (0.7 if day.weekday() == 6 else 1.0)


def generate_rows(rows: int, seed: int = 42) -> Iterator[list[str]]:
    rng = random.Random(seed)
    n_products = max(40, min(6000, rows // 120))
    n_customers = max(20, min(30000, rows // 110))
    products = []
    for i in range(n_products):
        code = f"{20000 + i * 7 % 80000:05d}" + (rng.choice("ABCDEFGHJKLMNP") if rng.random() < 0.11 else "")
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_ADJECTIVES)} {rng.choice(_ITEMS)}"
        products.append((code, name, _price(rng)))
    product_weights = _weights(rng, n_products, 0.9)
    customers = []
    country_weights = list(itertools.accumulate(w for _, w in _COUNTRIES))
    for i in range(n_customers):
        customers.append((str(12346 + i * 37 % 90000), _COUNTRIES[_pick(rng, country_weights)][0]))
    customer_weights = _weights(rng, n_customers, 0.7)

    days = [START + timedelta(d) for d in range((END - START).days + 1)]
    day_weights = [_day_weight(d) for d in days]
    invoices_total = max(1, rows // LINES_PER_INVOICE)
    per_day = [w / sum(day_weights) * invoices_total for w in day_weights]

    invoice_no = 536365
    emitted = 0
    history: list[tuple[str, str, str, float]] = []  # recent (customer, code, name, price) for cancellations
    carry = 0.0
    day_index = 0
    while emitted < rows:
        day = days[day_index % len(days)]
        carry += per_day[day_index % len(days)] if day_index < len(days) else invoices_total / len(days)
        day_index += 1
        count = int(carry)
        carry -= count
        times = sorted(rng.randint(8 * 60, 20 * 60 - 1) for _ in range(count))
        for minute in times:
            at = datetime(day.year, day.month, day.day, minute // 60, minute % 60)
            when = at.strftime("%Y-%m-%d %H:%M:%S")
            guest = rng.random() < 0.22
            customer, country = customers[_pick(rng, customer_weights)]
            if guest:
                customer = ""
            cancel = not guest and history and rng.random() < 0.04
            prefix = "C" if cancel else ""
            if rng.random() < 0.0002:
                prefix = "A"
            number = f"{prefix}{invoice_no}"
            invoice_no += 1
            lines = max(1, int(rng.expovariate(1 / LINES_PER_INVOICE)))
            for _ in range(lines):
                if emitted >= rows:
                    return
                if prefix == "A":
                    row = [number, "B", "Adjust bad debt", "1", when, f"{rng.randint(100, 20000)}.{rng.randint(0, 99):02d}", "", country]
                elif cancel:
                    _, code, name, price = rng.choice(history)
                    row = [number, code, name, str(-rng.choice(_QUANTITIES[:8])), when, _fmt(price), f"{customer}.0", country]
                elif rng.random() < 0.012:
                    code, name, price = rng.choice(_SERVICES)
                    row = [number, code, name, "1", when, _fmt(price), f"{customer}.0" if customer else "", country]
                else:
                    code, name, price = products[_pick(rng, product_weights)]
                    quantity = rng.choice(_QUANTITIES)
                    description = name
                    if guest and rng.random() < 0.01:
                        description, price = "", 0.0  # stock adjustments carry no description
                    row = [number, code, description, str(quantity), when, _fmt(price),
                           f"{customer}.0" if customer else "", country]
                    if customer and len(history) < 5000:
                        history.append((customer, code, name, price))
                    elif customer:
                        history[rng.randrange(len(history))] = (customer, code, name, price)
                yield row
                emitted += 1
                if emitted < rows and rng.random() < 0.01:  # an exact duplicate line, as in the data
                    yield row
                    emitted += 1


def write_csv(path: Path, rows: int, seed: int = 42) -> int:
    """Write `rows` generated lines (plus a header) to `path`; gzip if it ends in .gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = gzip.open(path, "wb", compresslevel=5) if path.suffix == ".gz" else open(path, "wb")
    with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(HEADER)
        count = 0
        for batch in batched(generate_rows(rows, seed), 10_000):
            writer.writerows(batch)
            count += len(batch)
    return count
