"""`shopstream up`: every service as its own process, one combined log, restarts.

Each service runs as `python -m shopstream service NAME`, exactly as in its
container. A service that dies is restarted with backoff; stopping sends SIGTERM
to all (they drain their work) and SIGKILL to any still running after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

COLORS = ["cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan", "bright_magenta"]


@dataclass
class Child:
    name: str
    color: str
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    pumps: list[threading.Thread] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        services: Sequence[str],
        env: dict[str, str],
        emit: Callable[[str, str, str], None],
        restart: bool = True,
        grace_seconds: float = 15.0,
    ) -> None:
        self.children = [Child(name, COLORS[i % len(COLORS)]) for i, name in enumerate(services)]
        self.env = env
        self.emit = emit  # (service, color, line)
        self.restart = restart
        self.grace_seconds = grace_seconds
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)
        self._monitor = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._monitor.start()

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(
            [sys.executable, "-m", "shopstream", "service", child.name],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
        )
        child.started_at = time.monotonic()
        pump = threading.Thread(target=self._pump, args=(child, child.process), daemon=True)
        pump.start()
        child.pumps = [pump]

    def _pump(self, child: Child, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            self.emit(child.name, child.color, raw.decode("utf-8", "replace").rstrip())

    def _watch(self) -> None:
        while not self._stopping.wait(0.2):
            for child in self.children:
                process = child.process
                if process is None or process.poll() is None:
                    if process is None and time.monotonic() >= child.next_start and not self._stopping.is_set():
                        self._spawn(child)
                    continue
                if not self.restart:
                    continue
                uptime = time.monotonic() - child.started_at
                child.restarts = 0 if uptime > 60 else child.restarts + 1
                delay = min(2 ** child.restarts * 0.5, 30.0)
                self.emit(child.name, child.color,
                          f"exited with code {process.returncode}; restarting in {delay:.1f}s")
                child.process = None
                child.next_start = time.monotonic() + delay

    def pid(self, name: str) -> int | None:
        for child in self.children:
            if child.name == name and child.process is not None and child.process.poll() is None:
                return child.process.pid
        return None

    def stop(self) -> dict[str, int | None]:
        """SIGTERM everyone, wait for the grace period, SIGKILL stragglers; returns exit codes."""
        self._stopping.set()
        if self._monitor:
            self._monitor.join()
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for child in running:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.emit(child.name, child.color, "did not stop in time; killing")
                child.process.kill()
                child.process.wait()
        for child in self.children:
            for pump in child.pumps:
                pump.join(timeout=2)
        return {c.name: (c.process.returncode if c.process else None) for c in self.children}


def wait_healthy(urls: Sequence[str], timeout: float = 60.0) -> None:
    """Wait until every URL's /health answers 200."""
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending:
        url = pending[0]
        try:
            if httpx.get(url.rstrip("/") + "/health", timeout=2).status_code == 200:
                pending.pop(0)
                continue
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not become healthy within {timeout:.0f}s")
        time.sleep(0.2)


def service_env(overrides: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
