"""The run flow's own decisions, from tables: --max-changes is checked once, by one function."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batcher.errors import UsageError
from batcher.flows.command_line import CommandLine, Given
from batcher.flows.options import OutputOptions, RunOptions, only, outcomes
from batcher.flows.run import TooManyChanges, check_max_changes, resume_command
from batcher.input.loader import DEFAULT_OPTIONS
from batcher.models import Outcome
from batcher.settings import Settings


def options(max_changes: int | None) -> RunOptions:
    results = Path("in.results.csv")
    return RunOptions(Path("in.csv"), Settings(), DEFAULT_OPTIONS, OutputOptions(), results, max_changes=max_changes)


@pytest.mark.parametrize(
    ("max_changes", "changes", "read", "refused"),
    [
        (None, 10**6, False, ""),
        (None, 10**6, True, ""),
        (10, 10, False, ""),
        (10, 10, True, ""),
        (10, 11, False, "in.csv: this run would change 11 registrations, more than --max-changes 10; nothing was sent"),
        (9, 10, True, "in.csv: the reads show this run would change 10 registrations, more than --max-changes 9; "),
        (0, 1, False, "would change 1 registration, more than --max-changes 0"),
    ],
)
def test_max_changes_refuses_only_more_changes_than_allowed(
    max_changes: int | None, changes: int, read: bool, refused: str
) -> None:
    if not refused:
        check_max_changes(options(max_changes), changes, read=read)
        return
    with pytest.raises(TooManyChanges) as caught:
        check_max_changes(options(max_changes), changes, read=read)
    assert refused in str(caught.value)
    assert str(caught.value).endswith("Check the input; if it is right, raise --max-changes.")
    assert caught.value.exit_code == 2


RESUME = "--resume --results out.csv"


@pytest.mark.parametrize(
    ("given", "command"),
    [
        ((), f"batcher run 'my in.csv' {RESUME}"),
        ((("--limit", "20"), ("--yes", None)), "batcher run 'my in.csv' --yes --resume --results out.csv"),
        ((("--results", "r.csv"), ("--resume", None)), "batcher run 'my in.csv' --results r.csv --resume"),
        ((("--column", "event_id=Event ID"),), f"batcher run 'my in.csv' --column 'event_id=Event ID' {RESUME}"),
    ],
)  # fmt: skip
def test_the_resume_command_repeats_the_options_given_but_limit(given: tuple[Given, ...], command: str) -> None:
    assert resume_command(CommandLine("run", Path("my in.csv"), given), Path("out.csv")) == command


@pytest.mark.parametrize(
    ("text", "chosen", "refused"),
    [
        (None, None, ""),
        ("", None, ""),
        ("failed,pending", (Outcome.FAILED, Outcome.PENDING), ""),
        (" Pending , FAILED,pending", (Outcome.PENDING, Outcome.FAILED), ""),
        ("failed,lost", None, "--only takes outcomes separated by commas, from succeeded, failed, invalid"),
        (",", None, "--only takes outcomes separated by commas, from succeeded"),
    ],
)
def test_only_is_checked_once_for_run_and_report(text: str | None, chosen: object, refused: str) -> None:
    if refused:
        with pytest.raises(UsageError, match=re.escape(refused)):
            outcomes(text)
        with pytest.raises(UsageError, match=re.escape(refused)):
            only(text)
        return
    assert outcomes(text) == chosen
    assert only(text) == (None if chosen is None else frozenset(outcome.value for outcome in chosen))  # type: ignore[attr-defined]
