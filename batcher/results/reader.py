"""Reads a results file written by batcher: its rows through the input's loader, and the keys it marks succeeded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batcher.errors import InputError
from batcher.input.columnar import Strings
from batcher.input.earlier import EarlierResults, not_a_results_file
from batcher.input.rows import InputOptions, LoadedInput, load_input
from batcher.models import Outcome, RegistrationKey


@dataclass(frozen=True, slots=True)
class ResultsFile:
    """An existing results file, loaded: the user's columns plus the earlier run's result columns."""

    loaded: LoadedInput
    earlier: EarlierResults

    @property
    def outcome(self) -> Strings:
        return self.earlier.outcome

    @property
    def error(self) -> Strings:
        return self.earlier.error


def read_results_file(path: Path, *, default_status: str | None = None) -> ResultsFile:
    """Load a results file written by batcher.

    Raises:
        InputError: unreadable, or not a batcher results file.
    """

    # the target of each row is the target_status its run recorded (or default_status, when given)
    loaded = load_input(path, default_status=default_status, options=InputOptions(status_column=None))
    if loaded.earlier is None:
        raise InputError(not_a_results_file(path))
    return ResultsFile(loaded, loaded.earlier)


def succeeded_keys(results: ResultsFile) -> dict[RegistrationKey, int]:
    """(event, track, registration, status) of every valid row the file marks succeeded, with its HTTP status."""
    loaded, earlier = results.loaded, results.earlier
    done = np.flatnonzero((earlier.outcome == Outcome.SUCCEEDED.value) & (loaded.invalid_reason == ""))
    found: dict[RegistrationKey, int] = {}
    for row in done.tolist():
        status_text = str(earlier.http_status[row])
        key: RegistrationKey = (
            str(loaded.event_id[row]),
            str(loaded.track_id[row]),
            str(loaded.registration_id[row]),
            str(loaded.registration_status[row]),
        )
        found[key] = int(status_text) if status_text.isdigit() else 200
    return found


def read_succeeded_keys(results_path: Path, *, default_status: str | None) -> dict[RegistrationKey, int]:
    """succeeded_keys of the results file at results_path.

    Raises:
        InputError: the file cannot be read or is not a results file.
    """
    return succeeded_keys(read_results_file(results_path, default_status=default_status))
