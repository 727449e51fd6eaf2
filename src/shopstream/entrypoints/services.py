"""Every service by name: how `shopstream service NAME` (and each Dockerfile) starts it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shopstream.config import Settings


@dataclass(frozen=True)
class HttpService:
    name: str
    app_module: str  # module with build_app(container)
    port: Callable[[Settings], int]


HTTP_SERVICES = {
    s.name: s
    for s in (
        HttpService("ingest-api", "shopstream.entrypoints.ingest_api", lambda s: s.ingest_port),
        HttpService("invoice-api", "shopstream.entrypoints.invoice_api", lambda s: s.invoice_port),
        HttpService("analytics-api", "shopstream.entrypoints.analytics_api", lambda s: s.analytics_port),
    )
}
CONSUMER_SERVICES = ("s3-archiver", "dynamo-writer", "warehouse-loader")
SCHEDULED_SERVICES = ("bulk-loader",)
ALL_SERVICES = (*HTTP_SERVICES, *CONSUMER_SERVICES, *SCHEDULED_SERVICES)


def consumer_port(settings: Settings, name: str) -> int:
    """The port of a consumer's operations server (/health, /ready, /metrics); 0 = none."""
    return getattr(settings, name.replace("-", "_") + "_port")


def consumer_port_variable(name: str) -> str:
    return "SHOPSTREAM_" + name.replace("-", "_").upper() + "_PORT"


def configure_logging(service: str = "shopstream", fmt: str = "json", level: str = "INFO") -> None:
    from shopstream.observability import configure_logging as configure

    configure(service, fmt, level)


def run_service(name: str, host: str | None = None, port: int | None = None) -> None:
    import importlib

    from shopstream.bootstrap import Container
    from shopstream.entrypoints.http import undeclared_routes
    from shopstream.memory import lean_memory

    lean_memory()
    settings = Settings()
    configure_logging(name, settings.log_format)
    if name in HTTP_SERVICES:
        import uvicorn

        service = HTTP_SERVICES[name]
        app = importlib.import_module(service.app_module).build_app(Container(settings))
        if undeclared := undeclared_routes(app):
            raise SystemExit(f"{name}: routes without a declared scope (require_scope): {undeclared}")
        if name == "ingest-api" and settings.ingest_workers > 1:
            del app
            _run_workers(service, settings, host, port)
            return
        # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal to whatever
        # handler was there before it: make that a no-op so a clean drain exits 0.
        import signal

        signal.signal(signal.SIGTERM, lambda *_: None)
        uvicorn.run(
            app,
            host=host or settings.host,
            port=port or service.port(settings),
            log_level="warning",
            log_config=None,  # our JSON logging, not uvicorn's own format
            access_log=False,
            timeout_graceful_shutdown=10,  # SIGTERM: finish in-flight requests, then exit 0
            proxy_headers=False,  # nothing reads the client's address: skip X-Forwarded-* parsing
        )
    elif name in CONSUMER_SERVICES:
        from shopstream.consumer import CONSUMERS, ConsumerState, run_consumer
        from shopstream.entrypoints.ops_server import start_ops_server

        container = Container(settings)
        state = ConsumerState()
        ops_port = port or consumer_port(settings, name)
        server = start_ops_server(name, container, state, host or settings.host, ops_port) if ops_port else None
        try:
            run_consumer(CONSUMERS[name], container, state=state)
        finally:
            if server is not None:
                server.stop()
    elif name == "bulk-loader":
        from shopstream.bulk.inbox import run_bulk_loader
        from shopstream.consumer import _stop_on_signals

        run_bulk_loader(Container(settings, bulk=True), _stop_on_signals())
    else:
        raise SystemExit(f"unknown service {name!r}; one of: {', '.join(ALL_SERVICES)}")


def _run_workers(service: HttpService, settings: Settings, host: str | None, port: int | None) -> None:
    """uvicorn's own supervisor: N worker processes on one socket, each building its app
    (worker_app); a worker that dies is replaced; SIGTERM drains them all. Their metrics
    meet in a directory (prometheus-client's multiprocess mode), emptied on start."""
    import os
    import shutil
    import signal

    import uvicorn

    metrics_dir = settings.data_dir / f".metrics-{service.name}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # the spawned workers inherit it
    os.environ["SHOPSTREAM_WORKER_OF"] = service.name
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn's supervisor installs its own
    uvicorn.run(
        "shopstream.entrypoints.services:worker_app", factory=True, workers=settings.ingest_workers,
        host=host or settings.host, port=port or service.port(settings), log_level="warning",
        log_config=None, access_log=False, timeout_graceful_shutdown=10, proxy_headers=False,
    )


def worker_app():
    """The app of one worker process of a service run with several (see _run_workers)."""
    import importlib
    import os

    from shopstream.bootstrap import Container
    from shopstream.memory import lean_memory

    name = os.environ["SHOPSTREAM_WORKER_OF"]
    _die_with_parent()
    lean_memory()
    settings = Settings()
    configure_logging(name, settings.log_format)
    return importlib.import_module(HTTP_SERVICES[name].app_module).build_app(Container(settings))


def _die_with_parent() -> None:
    """A worker must not outlive its supervisor (SIGKILLed, it cannot stop them): it would
    keep the port, and the service could not start again. Linux: PR_SET_PDEATHSIG."""
    import ctypes
    import ctypes.util
    import os
    import signal

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "prctl"):
        parent = os.getppid()
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call: nobody would signal us
            os._exit(1)
