"""Taking turns on a file that only one process may hold (DuckDB's single writer).

An exclusive `flock` on `<file>.lock` is the turn. A process that wants the turn while
another has it leaves a marker in `<file>.lock.waiting/`; the holder checks for markers
after each unit of work and lets go, so two writers (the warehouse-loader and a bulk
load) alternate batch by batch instead of one starving the other. The kernel drops a
killed process's lock, and markers of dead processes are swept, so a SIGKILL never
leaves the file stuck.
"""

from __future__ import annotations

import fcntl
import os
import random
import threading
import time
from pathlib import Path

POLL_SECONDS = 0.02
POLITE_SECONDS = 0.05  # let a waiter in before taking the turn back


class TurnTimeout(TimeoutError):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FileTurn:
    def __init__(self, path: Path) -> None:
        self.lock_path = path.with_name(path.name + ".lock")
        self.waiting_dir = path.with_name(path.name + ".lock.waiting")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        if not self.others_waiting() and self._try(fd):
            return
        self.waiting_dir.mkdir(exist_ok=True)
        marker = self.waiting_dir / f"{os.getpid()}-{threading.get_ident()}"
        marker.touch()
        deadline = time.monotonic() + timeout
        try:
            time.sleep(POLITE_SECONDS * random.random())
            while not self._try(fd):
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise TurnTimeout(f"{self.lock_path} stayed held by another process for {timeout:.0f}s")
                time.sleep(POLL_SECONDS * (0.5 + random.random()))
        finally:
            marker.unlink(missing_ok=True)

    def _try(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._fd = fd
        return True

    def others_waiting(self) -> bool:
        try:
            names = os.listdir(self.waiting_dir)
        except FileNotFoundError:
            return False
        me = os.getpid()
        for name in names:
            pid = int(name.split("-", 1)[0]) if name.split("-", 1)[0].isdigit() else -1
            if pid == me:
                continue
            if pid > 0 and _alive(pid):
                return True
            (self.waiting_dir / name).unlink(missing_ok=True)  # left by a killed process
        return False

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
