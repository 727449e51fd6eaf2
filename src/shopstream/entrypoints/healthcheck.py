"""A container's health check: `python -m shopstream.entrypoints.healthcheck NAME` exits 0 if healthy.

HTTP services and consumers answer GET /health on their port; the bulk-loader touches a
heartbeat file while it waits, so a fresh file means it is alive and not stuck in a load
(a load itself may take long: a scan that is still running counts as healthy for a while).
"""

from __future__ import annotations

import sys
import time
import urllib.request

from shopstream.config import Settings
from shopstream.entrypoints.services import HTTP_SERVICES, consumer_port

BULK_LOAD_GRACE_SECONDS = 3600.0


def healthy(name: str, settings: Settings) -> bool:
    if name == "bulk-loader":
        try:
            return time.time() - settings.bulk_heartbeat_path.stat().st_mtime < BULK_LOAD_GRACE_SECONDS
        except FileNotFoundError:
            return False
    port = HTTP_SERVICES[name].port(settings) if name in HTTP_SERVICES else consumer_port(settings, name)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(0 if healthy(sys.argv[1], Settings()) else 1)
