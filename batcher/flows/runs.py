"""The `runs` flow: the run history, oldest first (what `batcher runs` prints and the web page lists).

Each RunRecord names its run ID, start and end, input, API, counts, exit code, and its files: the folder, the
journal, the copy of its results (results_copy) and of its latest verification (verify_copy). `undo RUN_ID`
and `verify RUN_ID` accept its run_id.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from batcher.http.profiles import chosen_profile
from batcher.http.session import state_folder
from batcher.results.history import RunRecord, find, list_runs

__all__ = ["find_run", "runs_flow"]


def runs_flow(state_dir: Path | None, environ: Mapping[str, str], profile: str | None = None) -> list[RunRecord]:
    """Every run the history of the state folder (--state-dir, else the environment's; the profile's) holds, oldest
    first.

    Raises:
        UsageError: not a profile name.
    """
    return list_runs(_folder(state_dir, environ, profile))


def find_run(state_dir: Path | None, environ: Mapping[str, str], run_id: str, profile: str | None = None) -> RunRecord:
    """One run of the history.

    Raises:
        UsageError: no such run, or not a profile name.
    """
    return find(_folder(state_dir, environ, profile), run_id)


def _folder(state_dir: Path | None, environ: Mapping[str, str], profile: str | None) -> Path:
    return state_folder(state_dir, chosen_profile(profile, environ), environ)
