"""A header that reads as a typo of a key column is named, with the --column that reads it (found in a trial)."""

from __future__ import annotations

import pytest

from batcher.errors import InputError
from batcher.input.loader import load_input
from batcher.input.lookalike import lookalikes
from tests.conftest import EVENT, TRACK, RunCli, StartSandbox, WriteCsv, known, outcomes, reg_id, rows_for


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("registraton_id", "registration_id"),
        ("Registration", "registration_id"),
        ("trak", "track_id"),
        ("Track", "track_id"),
        ("Event Idd", "event_id"),
    ],
)
def test_a_typo_of_a_key_header_is_named(name: str, field: str) -> None:
    assert lookalikes([name, "email_address"], {}) == {field: name}


@pytest.mark.parametrize("name", ["Registration Time", "Event Name", "Track Name", "Tickets", "email_address"])
def test_an_export_s_other_columns_are_not_typos(name: str) -> None:
    assert lookalikes([name], {}) == {}


def test_a_matched_column_is_never_a_typo_of_another() -> None:
    found = {"event_id": 0, "track_id": 1, "registration_id": 2}
    assert lookalikes(["event_id", "track_id", "registration_id", "Track"], found) == {}


def test_a_missing_required_column_names_its_lookalike(write_csv: WriteCsv) -> None:
    path = write_csv([[EVENT, TRACK, reg_id(1)]], header=["Event Idd", "track_id", "registration_id"])
    with pytest.raises(
        InputError, match="\"Event Idd\" looks like event_id: rename it, or --column event_id='Event Idd'"
    ):
        load_input(path, default_status="CANCELED")


def test_a_mistyped_track_header_is_a_note_and_the_run_named_there_sends(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(3, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    path = write_csv([row[:3] for row in rows], header=["event_id", "Trak", "registration_id"])
    assert (
        run_cli(["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--column", "track_id=Trak"])
        == 0
    )
    assert outcomes(path.with_name(path.stem + ".results.csv")) == ["succeeded"] * 3
    assert "Trak" not in capsys.readouterr().err
    assert run_cli(["plan", str(path), "--status", "CANCELED"]) == 0
    assert (
        'note: the column "Trak" is not read: if it holds track_id, rename it, or run again with --column track_id=Trak'
        in (capsys.readouterr().err)
    )
