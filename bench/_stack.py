"""Start the local stack for a benchmark (the same processes `shopstream up` runs)."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path

from shopstream.auth.keyring import ensure_dev_key
from shopstream.entrypoints.services import ALL_SERVICES
from shopstream.supervisor import Supervisor, service_env, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "data" / "online-retail.csv.gz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_key(data_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """An admin key for a service started by a benchmark: (its env, the client's headers)."""
    keys_file = data_dir / "api-keys.json"
    key = ensure_dev_key(keys_file, data_dir / "dev-api-key")
    return {"SHOPSTREAM_API_KEYS_FILE": str(keys_file)}, {"Authorization": f"Bearer {key}"}


@contextmanager
def local_stack(data_dir: Path, quiet: bool = True, extra_env: dict[str, str] | None = None, **settings: str):
    """Yields (urls, env, supervisor); env["SHOPSTREAM_API_KEY"] is an admin key for clients."""
    ports = {"SHOPSTREAM_INGEST_PORT": free_port(), "SHOPSTREAM_INVOICE_PORT": free_port(),
             "SHOPSTREAM_ANALYTICS_PORT": free_port()}
    keys_file = data_dir / "api-keys.json"
    env = service_env({"SHOPSTREAM_DATA_DIR": str(data_dir), "SHOPSTREAM_API_KEYS_FILE": str(keys_file),
                       **{k: str(v) for k, v in ports.items()}, **settings, **(extra_env or {})})
    env["SHOPSTREAM_API_KEY"] = ensure_dev_key(keys_file, data_dir / "dev-api-key")
    supervisor = Supervisor(ALL_SERVICES, env, lambda *a: None if quiet else print(*a))
    supervisor.start()
    urls = {"ingest": f"http://127.0.0.1:{ports['SHOPSTREAM_INGEST_PORT']}",
            "invoice": f"http://127.0.0.1:{ports['SHOPSTREAM_INVOICE_PORT']}"}
    try:
        wait_healthy(list(urls.values()))
        yield urls, env, supervisor
    finally:
        supervisor.stop()
