"""The bulk-loader's inbox as a local directory, and local files as bulk-load input.

A file is claimed by an atomic rename into `.claimed/` under the loader's identity
(pid and process start time): only one rename can succeed, so two loaders never load
one file. A claim whose loader died (SIGKILL, crash) is taken over by another atomic
rename and loaded again, idempotently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import orjson

from shopstream.ports import Claim, LocalFile, Outcome

CLAIMED, PROCESSED, FAILED = ".claimed", "processed", "failed"
_SEP = "--"  # <pid>.<start time>--<file name>
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".report.json")


class LocalFiles:
    """Bulk-load input on the local profile: paths only."""

    @contextmanager
    def open(self, location: str) -> Iterator[LocalFile]:
        if location.startswith("s3://"):
            raise FileNotFoundError(f"{location}: s3:// sources need SHOPSTREAM_PROFILE=aws")
        if not Path(location).is_file():
            raise FileNotFoundError(f"no such file: {location}")
        yield LocalFile(Path(location), location)


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


def _name(claimed: Path) -> str:
    return claimed.name.split(_SEP, 1)[1]


class LocalInbox:
    def __init__(self, root: Path, settle_seconds: float = 1.0) -> None:
        self.root = root
        self.where = str(root)
        self.settle_seconds = settle_seconds
        self.identity = loader_identity()
        for sub in (CLAIMED, PROCESSED, FAILED):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def pending(self) -> list[Path]:
        return [*self.orphans(), *self.waiting()]

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

    def orphans(self) -> list[Path]:
        """Claims whose loader is gone: interrupted loads to finish."""
        out = []
        for entry in sorted(os.scandir(self.root / CLAIMED), key=lambda e: e.name):
            owner, sep, _ = entry.name.partition(_SEP)
            if sep and owner != self.identity and not _owner_alive(owner):
                out.append(Path(entry.path))
        return out

    def claim(self, path: Path) -> Claim | None:
        """Atomically take `path` (or a dead loader's claim); None if another loader got it."""
        name = _name(path) if path.parent.name == CLAIMED else path.name
        target = self.root / CLAIMED / f"{self.identity}{_SEP}{name}"
        try:
            os.rename(path, target)  # atomic: exactly one claimant succeeds
        except FileNotFoundError:
            return None
        return Claim(name, target)

    @contextmanager
    def fetch(self, claim: Claim) -> Iterator[LocalFile]:
        yield LocalFile(claim.ref, str(claim.ref))

    def release(self, claim: Claim) -> None:
        os.rename(claim.ref, self.root / claim.name)

    def finish(self, claim: Claim, status: str, report: dict) -> Outcome:
        folder = self.root / status
        target = folder / claim.name
        if target.exists() or (folder / f"{claim.name}.report.json").exists():
            target = folder / f"{datetime.now():%Y%m%dT%H%M%S}-{claim.name}"
        report_path = target.with_name(target.name + ".report.json")
        tmp = report_path.with_name(f".{report_path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        os.replace(tmp, report_path)  # the report first: a crash before the move reloads the file
        os.rename(claim.ref, target)
        return Outcome(claim.name, status, report_path)
