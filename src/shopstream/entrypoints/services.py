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

        run_bulk_loader(Container(settings, bulk=True), _stop_on_signals())
    else:
        raise SystemExit(f"unknown service {name!r}; one of: {', '.join(ALL_SERVICES)}")
