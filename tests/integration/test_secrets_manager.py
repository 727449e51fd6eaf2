"""API keys from AWS Secrets Manager (the ECS setup), against moto's server."""

from __future__ import annotations

import uuid

import orjson
import pytest

from shopstream.auth.keys import new_key
from shopstream.bootstrap import Container
from shopstream.config import Settings
from tests.awsenv import CREDENTIALS, REGION, moto_endpoint


@pytest.fixture
def moto_server(monkeypatch):
    """The session's moto server (tests/awsenv.py), with this process's AWS settings pointing at it."""
    url = moto_endpoint()
    for name, value in {"AWS_ENDPOINT_URL": url, "AWS_DEFAULT_REGION": REGION, **CREDENTIALS}.items():
        monkeypatch.setenv(name, value)
    return url


def test_keys_are_read_from_a_secret_and_refreshed(moto_server, tmp_path):
    import boto3

    key, record = new_key(["ingest:write"], name="ecs")
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name=f"shopstream/api-keys-{uuid.uuid4().hex[:8]}",
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


def test_an_unreadable_secret_is_a_logged_error_not_a_crash(moto_server, tmp_path, caplog):
    container = Container(Settings(data_dir=tmp_path, api_keys_secret_arn="arn:aws:secretsmanager:eu-west-1:"
                                   "123456789012:secret:missing-AbCdEf"))
    assert len(container.keyring) == 0
    assert "could not read the API keys secret (ResourceNotFoundException" in caplog.text
    container.close()
