"""docker-compose.yml is accepted by the installed compose (v2 or 1.29) and publishes every port from a variable."""

from __future__ import annotations

import os
import subprocess

import yaml

from tests.conftest import ROOT
from tests.containers.engine import compose_command


def config(**variables: str) -> dict:
    result = subprocess.run([*compose_command(), "--profile", "tools", "config"], cwd=ROOT, capture_output=True,
                            text=True, env=dict(os.environ, **variables))
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def published(doc: dict) -> dict[str, str]:
    ports = {}
    for name, service in doc["services"].items():
        for port in service.get("ports", []):
            ports[name] = str(port["published"]) if isinstance(port, dict) else str(port).split(":")[-2]
    return ports


def test_the_defaults_and_the_variables_for_every_published_port(images):
    assert published(config()) == {"ingest-api": "8000", "invoice-api": "8001", "analytics-api": "8002",
                                   "emulator": "4566", "warehouse": "5433"}
    moved = config(INGEST_PORT="18000", INVOICE_PORT="18001", ANALYTICS_PORT="18002", EMULATOR_PORT="14566",
                   WAREHOUSE_PORT="15433")
    assert published(moved) == {"ingest-api": "18000", "invoice-api": "18001", "analytics-api": "18002",
                                "emulator": "14566", "warehouse": "15433"}


def test_one_dev_key_for_the_services_and_the_cli(images):
    doc = config(SHOPSTREAM_API_KEY="ss_mine_secret")
    keys = {name: service["environment"].get("SHOPSTREAM_API_KEY") for name, service in doc["services"].items()
            if name not in ("emulator", "warehouse")}
    assert set(keys.values()) == {"ss_mine_secret"} and "cli" in keys and "ingest-api" in keys


def test_the_services_wait_for_init_and_restart(images):
    services = config()["services"]
    for name in ("ingest-api", "invoice-api", "analytics-api", "s3-archiver", "dynamo-writer", "warehouse-loader",
                 "bulk-loader"):
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully", name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["init"]["depends_on"]["emulator"]["condition"] == "service_healthy"
    assert services["cli"]["profiles"] == ["tools"]
