"""API keys from AWS Secrets Manager (the ECS setup), against moto's server."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from shopstream.auth.keys import new_key
from shopstream.bootstrap import Container
from shopstream.config import Settings
from tests.conftest import free_port


@pytest.fixture(scope="module")
def moto_server():
    port = free_port()
    binary = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    process = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            break
        except httpx.TransportError:
            assert process.poll() is None and time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(10)


def test_keys_are_read_from_a_secret_and_refreshed(moto_server, monkeypatch, tmp_path):
    import boto3

    for name, value in {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    key, record = new_key(["ingest:write"], name="ecs")
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name="shopstream/api-keys",
                               SecretString=orjson.dumps({"keys": [record.as_json()]}).decode())["ARN"]
    container = Container(Settings(data_dir=tmp_path, api_keys_secret_arn=arn))
    ring = container.keyring
    assert ring.authenticate(key).scopes == {"ingest:write"}

    rotated, new_record = new_key(["invoices:read"])
    client.put_secret_value(SecretId=arn, SecretString=orjson.dumps([new_record.as_json()]).decode())
    assert ring.refresh_secret()
    ring._rebuild()
    assert ring.authenticate(rotated) is not None and ring.authenticate(key) is None
    container.close()


def test_an_unreadable_secret_is_a_logged_error_not_a_crash(moto_server, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    container = Container(Settings(data_dir=tmp_path, api_keys_secret_arn="arn:aws:secretsmanager:eu-west-1:"
                                   "123456789012:secret:missing-AbCdEf"))
    assert len(container.keyring) == 0
    assert "could not read the API keys secret (ResourceNotFoundException" in caplog.text
    container.close()
