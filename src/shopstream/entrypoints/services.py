"""Every service by name: how `shopstream service NAME` (and each Dockerfile) starts it."""

from __future__ import annotations

import logging
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
ALL_SERVICES = (*HTTP_SERVICES, *CONSUMER_SERVICES)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_service(name: str, host: str | None = None, port: int | None = None) -> None:
    import importlib

    from shopstream.bootstrap import Container

    configure_logging()
    settings = Settings()
    if name in HTTP_SERVICES:
        import uvicorn

        service = HTTP_SERVICES[name]
        app = importlib.import_module(service.app_module).build_app(Container(settings))
        uvicorn.run(
            app,
            host=host or settings.host,
            port=port or service.port(settings),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=10,  # SIGTERM: finish in-flight requests, then exit 0
        )
    elif name in CONSUMER_SERVICES:
        from shopstream.consumer import CONSUMERS, run_consumer

        run_consumer(CONSUMERS[name], Container(settings))
    else:
        raise SystemExit(f"unknown service {name!r}; one of: {', '.join(ALL_SERVICES)}")
