"""Issue 18, case 10: an input that is not a regular file, or is larger than the documented bound.

The runs that could exhaust memory before the fix run in a child process held to 1.5 GiB of address space and a
time limit, so that a regression fails the test instead of taking the machine down.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.defaults import DEFAULT_MAX_INPUT_MB
from tests.conftest import HEADER, TOKEN_ENV, WriteCsv, rows_for

MEMORY_CAP_BYTES = 3 << 29  # 1.5 GiB
CSV_TEXT = ",".join(HEADER) + "\n" + "\n".join(",".join(row) for row in rows_for(2)) + "\n"


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


def plan_in_a_child(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`batcher plan path` in a child process limited to 1.5 GiB and 60 s."""
    command = [sys.executable, "-m", "batcher", "plan", str(path), "--status", "CANCELED", *options]
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("CTCT_", "BATCHER_"))}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, preexec_fn=_capped, env=environ, check=False
    )


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_symlink_to_dev_zero_is_refused_without_reading_it(tmp_path: Path) -> None:
    link = tmp_path / "input.csv"
    link.symlink_to("/dev/zero")
    done = plan_in_a_child(link)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


@contextmanager
def fed(fifo: Path, text: str) -> Iterator[None]:
    """While the block runs, a thread writes text to whoever opens fifo to read, so that a reader never hangs."""
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            try:
                descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader yet
                time.sleep(0.05)
                continue
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
            return

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield
    finally:
        stop.set()
        feeder.join(5)


def test_a_fifo_is_refused_instead_of_waiting_forever(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "input.csv"
    os.mkfifo(fifo)
    with fed(fifo, CSV_TEXT):  # if batcher opens the FIFO after all, it gets a small CSV rather than hang
        code = cli.main(["plan", str(fifo), "--status", "CANCELED"], environ=TOKEN_ENV)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "not a regular file" in err


def test_a_file_past_the_size_bound_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "input.csv"
    with big.open("wb") as handle:
        handle.write(CSV_TEXT.encode())
        handle.truncate(2 << 30)  # 2 GiB, sparse: as large as the issue's, without filling the disk
    started = time.monotonic()
    done = plan_in_a_child(big)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"larger than {DEFAULT_MAX_INPUT_MB} MiB" in done.stderr and "--max-input-mb" in done.stderr
    assert time.monotonic() - started < 60


def test_the_size_bound_can_be_raised(write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]) -> None:
    rows = rows_for(30_000)  # about 2.5 MB
    path = write_csv(rows)
    assert path.stat().st_size > 2 << 20
    status = ["--status-column", "registration_status"]
    assert cli.main(["plan", str(path), *status, "--max-input-mb", "1"], environ=TOKEN_ENV) == 2
    assert "larger than 1 MiB" in capsys.readouterr().err
    assert cli.main(["plan", str(path), *status, "--max-input-mb", "5"], environ=TOKEN_ENV) == 0


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_the_size_bound_takes_a_positive_finite_number(
    write_csv: WriteCsv, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    assert cli.main(["plan", str(write_csv(rows_for(2))), f"--max-input-mb={value}"], environ=TOKEN_ENV) == 2
    err = capsys.readouterr().err
    assert "--max-input-mb" in err and "unrecognized" not in err


def test_a_results_file_that_is_a_fifo_is_refused_by_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "r.csv"
    os.mkfifo(fifo)
    with fed(fifo, ""):
        code = cli.main(["report", str(fifo)])
    assert code == 2
    assert "not a regular file" in capsys.readouterr().err
