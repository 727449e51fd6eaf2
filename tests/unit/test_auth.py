"""Keys, key sources, scopes, rate limits, and the rule that every route declares a scope."""

from __future__ import annotations

import importlib
import time

import orjson
import pytest

from shopstream.auth.keyring import KeyRing, ensure_dev_key, read_file, update_file
from shopstream.auth.keys import KeyFormatError, KeyRecord, Principal, new_key, split_key
from shopstream.auth.ratelimit import RateLimiter
from shopstream.bootstrap import Container
from shopstream.config import Settings
from shopstream.entrypoints.http import create_app, require_scope, undeclared_routes
from shopstream.entrypoints.services import HTTP_SERVICES


def test_a_key_is_stored_as_a_salted_hash_and_checked():
    key, record = new_key(["ingest:write"], name="shop")
    key_id, secret = split_key(key)
    assert key_id == record.id and secret not in orjson.dumps(record.as_json()).decode()
    assert record.matches(secret) and not record.matches(secret + "x")
    _, other = new_key(["ingest:write"])
    assert other.salt != record.salt


@pytest.mark.parametrize("bad", ["", "ss_", "ss__x", "xx_abc_def", "ss_abc", "ss_" + "a" * 300])
def test_malformed_keys_are_refused(bad):
    assert split_key(bad) is None or KeyRing(env_json="[]").authenticate(bad) is None


def test_unknown_scopes_are_refused():
    with pytest.raises(KeyFormatError, match="unknown scopes"):
        new_key(["everything"])
    with pytest.raises(KeyFormatError, match="at least one scope"):
        new_key([])


def test_customer_tokens_read_invoices_of_their_customer_only():
    _, record = new_key(["admin"], customer_id="17850")  # a token never gets more than invoices:read
    token = Principal.of(record)
    assert record.scopes == ("invoices:read",)
    assert token.allows("invoices:read") and not token.allows("ingest:write") and not token.allows("admin")
    assert token.may_see_customer("17850") and not token.may_see_customer("12583")
    assert not token.may_see_customer(None)  # a guest's invoice
    admin = Principal.of(new_key(["admin"])[1])
    assert admin.allows("analytics:read") and admin.may_see_customer("12583")


def test_keys_come_from_env_file_and_are_merged(tmp_path):
    env_key, env_record = new_key(["analytics:read"])
    file_key, file_record = new_key(["ingest:write"])
    path = tmp_path / "keys.json"
    update_file(path, lambda records: [*records, file_record])
    assert path.stat().st_mode & 0o777 == 0o600
    ring = KeyRing(env_json=orjson.dumps({"keys": [env_record.as_json()]}).decode(), file=path)
    assert ring.authenticate(env_key).scopes == {"analytics:read"}
    assert ring.authenticate(file_key).scopes == {"ingest:write"}
    assert ring.authenticate(file_key[:-1] + "x") is None


def test_the_file_is_reread_when_it_changes(tmp_path):
    path = tmp_path / "keys.json"
    ring = KeyRing(file=path)
    key, record = new_key(["ingest:write"])
    update_file(path, lambda records: [record])
    assert ring.authenticate(key) is None
    assert ring.refresh_file()
    ring._rebuild()
    assert ring.authenticate(key) is not None
    update_file(path, lambda records: [])  # revoked
    ring.refresh_file()
    ring._rebuild()
    assert ring.authenticate(key) is None


def test_a_broken_keys_file_keeps_the_last_good_keys(tmp_path):
    path = tmp_path / "keys.json"
    key, record = new_key(["ingest:write"])
    update_file(path, lambda records: [record])
    ring = KeyRing(file=path)
    time.sleep(0.01)
    path.write_text("{not json")
    ring.refresh_file()
    ring._rebuild()
    assert ring.authenticate(key) is not None


def test_the_dev_key_is_reused_while_valid(tmp_path):
    keys, dev = tmp_path / "keys.json", tmp_path / "dev-api-key"
    first = ensure_dev_key(keys, dev)
    assert ensure_dev_key(keys, dev) == first
    assert dev.stat().st_mode & 0o777 == 0o600
    update_file(keys, lambda records: [])
    second = ensure_dev_key(keys, dev)
    assert second != first and [r.scopes for r in read_file(keys)] == [("admin",)]


def test_rate_limiter_token_bucket():
    limiter = RateLimiter(rate=1.0, burst=3)
    decisions = [limiter.check("k") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[3].retry_after == 1 and decisions[3].limit == 3
    assert dict(decisions[3].headers())[b"retry-after"] == b"1"
    assert limiter.check("other").allowed  # per key
    assert limiter.check("slow", rate=0.1, burst=1).allowed and limiter.check("slow", rate=0.1, burst=1).retry_after == 10


def test_record_validation():
    with pytest.raises(KeyFormatError, match="lacks"):
        KeyRecord.from_json({"id": "x", "scopes": ["admin"]})


@pytest.mark.parametrize("service", sorted(HTTP_SERVICES))
def test_every_route_of_every_service_declares_its_scope(service, tmp_path):
    module = importlib.import_module(HTTP_SERVICES[service].app_module)
    app = module.build_app(Container(Settings(data_dir=tmp_path)))
    assert undeclared_routes(app) == []


def test_a_route_without_a_scope_is_caught(tmp_path):
    app = create_app("x", Container(Settings(data_dir=tmp_path)), public_paths=("/", "/static/"))

    @app.get("/")
    def page() -> dict:  # declared public: a page that holds no data
        return {}

    @app.get("/open")
    def forgot() -> dict:
        return {}

    @app.get("/closed", dependencies=[require_scope("analytics:read")])
    def declared() -> dict:
        return {}

    assert undeclared_routes(app) == ["['GET'] /open"]


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")  # the library's own notice
def test_public_paths_are_open_and_everything_else_needs_a_key(tmp_path):
    from fastapi.testclient import TestClient

    app = create_app("x", Container(Settings(data_dir=tmp_path)), public_paths=("/", "/static/"))

    @app.get("/")
    def page() -> dict:
        return {"page": True}

    @app.get("/static/app.js")
    def asset() -> dict:
        return {"asset": True}

    @app.get("/staticky", dependencies=[require_scope("analytics:read")])
    def data() -> dict:
        return {}

    client = TestClient(app)
    assert client.get("/").status_code == client.get("/static/app.js").status_code == 200
    assert client.get("/staticky").status_code == client.get("/metrics").status_code == 401
    assert client.get("/docs").status_code == 401
