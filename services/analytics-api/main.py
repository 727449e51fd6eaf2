"""analytics-api: a thin entrypoint; the service itself lives in the shopstream package.

Serves GET /analytics/... and the dashboard page at /.
Run it alone with `python services/analytics-api/main.py` or `shopstream service analytics-api`;
`shopstream up` runs it beside the others. Settings come from SHOPSTREAM_* variables.
"""

from shopstream.entrypoints.services import run_service

if __name__ == "__main__":
    run_service("analytics-api")
