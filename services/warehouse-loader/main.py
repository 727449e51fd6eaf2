"""warehouse-loader: a thin entrypoint; the service itself lives in the shopstream package.

Run it alone with `python services/warehouse-loader/main.py` or `shopstream service warehouse-loader`;
`shopstream up` runs it beside the others. Settings come from SHOPSTREAM_* variables.
"""

from shopstream.entrypoints.services import run_service

if __name__ == "__main__":
    run_service("warehouse-loader")
