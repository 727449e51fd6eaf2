"""The issue's acceptance runs, as a user does them: bulk-load the reference file (killed
half way with SIGKILL, then loaded again), verify, load again; the Kaggle twin from scratch."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bulk_files import write_kaggle_csv
from tests.conftest import reference_file
from tests.e2e.test_reference_pipeline import verify_rows

pytestmark = pytest.mark.e2e
EVERY_SINK = {("541,909", "9,747,747.934")}


def cli(data: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(data), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "shopstream", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def verified(data: Path) -> subprocess.CompletedProcess:
    result = cli(data, "verify", "--wait", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(verify_rows(result.stdout).values()) == EVERY_SINK
    assert re.search(r"dead letters\s*│\s*0\s", result.stdout)
    return result


def ledger_lines(data: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{data / 'stream.sqlite3'}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT (SELECT count(*) FROM ledger) "
                                "+ (SELECT coalesce(sum(lines), 0) FROM ledger_runs)").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


@pytest.fixture(scope="module")
def killed_then_loaded(tmp_path_factory):
    """bulk-load, SIGKILL half way, bulk-load again (one full load's worth of CI time)."""
    data = tmp_path_factory.mktemp("bulk") / "data"
    env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(data), COLUMNS="200")
    process = subprocess.Popen([sys.executable, "-m", "shopstream", "bulk-load", str(reference_file()),
                                "--chunk-rows", "20000"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while ledger_lines(data) < 100_000:
        assert process.poll() is None, "the load ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = ledger_lines(data)
    assert 100_000 <= partial < 541_909
    assert cli(data, "verify", "--wait", "0").returncode in (0, 1)  # a half-loaded state is readable
    result = cli(data, "bulk-load", str(reference_file()))
    assert result.returncode == 0, result.stdout + result.stderr
    return data, partial, result


def test_sigkill_half_way_then_loading_again_puts_every_line_and_penny_in_every_sink(killed_then_loaded):
    data, partial, result = killed_then_loaded
    assert "541,909 rows" in result.stdout
    assert f"{541_909 - partial:,} loaded, {partial:,} already present, 0 rejected" in result.stdout
    verified(data)


def test_loading_again_changes_nothing(killed_then_loaded):
    data, _, _ = killed_then_loaded
    again = cli(data, "bulk-load", str(reference_file()))
    assert again.returncode == 0, again.stderr
    assert "0 loaded, 541,909 already present, 0 rejected" in again.stdout
    verified(data)


def test_the_kaggle_download_gives_the_same_figures(tmp_path):
    """Also the clean first load: every row new, nothing rejected."""
    kaggle = tmp_path / "data.csv"  # the Kaggle file's name
    write_kaggle_csv(reference_file(), kaggle)
    assert b"12/1/2010 8:26,2.55,17850,United Kingdom" in kaggle.read_bytes()[:400]
    assert b"Voucher \xa340.00" in kaggle.read_bytes()  # ISO-8859-1
    data = tmp_path / "data"
    result = cli(data, "bulk-load", str(kaggle))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "541,909 loaded, 0 already present, 0 rejected" in result.stdout
    verified(data)


def test_an_unreadable_file_ends_the_command_with_1_and_says_why(tmp_path):
    """bulk-load leaves its process at once (os._exit): the code and the message still get out."""
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"\x1f\x8bnot gzip at all")
    result = cli(tmp_path / "data", "bulk-load", str(broken))
    assert result.returncode == 1
    assert "broken.csv.gz: unreadable (OSError: zlib inflate failed" in " ".join(result.stdout.split())
