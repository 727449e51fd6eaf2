"""What the operational store answers: invoices and customer summaries (METRICS.md)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

import orjson

from shopstream.domain.money import format_money


@dataclass(frozen=True, slots=True)
class InvoiceHeader:
    invoice_no: str
    invoice_date: datetime  # min(invoice_date) over the invoice's lines
    customer_id: str | None
    country: str
    line_count: int
    total_milli: int

    @property
    def cancelled(self) -> bool:
        return self.invoice_no.startswith("C")

    def as_dict(self) -> dict:
        return {
            "invoice_no": self.invoice_no,
            "invoice_date": self.invoice_date.isoformat(sep=" "),
            "customer_id": self.customer_id,
            "country": self.country,
            "cancelled": self.cancelled,
            "line_count": self.line_count,
            "total": format_money(self.total_milli),
        }


@dataclass(frozen=True, slots=True)
class InvoiceLineView:
    event_id: str
    stock_code: str
    description: str | None
    quantity: int
    unit_price_milli: int
    invoice_date: datetime

    def as_dict(self) -> dict:
        return {
            "event_id": self.event_id,
            "stock_code": self.stock_code,
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": format_money(self.unit_price_milli),
            "line_total": format_money(self.quantity * self.unit_price_milli),
            "invoice_date": self.invoice_date.isoformat(sep=" "),
        }


@dataclass(frozen=True, slots=True)
class Invoice:
    header: InvoiceHeader
    lines: list[InvoiceLineView]

    def as_dict(self) -> dict:
        return self.header.as_dict() | {"lines": [line.as_dict() for line in self.lines]}


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    """METRICS.md "customer summary"."""

    customer_id: str
    first_invoice_date: datetime
    last_invoice_date: datetime
    invoices: int  # distinct non-cancellation invoices
    net_spend_milli: int  # all the customer's lines
    returns_milli: int  # cancellation lines (negative)
    gross_sales_milli: int  # sale lines

    @property
    def average_order_value_milli(self) -> int | None:
        """Gross sales / invoices, rounded half-up to the thousandth."""
        if not self.invoices:
            return None
        quotient, remainder = divmod(self.gross_sales_milli, self.invoices)
        return quotient + (1 if 2 * remainder >= self.invoices else 0)

    def as_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "first_invoice_date": self.first_invoice_date.isoformat(sep=" "),
            "last_invoice_date": self.last_invoice_date.isoformat(sep=" "),
            "invoices": self.invoices,
            "net_spend": format_money(self.net_spend_milli),
            "returns": format_money(self.returns_milli),
            "gross_sales": format_money(self.gross_sales_milli),
            "average_order_value": format_money(self.average_order_value_milli),
        }


@dataclass(frozen=True, slots=True)
class InvoicePage:
    invoices: list[InvoiceHeader]
    next_cursor: str | None
    total_invoices: int
    net_spend_milli: int


class InvalidCursor(ValueError):
    """A pagination cursor that this store did not make."""


def encode_cursor(header: InvoiceHeader) -> str:
    """The opaque `next_cursor`: the last row's (invoice_date, invoice_no) in the newest-first order."""
    raw = orjson.dumps([header.invoice_date.isoformat(sep=" "), header.invoice_no])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        date, no = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        datetime.fromisoformat(date)
        return str(date), str(no)
    except Exception:
        raise InvalidCursor(f"invalid cursor {cursor[:40]!r}") from None
