"""The transaction line: the one record every port carries.

Money is exact: unit prices have at most three decimal places, so every amount is
also kept as an integer number of thousandths ("milli") for exact sums in sinks
that have no decimal type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

# Stock codes that are not products (METRICS.md: "service line").
SERVICE_STOCK_CODES = frozenset(
    {"POST", "DOT", "C2", "M", "m", "D", "S", "B", "CRUK", "BANK CHARGES", "AMAZONFEE", "PADS"}
)


# Not frozen: a frozen dataclass's __init__ costs several times more, and these are
# built once per line on the hot path. Treat them as immutable all the same.
@dataclass(slots=True)
class TransactionLine:
    invoice_no: str
    stock_code: str
    description: str | None
    quantity: int
    invoice_date: datetime  # naive, shop-local
    unit_price_milli: int  # unit price in thousandths
    customer_id: str | None
    country: str

    @property
    def unit_price(self) -> Decimal:
        return Decimal(self.unit_price_milli).scaleb(-3)

    @property
    def line_total_milli(self) -> int:
        return self.quantity * self.unit_price_milli

    @property
    def line_total(self) -> Decimal:
        return Decimal(self.line_total_milli).scaleb(-3)

    @property
    def is_cancellation(self) -> bool:
        return self.invoice_no.startswith("C")

    @property
    def is_adjustment(self) -> bool:
        return self.invoice_no.startswith("A")

    @property
    def is_service(self) -> bool:
        return self.stock_code in SERVICE_STOCK_CODES

    @property
    def is_sale(self) -> bool:
        return (
            not self.is_cancellation
            and not self.is_adjustment
            and self.quantity > 0
            and self.unit_price_milli > 0
        )


@dataclass(slots=True)
class Event:
    """A line as accepted: the canonical line, its identity and its envelope."""

    event_id: str
    received_at: datetime
    source: str
    line: TransactionLine
    raw: Any  # the line as the client sent it (JSON object or CSV row as a dict)


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected line, kept with its reasons so nothing is silently dropped."""

    event_id: str
    received_at: datetime
    source: str
    index: int  # position in the request, or the row number in a file
    errors: tuple[FieldError, ...]
    raw: Any


@dataclass(frozen=True, slots=True)
class Totals:
    """What `verify` compares: distinct lines and their exact money."""

    lines: int
    amount_milli: int

    @property
    def amount(self) -> Decimal:
        return Decimal(self.amount_milli).scaleb(-3)

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.lines + other.lines, self.amount_milli + other.amount_milli)


ZERO = Totals(0, 0)
