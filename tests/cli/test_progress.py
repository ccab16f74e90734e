"""Reads are progress too (issue 19, case 7): lines while the tracks are read, and a time left from the plan's
likely figure rather than from the first registrations' rate."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.cli.progress import Progress
from batcher.support.logs import get_logger
from tests.conftest import rows_for

INTERVAL = 1 / (4 * 0.98)


def test_read_pages_make_progress_lines_with_the_time_left_from_the_likely_figure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with Progress(3001, bar=False, line_every_s=0, likely_requests=92, interval_s=INTERVAL) as progress:
        progress.advance(0, 1)  # a list page: no registration settled yet
    (line,) = [record.getMessage() for record in caplog.records]
    assert line == "progress: 0 of 3,001 registrations, 1 request (1 list page read), about 23 s left"


def test_a_run_that_reads_logs_progress_before_its_first_put(
    write_csv: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(rows_for(120, status="REGISTERED"))  # one track: 3 list pages of 50
    words = ["run", str(path), "--status", "CANCELED", "--sandbox", "--rate", "1000", "--progress-every", "0"]
    assert cli.main([*words, "--results", str(tmp_path / "r.csv")], environ={}) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "progress:" in line]
    assert "progress: 0 of 120 registrations, 1 request (1 list page read)" in lines[0]  # before: nothing
    assert "progress: 120 of 120 registrations, 5 requests (3 list pages read)" in lines[-1]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_first_message_after_the_bar_is_drawn_gets_a_line_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with Progress(10, bar=True, line_every_s=30, likely_requests=5, interval_s=0.1) as progress:
        progress.advance(0, 1)
        cli.say("batcher: read 1 request; before sending: REGISTERED -> CANCELED 10")
        get_logger().warning("a warning while the bar is drawn")
        progress.advance(10, 1)
    screen = re.split(r"[\r\n]", terminal.getvalue())
    assert "batcher: read 1 request; before sending: REGISTERED -> CANCELED 10" in screen  # before: after the bar
    assert any(part.endswith("a warning while the bar is drawn") and "%|" not in part for part in screen)
