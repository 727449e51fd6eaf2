"""Every service by name: how `shopstream service NAME` (and each Dockerfile) starts it."""

from __future__ import annotations

import time
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


def _return_freed_memory_periodically(every_seconds: float = 2.0) -> None:
    """glibc keeps the pages of freed batches (a request's bodies, columns and Arrow buffers)
    in its heap; malloc_trim gives them back. Sending the reference file, ingest-api's RSS
    peaked 20-40 MB lower and settled 40 MB lower with it; a trim costs a few ms every 2 s."""
    import ctypes
    import ctypes.util
    import threading

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "malloc_trim"):
        return  # not glibc (e.g. musl, macOS): nothing to do

    def trim() -> None:
        while True:
            time.sleep(every_seconds)
            libc.malloc_trim(0)

    threading.Thread(target=trim, name="malloc-trim", daemon=True).start()


def run_service(name: str, host: str | None = None, port: int | None = None) -> None:
    import importlib

    from shopstream.bootstrap import Container
    from shopstream.entrypoints.http import undeclared_routes

    import pyarrow

    # Arrow's default pool (mimalloc) keeps freed batches mapped: with the system allocator
    # a service's peak RSS on the reference file fell by ~70 MB (ingest 313 -> 240 MB) at
    # no measured cost in speed (bench/pipeline.py).
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    _return_freed_memory_periodically()
    settings = Settings()
    configure_logging(name, settings.log_format)
    if name in HTTP_SERVICES:
        import uvicorn

        service = HTTP_SERVICES[name]
        app = importlib.import_module(service.app_module).build_app(Container(settings))
        if undeclared := undeclared_routes(app):
            raise SystemExit(f"{name}: routes without a declared scope (require_scope): {undeclared}")
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

        run_bulk_loader(Container(settings), _stop_on_signals())
    else:
        raise SystemExit(f"unknown service {name!r}; one of: {', '.join(ALL_SERVICES)}")
