"""The bulk-loader service: an inbox (a directory, or an S3 prefix on the aws profile)
loaded on a cron-style schedule.

On each tick, every file that has settled in the inbox is claimed, loaded
(`load_file`) and moved to `processed/` (or `failed/` if it could not be read), with a
JSON report beside it: `<name>.report.json`. A load that fails for any other reason (a
sink or the network) puts the file back: the next tick loads it again, idempotently, up
to SHOPSTREAM_BULK_MAX_ATTEMPTS times per loader process; then it goes to `failed/` with
the last error (move it back into the inbox to try again). How a claim works is the inbox adapter's
business (ports.Inbox): two loaders at once never load the same file twice, and a dead
loader's claim is taken over and loaded again, idempotently on event ids.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime

from croniter import croniter

from shopstream.bootstrap import Container
from shopstream.bulk.load import LoadInterrupted, load_file
from shopstream.files import CsvFormatError
from shopstream.ports import Claim, Inbox, InboxItemGone, Outcome

log = logging.getLogger("shopstream.bulk_loader")
HEARTBEAT_SECONDS = 10.0  # between touches of the heartbeat file while waiting
PROCESSED, FAILED = "processed", "failed"


def load_claimed(inbox: Inbox, claim: Claim, container: Container, stop: threading.Event | None = None,
                 failures: Counter | None = None) -> Outcome | None:
    """Load a claimed file and file it away; None if it was gone already or goes back to the
    inbox. `failures` counts each file's failed loads across ticks."""
    started = datetime.now()
    base = {"file": claim.name, "started_at": started.isoformat(sep=" ", timespec="seconds"),
            "loader": inbox.identity}
    log.info("loading %s", claim.name)
    try:
        with inbox.fetch(claim) as local:
            summary = load_file(local.path, container, source=f"bulk:{claim.name}", stop=stop,
                                digest=local.digest, label=local.label)
    except InboxItemGone:
        inbox.release(claim)
        return None
    except LoadInterrupted:
        inbox.release(claim)
        raise
    except CsvFormatError as error:  # unreadable or unsupported: the file goes to failed/ with the reason
        log.warning("%s failed: %s", claim.name, error)
        failure = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        return inbox.finish(claim, FAILED, base | failure)
    except Exception as error:  # a sink or the network failed: retried next tick, a few times
        failures = Counter() if failures is None else failures
        failures[claim.name] += 1
        attempts, limit = failures[claim.name], container.settings.bulk_max_attempts
        if attempts >= limit:
            log.exception("%s: load failed %d times; moving it to %s/", claim.name, attempts, FAILED)
            del failures[claim.name]
            failure = {"status": "failed", "attempts": attempts, "error": f"{type(error).__name__}: {error}"}
            return inbox.finish(claim, FAILED, base | failure)
        log.exception("%s: load failed (attempt %d of %d); it stays in the inbox for the next tick",
                      claim.name, attempts, limit)
        inbox.release(claim)
        return None
    log.info("%s: %d rows, %d loaded, %d already present, %d rejected, %.1fs", claim.name, summary.rows,
             summary.loaded, summary.already_present, summary.rejected, summary.seconds)
    report = base | {"status": "processed"} | summary.as_dict() | {"file": claim.name}
    return inbox.finish(claim, PROCESSED, report)


def scan_once(inbox: Inbox, container: Container, stop: threading.Event | None = None,
              failures: Counter | None = None) -> list[Outcome]:
    """One tick: finish interrupted loads, then load every waiting file."""
    outcomes = []
    for entry in inbox.pending():
        if stop is not None and stop.is_set():
            break
        claim = inbox.claim(entry)
        if claim is None:
            continue  # another loader was quicker
        try:
            outcome = load_claimed(inbox, claim, container, stop, failures)
        except LoadInterrupted:
            break
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def run_bulk_loader(container: Container, stop: threading.Event) -> None:
    settings = container.settings
    if not croniter.is_valid(settings.bulk_schedule):
        raise SystemExit(f"SHOPSTREAM_BULK_SCHEDULE={settings.bulk_schedule!r} is not a cron expression "
                         "(e.g. '*/5 * * * *', or with seconds '* * * * * */10')")
    inbox = container.inbox
    schedule = croniter(settings.bulk_schedule, datetime.now())
    heartbeat = settings.bulk_heartbeat_path
    heartbeat.parent.mkdir(parents=True, exist_ok=True)
    if settings.bulk_once:
        try:
            scan_once(inbox, container, stop)
        finally:
            container.close()
        return
    log.info("bulk-loader: watching %s on schedule %r", inbox.where, settings.bulk_schedule)
    failures: Counter = Counter()  # failed loads per file, across ticks
    try:
        while not stop.is_set():
            due = schedule.get_next(datetime)
            while (wait := (due - datetime.now()).total_seconds()) > 0 and not stop.is_set():
                heartbeat.touch()  # the container's health check: alive and not stuck
                stop.wait(min(wait, HEARTBEAT_SECONDS))
            if stop.is_set():
                break
            heartbeat.touch()
            try:
                scan_once(inbox, container, stop, failures)
            except Exception:  # the inbox itself unreachable (S3, DynamoDB): try again next tick
                log.exception("bulk-loader: this tick failed; next tick at the schedule")
    finally:
        container.close()
        log.info("bulk-loader: stopped")
