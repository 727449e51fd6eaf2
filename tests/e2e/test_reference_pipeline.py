"""The issue's acceptance run, as a user does it: up, send the reference file, verify."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import reference_file

pytestmark = pytest.mark.e2e


def verify_rows(output: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for label in ("accepted", "raw lake", "operational store", "warehouse"):
        match = re.search(rf"{label}\s*│\s*([\d,]+)\s*│\s*([\d,.]+)", output)
        assert match, output
        rows[label] = match.groups()
    return rows


@pytest.fixture(scope="module")
def sent(stack):
    result = stack.cli("send", str(reference_file()), "--url", stack.ingest_url)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_send_accepts_every_line(sent):
    assert "541,909 accepted, 0 already there, 0 rejected" in sent.stdout


def test_verify_shows_every_line_and_every_penny_in_every_sink(stack, sent):
    result = stack.cli("verify", "--wait", "120")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = verify_rows(result.stdout)
    assert set(rows.values()) == {("541,909", "9,747,747.934")}
    assert re.search(r"dead letters\s*│\s*0\s", result.stdout)
    assert "all sinks match the accepted lines" in result.stdout


def test_invoice_536365(stack, sent):
    invoice = httpx.get(f"{stack.invoice_url}/invoices/536365", headers=stack.auth).json()
    assert (invoice["line_count"], invoice["total"], len(invoice["lines"])) == (7, "139.12", 7)
    assert invoice["customer_id"] == "17850" and invoice["cancelled"] is False
    assert invoice["invoice_date"] == "2010-12-01 08:26:00"


def test_customer_17850(stack, sent):
    summary = httpx.get(f"{stack.invoice_url}/customers/17850", headers=stack.auth).json()
    assert summary["invoices"] == 34
    assert summary["net_spend"] == "5288.63"
    seen, cursor = [], None
    while True:
        page = httpx.get(
            f"{stack.invoice_url}/customers/17850/invoices", params={"limit": 10, **({"cursor": cursor} if cursor else {})},
            headers=stack.auth,
        ).json()
        seen += page["invoices"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == page["totals"]["invoices"] == 35  # 34 + one cancellation
    dates = [(i["invoice_date"], i["invoice_no"]) for i in seen]
    assert dates == sorted(dates, reverse=True)
    assert page["totals"]["net_spend"] == "5288.63"


def test_sending_the_file_again_changes_nothing(stack, sent):
    again = stack.cli("send", str(reference_file()), "--url", stack.ingest_url)
    assert "0 accepted, 541,909 already there, 0 rejected" in again.stdout, again.stdout
    result = stack.cli("verify", "--wait", "60")
    assert result.returncode == 0, result.stdout
    assert set(verify_rows(result.stdout).values()) == {("541,909", "9,747,747.934")}
