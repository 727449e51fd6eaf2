"""schemathesis against each API's own OpenAPI schema, over real HTTP: valid and invalid
inputs for every operation, never a 5xx, always a JSON error body for a 4xx.

Parametrized over services: every API in entrypoints/services.py HTTP_SERVICES (so
analytics-api joins by being registered there) and a consumer's operations server.
Cases per operation: SHOPSTREAM_SCHEMATHESIS_EXAMPLES.
"""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from shopstream.entrypoints.services import HTTP_SERVICES

pytestmark = pytest.mark.e2e

SERVICES = (*HTTP_SERVICES, "dynamo-writer")  # dynamo-writer: a consumer's ops server
EXAMPLES = int(os.environ.get("SHOPSTREAM_SCHEMATHESIS_EXAMPLES", "60"))
RAN: dict[str, int] = {}


@pytest.mark.parametrize("service", SERVICES)
def test_no_input_gets_a_5xx(stack, service):
    url = stack.service_urls()[service]
    schema = schemathesis.openapi.from_url(url + "/openapi.json", headers=stack.auth, wait_for_schema=60)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    problems: list[str] = []

    for operation in operations:
        # valid inputs and, where the schema allows them, invalid ones
        strategy = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in GenerationMode))

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case):
            response = case.call(base_url=url, headers=stack.auth, timeout=30)
            RAN[service] = RAN.get(service, 0) + 1
            label = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
            if response.status_code >= 500:
                problems.append(label)
            elif response.status_code >= 400:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if not (isinstance(body, dict) and body.get("error") and body.get("message")):
                    problems.append("no clear JSON error: " + label)

        run()
    print(f"schemathesis: {service}: {RAN.get(service, 0)} cases over {len(operations)} operations")
    assert not problems, "\n".join(problems[:20])
    assert httpx.get(url + "/health").status_code == 200  # and the worker still answers

