"""The sandbox's own words (issue 19, cases 13 and 14): a taken port is one line and exit 2; a --sandbox run of
people by email names --sandbox-registrations instead of failing every row "event not found"."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.defaults import DEFAULT_REGISTRATIONS
from batcher.sandbox import app as sandbox

WriteCsv = Callable[..., Path]


def test_a_taken_port_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["sandbox", "--port", str(port)], environ={})
    out, err = capsys.readouterr()
    assert code == 2  # before: "serving", then a traceback and exit 1
    assert "serving" not in out
    assert err.startswith(f"batcher: error: --port {port}: cannot serve on 127.0.0.1:{port}")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_people_by_email_on_the_in_process_sandbox_name_sandbox_registrations(
    write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = [item for item in sandbox.read_registrations(DEFAULT_REGISTRATIONS) if item.email_address][:3]
    path = write_csv([[item.event_id, item.email_address] for item in known], header=["event_id", "email"])
    words = ["run", str(path), "--status", "CANCELED", "--sandbox", "--no-progress"]
    assert cli.main([*words, "--results", str(tmp_path / "r.csv")], environ={}) == 2
    err = capsys.readouterr().err
    assert "3 row(s) name people by email" in err and "--sandbox-registrations FILE" in err
    assert not (tmp_path / "r.csv").exists()
    given = ["--sandbox-registrations", str(DEFAULT_REGISTRATIONS), "--results", str(tmp_path / "r2.csv")]
    assert cli.main([*words, *given], environ={}) == 0  # served the people it was given
