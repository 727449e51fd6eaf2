"""Exact money: integers of thousandths inside, decimal strings outside."""

from __future__ import annotations

from decimal import Decimal


def milli_to_decimal(milli: int) -> Decimal:
    return Decimal(milli).scaleb(-3)


def format_money(milli: int | None) -> str | None:
    """`139120` -> "139.12", `1` -> "0.001": exact, at least two decimals."""
    if milli is None:
        return None
    sign = "-" if milli < 0 else ""
    units, thousandths = divmod(abs(milli), 1000)
    fraction = f"{thousandths:03d}"
    if fraction.endswith("0"):
        fraction = fraction[:2]
    return f"{sign}{units}.{fraction}"


def decimal_to_milli(value: Decimal) -> int:
    """Exact conversion; raises ValueError if `value` has more than 3 decimals."""
    scaled = value.scaleb(3)
    if scaled != scaled.to_integral_value():
        raise ValueError("more than 3 decimal places")
    return int(scaled)


def parse_money_milli(text: str) -> int:
    """Inverse of format_money: "-1.5" -> -1500."""
    sign = -1 if text.startswith("-") else 1
    units, _, fraction = text.lstrip("-").partition(".")
    return sign * (int(units) * 1000 + int((fraction + "000")[:3]))
