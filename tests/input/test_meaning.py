"""What a file means (issue 19, cases 5 and 6, and the '?' of a lost encoding): a misspelled header is refused
rather than read as another kind of file; an email column that is not the registrants' stops before any PUT."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.errors import UnclearColumns
from batcher.input.loader import InputOptions, load_input
from batcher.sandbox import app as sandbox
from tests.conftest import EVENT, TRACK, RunningSandbox, reg_id

WriteCsv = Callable[..., Path]
StartSandbox = Callable[..., RunningSandbox]


def test_a_misspelled_registration_id_beside_an_email_column_is_refused(write_csv: WriteCsv) -> None:
    path = write_csv(
        [[EVENT, TRACK, reg_id(1), "ada@example.com"]], header=["Event ID", "Track ID", "Registraton ID", "Email"]
    )
    with pytest.raises(UnclearColumns) as refused:  # before: every row became a person found by email
        load_input(path, default_status="CANCELED")
    message = str(refused.value)
    assert '"Registraton ID" looks like a misspelled "registration_id"' in message
    assert '--column registration_id="Registraton ID"' in message
    loaded = load_input(
        path, default_status="CANCELED", options=InputOptions(columns=(("registration_id", "Registraton ID"),))
    )
    assert [group.registration_ids for group in loaded.groups] == [(reg_id(1),)]


def test_a_track_column_that_is_not_a_track_id_is_not_a_look_alike(write_csv: WriteCsv) -> None:
    path = write_csv([[EVENT, reg_id(1), "Main hall"]], header=["event_id", "registration_id", "Track"])
    assert load_input(path, default_status="CANCELED").row_count == 1


def test_question_marks_in_emails_are_said_at_load_time(write_csv: WriteCsv) -> None:
    rows = [[EVENT, TRACK, reg_id(n), email] for n, email in enumerate(["jos?@example.com", "ada@example.com"])]
    loaded = load_input(
        write_csv(rows, header=["event_id", "track_id", "registration_id", "Email"]), default_status="CANCELED"
    )
    assert any(
        "1 cell(s) of the column \"Email\" hold '?' (first: row 2)" in note and "CSV UTF-8" in note
        for note in loaded.notes
    )


def test_an_email_column_most_rows_disagree_with_stops_before_any_put(
    write_csv: WriteCsv, start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = [sandbox.Registration(EVENT, TRACK, reg_id(n), email_address=f"guest{n}@example.com") for n in range(6)]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known)
    rows = [[EVENT, TRACK, reg_id(n), "requester@example.com"] for n in range(6)]
    path = write_csv(rows, header=["event_id", "track_id", "registration_id", "Email"])
    words = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
    env = {"CTCT_ACCESS_TOKEN": sandbox.SANDBOX_TOKEN}
    code = cli.main([*words, "--results", str(tmp_path / "r.csv")], environ=env)
    err = capsys.readouterr().err
    assert code == 2, err  # before: the reads, then every row failed invalid (exit 1)
    assert '"Email" disagrees with the registrations as read on 6 of 6 rows' in err
    assert "--column email_address=" in err
    assert box.state.puts == []
    assert cli.main([*words, "--results", str(tmp_path / "r2.csv"), "--column", "email_address="], environ=env) == 0
    assert len(box.state.puts) == 1
