"""One way to write a count in the messages (issue 19): thousands separators everywhere, and no "1 PUTs"."""

from __future__ import annotations

from pathlib import Path

import pytest

from batcher.support.words import number, plural
from tests.conftest import EVENT, RunCli, WriteCsv


def test_counts_have_thousands_separators_and_a_singular_for_one() -> None:
    assert number(1234567) == "1,234,567"
    assert plural(1, "PUT") == "1 PUT"
    assert plural(2, "PUT") == "2 PUTs"
    assert plural(1, "read request") == "1 read request"
    assert plural(1234, "row") == "1,234 rows"
    assert plural(2, "entry", "entries") == "2 entries"


def test_a_plan_of_one_person_by_email_says_one_row_and_one_read_request(
    run_cli: RunCli, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv([[EVENT, "someone@example.com"]], header=("event_id", "email"))
    assert run_cli(["plan", str(path), "--status", "CANCELED", "--results", str(tmp_path / "r.csv")]) == 0
    err = capsys.readouterr().err
    assert "1 row naming people by email" in err  # before: "1 row(s) name people by email"
    assert "row(s)" not in err
    assert "event(s)" not in err
    assert "1 read requests" not in err
    assert "1 PUTs" not in err
