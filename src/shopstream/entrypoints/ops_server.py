"""A consumer's operations server: /health, /ready and /metrics over the shared HTTP layer
(the same auth, request ids and metrics as the APIs), served by uvicorn in a thread."""

from __future__ import annotations

import logging
import threading

import uvicorn

from shopstream import metrics
from shopstream.bootstrap import Container
from shopstream.consumer import ConsumerState
from shopstream.entrypoints.http import create_app

log = logging.getLogger("shopstream.ops")


class OpsServer:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.server, self.thread = server, thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def start_ops_server(group: str, container: Container, state: ConsumerState, host: str, port: int) -> OpsServer:
    # A separate stream handle: the consumer's reader keeps its own connection.
    stream = container.stream

    def lag() -> float:
        try:
            return float(stream.status([group])[0].lag)
        except Exception:  # a scrape must not fail because the stream is busy
            return float("nan")

    metrics.CONSUMER_LAG.labels(group).set_function(lag)
    app = create_app(
        group, container,
        readiness={"stream": lambda: stream.status([group]), "sink": state.check},
        title=f"shopstream {group} operations",
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ops-server", daemon=True)
    thread.start()
    log.info("%s: operations server on http://%s:%d (/health, /ready, /metrics)", group, host, port)
    return OpsServer(server, thread)
