"""The bulk-loader service: an inbox directory loaded on a cron-style schedule.

On each tick, every file that has settled in the inbox is claimed, loaded
(`load_file`) and moved to `processed/` (or `failed/` if it could not be read), with a
JSON report beside it: `<name>.report.json`.

Two loaders at once never load the same file twice: a file is claimed by an atomic
rename into `.claimed/` under the loader's identity (pid and process start time), and
only one rename can succeed. A claim whose loader died (SIGKILL, crash) is taken over
by the next tick of any loader, again by atomic rename, and loaded again: the load is
idempotent on event ids, so a file interrupted half way still ends up stored once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from croniter import croniter

from shopstream.bootstrap import Container
from shopstream.bulk.load import LoadInterrupted, load_file

log = logging.getLogger("shopstream.bulk_loader")
HEARTBEAT_SECONDS = 10.0  # between touches of the heartbeat file while waiting

CLAIMED, PROCESSED, FAILED = ".claimed", "processed", "failed"
_SEP = "--"  # <pid>.<start time>--<file name>
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".report.json")


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot): tells a live pid from a reused one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def loader_identity() -> str:
    pid = os.getpid()
    return f"{pid}.{_start_time(pid) or 0}"


def _owner_alive(identity: str) -> bool:
    pid_text, _, started = identity.partition(".")
    if not pid_text.isdigit():
        return False
    now = _start_time(int(pid_text))
    if now is not None:
        return now == started
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started == "0"


@dataclass
class Outcome:
    name: str
    status: str  # "processed" or "failed"
    report: Path


class Inbox:
    def __init__(self, root: Path, settle_seconds: float = 1.0) -> None:
        self.root = root
        self.settle_seconds = settle_seconds
        self.identity = loader_identity()
        for sub in (CLAIMED, PROCESSED, FAILED):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def waiting(self) -> list[Path]:
        """Files ready to load: visible, not partial, unchanged for `settle_seconds`."""
        now = time.time()
        ready = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if not entry.is_file() or entry.name.startswith(".") or entry.name.endswith(IGNORED_SUFFIXES):
                continue
            try:
                if now - entry.stat().st_mtime < self.settle_seconds:
                    continue
            except FileNotFoundError:
                continue
            ready.append(Path(entry.path))
        return ready

    def claim(self, path: Path) -> Path | None:
        """Atomically take `path` (or a dead loader's claim); None if another loader got it."""
        name = path.name.split(_SEP, 1)[1] if path.parent.name == CLAIMED else path.name
        target = self.root / CLAIMED / f"{self.identity}{_SEP}{name}"
        try:
            os.rename(path, target)  # atomic: exactly one claimant succeeds
        except FileNotFoundError:
            return None
        return target

    def orphans(self) -> list[Path]:
        """Claims whose loader is gone: interrupted loads to finish."""
        out = []
        for entry in sorted(os.scandir(self.root / CLAIMED), key=lambda e: e.name):
            owner, sep, _ = entry.name.partition(_SEP)
            if sep and owner != self.identity and not _owner_alive(owner):
                out.append(Path(entry.path))
        return out

    def release(self, claimed: Path) -> None:
        """Give a claimed file back to the inbox (a loader stopping mid-file)."""
        os.rename(claimed, self.root / claimed.name.split(_SEP, 1)[1])

    def finish(self, claimed: Path, status: str, report: dict) -> Outcome:
        name = claimed.name.split(_SEP, 1)[1]
        folder = self.root / status
        target = folder / name
        if target.exists() or (folder / f"{name}.report.json").exists():
            target = folder / f"{datetime.now():%Y%m%dT%H%M%S}-{name}"
        report_path = target.with_name(target.name + ".report.json")
        tmp = report_path.with_name(f".{report_path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        os.replace(tmp, report_path)  # the report first: a crash before the move reloads the file
        os.rename(claimed, target)
        return Outcome(name, status, report_path)


def load_claimed(inbox: Inbox, claimed: Path, container: Container, stop: threading.Event | None = None) -> Outcome:
    name = claimed.name.split(_SEP, 1)[1]
    started = datetime.now()
    log.info("loading %s", name)
    try:
        summary = load_file(claimed, container, source=f"bulk:{name}", stop=stop)
    except LoadInterrupted:
        inbox.release(claimed)
        raise
    except Exception as error:  # unreadable or unsupported: the file goes to failed/ with the reason
        log.warning("%s failed: %s", name, error)
        report = {"file": name, "status": "failed", "error": f"{type(error).__name__}: {error}",
                  "started_at": started.isoformat(sep=" ", timespec="seconds"), "loader": inbox.identity}
        return inbox.finish(claimed, FAILED, report)
    report = {"file": name, "status": "processed", "started_at": started.isoformat(sep=" ", timespec="seconds"),
              "loader": inbox.identity} | summary.as_dict() | {"file": name}
    log.info("%s: %d rows, %d loaded, %d already present, %d rejected, %.1fs", name, summary.rows,
             summary.loaded, summary.already_present, summary.rejected, summary.seconds)
    return inbox.finish(claimed, PROCESSED, report)


def scan_once(inbox: Inbox, container: Container, stop: threading.Event | None = None) -> list[Outcome]:
    """One tick: finish interrupted loads, then load every waiting file."""
    outcomes = []
    for path in [*inbox.orphans(), *inbox.waiting()]:
        if stop is not None and stop.is_set():
            break
        claimed = inbox.claim(path)
        if claimed is None:
            continue  # another loader was quicker
        try:
            outcomes.append(load_claimed(inbox, claimed, container, stop))
        except LoadInterrupted:
            break
    return outcomes


def run_bulk_loader(container: Container, stop: threading.Event) -> None:
    settings = container.settings
    inbox = Inbox(settings.bulk_inbox_dir, settings.bulk_settle_seconds)
    if not croniter.is_valid(settings.bulk_schedule):
        raise SystemExit(f"SHOPSTREAM_BULK_SCHEDULE={settings.bulk_schedule!r} is not a cron expression "
                         "(e.g. '*/5 * * * *', or with seconds '* * * * * */10')")
    schedule = croniter(settings.bulk_schedule, datetime.now())
    log.info("bulk-loader: watching %s on schedule %r", inbox.root, settings.bulk_schedule)
    heartbeat = settings.bulk_heartbeat_path
    heartbeat.parent.mkdir(parents=True, exist_ok=True)
    try:
        while not stop.is_set():
            due = schedule.get_next(datetime)
            while (wait := (due - datetime.now()).total_seconds()) > 0 and not stop.is_set():
                heartbeat.touch()  # the container's health check: alive and not stuck
                stop.wait(min(wait, HEARTBEAT_SECONDS))
            if stop.is_set():
                break
            heartbeat.touch()
            scan_once(inbox, container, stop)
    finally:
        container.close()
        log.info("bulk-loader: stopped")
