"""bulk-loader: a thin entrypoint; the service itself lives in the shopstream package.

Loads every file that lands in the inbox (SHOPSTREAM_BULK_INBOX, default <data dir>/inbox)
on a cron schedule (SHOPSTREAM_BULK_SCHEDULE) into the lake, the store and the warehouse,
then moves it to processed/ or failed/ with a JSON report beside it.
Run it alone with `python services/bulk-loader/main.py` or `shopstream service bulk-loader`;
`shopstream up` runs it beside the others.
"""

from shopstream.entrypoints.services import run_service

if __name__ == "__main__":
    run_service("bulk-loader")
