"""invoice-api: invoices and customer histories from the operational store."""

from __future__ import annotations

from fastapi import Query

from shopstream.auth.keys import Principal
from shopstream.bootstrap import Container
from shopstream.domain.money import format_money
from shopstream.domain.parsing import Invalid, parse_customer_id, parse_invoice_no
from shopstream.entrypoints.http import ApiError, FastJSONResponse, create_app, require_scope
from shopstream.ports import InvalidCursor


def _invoice_no(text: str) -> str:
    try:
        return parse_invoice_no(text)
    except Invalid:
        raise ApiError(404, "not_found", f"no invoice {text[:40]!r} (invoice numbers look like "
                       "536365, or C536365 for a cancellation)") from None


def _customer_id(text: str, caller: Principal) -> str:
    """The customer id, if the caller may see that customer; a customer token asking for
    another customer gets the same 404 as for a customer that does not exist."""
    try:
        customer_id = parse_customer_id(text)
    except Invalid:
        customer_id = None
    if customer_id is None or not caller.may_see_customer(customer_id):
        raise ApiError(404, "not_found", f"no customer {text[:40]!r}")
    return customer_id


# Customer tokens may call these endpoints; each shows them only their own customer.
reader = require_scope("invoices:read", customer_scoped=True)


def build_app(container: Container | None = None):
    container = container or Container()
    app = create_app(
        "invoice-api",
        container,
        readiness={"store": lambda: container.store.customer("-")},
        title="shopstream invoice API",
        description="Invoices and purchase histories, as customers see them.",
    )
    app.state.container = container
    app.state.closers.append(container.close)

    @app.get("/invoices/{invoice_no:path}", tags=["invoices"], summary="One invoice with its lines")
    def get_invoice(invoice_no: str, caller: Principal = reader) -> FastJSONResponse:
        invoice = container.store.invoice(_invoice_no(invoice_no))
        if invoice is None or not caller.may_see_customer(invoice.header.customer_id):
            raise ApiError(404, "not_found", f"no invoice {invoice_no[:40]!r}")
        return FastJSONResponse(invoice.as_dict())

    @app.get("/customers/{customer_id}", tags=["customers"], summary="A customer's summary")
    def get_customer(customer_id: str, caller: Principal = reader) -> FastJSONResponse:
        summary = container.store.customer(_customer_id(customer_id, caller))
        if summary is None:
            raise ApiError(404, "not_found", f"no customer {customer_id[:40]!r}")
        return FastJSONResponse(summary.as_dict())

    @app.get(
        "/customers/{customer_id}/invoices",
        tags=["customers"],
        summary="A customer's invoices, newest first",
    )
    def get_customer_invoices(
        customer_id: str,
        limit: int = Query(20, ge=1, le=200, description="invoices per page"),
        cursor: str | None = Query(None, max_length=500, description="next_cursor of the previous page"),
        caller: Principal = reader,
    ) -> FastJSONResponse:
        cid = _customer_id(customer_id, caller)
        try:
            page = container.store.customer_invoices(cid, limit, cursor)
        except InvalidCursor as error:
            raise ApiError(400, "bad_request", str(error)) from None
        if page is None:
            raise ApiError(404, "not_found", f"no customer {customer_id[:40]!r}")
        return FastJSONResponse({
            "customer_id": cid,
            "invoices": [h.as_dict() for h in page.invoices],
            "next_cursor": page.next_cursor,
            "totals": {"invoices": page.total_invoices, "net_spend": format_money(page.net_spend_milli)},
        })

    return app
