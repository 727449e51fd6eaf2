"""The issue's fault-injection run: SIGKILL services at random while the reference file
streams in over HTTP, and still every line and every penny in every sink, exactly once.

Set SHOPSTREAM_CHAOS_SEED to replay a run's choice of services and moments.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time

import httpx
import pytest

from shopstream.chaos import ChaosMonkey
from tests.conftest import Stack, reference_file
from tests.e2e.test_reference_pipeline import verify_rows

pytestmark = pytest.mark.e2e
SERVICES = ("ingest-api", "invoice-api", "s3-archiver", "dynamo-writer", "warehouse-loader")


def is_ready(url: str, headers: dict[str, str]) -> bool:
    try:
        return httpx.get(url + "/ready", headers=headers, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_sigkill_storm_while_the_reference_file_streams_in(tmp_path):
    seed = int(os.environ.get("SHOPSTREAM_CHAOS_SEED") or random.randrange(1_000_000))
    stack = Stack(tmp_path / "data", tmp_path / "up.log").start()
    try:
        sender = subprocess.Popen(
            [sys.executable, "-m", "shopstream", "send", str(reference_file()), "--url", stack.ingest_url],
            env=stack.env | {"COLUMNS": "200"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

        def pid_of(name: str) -> int | None:
            process = stack.service_process(name)
            return process.pid if process else None

        monkey = ChaosMonkey(pid_of, SERVICES, random.Random(seed), pause=(2.0, 6.0), max_kills=10).start()
        output, _ = sender.communicate(timeout=600)
        deadline = time.monotonic() + 60
        while len(monkey.kills) < len(SERVICES) and time.monotonic() < deadline:
            time.sleep(0.2)  # a fast send: the consumers are still catching up; keep killing
        kills = monkey.stop()
        context = f"seed {seed}; kills {[(k.at, k.service) for k in kills]}\n{output[-3000:]}"
        print(context)

        # At least 5 SIGKILLs, every service at least once, while the file was streaming in.
        assert len(kills) >= 5, context
        assert {k.service for k in kills} == set(SERVICES), context
        assert sender.returncode == 0, context
        sent = re.search(r"sent 541,909 lines .*: ([\d,]+) accepted, ([\d,]+) already there, 0 rejected", output)
        assert sent, context
        accepted, again = (int(g.replace(",", "")) for g in sent.groups())
        # a batch committed just before its ingest-api was killed comes back as "already there"
        assert accepted + again == 541_909, context

        result = stack.cli("verify", "--wait", "300")
        assert result.returncode == 0, result.stdout + result.stderr + context
        assert set(verify_rows(result.stdout).values()) == {("541,909", "9,747,747.934")}, result.stdout
        assert re.search(r"dead letters\s*│\s*0\s", result.stdout)

        # Every killed service came back (the supervisor restarted it) and answers.
        log = stack.log_path.read_text()
        for name in {k.service for k in kills}:
            assert f"{name} | exited with code -9; restarting" in re.sub(r" +\|", " |", log), name
        deadline = time.monotonic() + 60
        for url in (stack.ingest_url, stack.invoice_url, *map(stack.ops_url, stack.CONSUMERS)):
            while not is_ready(url, stack.auth):  # one killed last may still be starting
                assert time.monotonic() < deadline, url
                time.sleep(0.5)
        invoice = httpx.get(f"{stack.invoice_url}/invoices/536365", headers=stack.auth).json()
        assert (invoice["line_count"], invoice["total"]) == (7, "139.12")
    finally:
        stack.stop()
