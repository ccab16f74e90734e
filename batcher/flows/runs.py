"""The `runs` flow: the run history, oldest first (what `batcher runs` prints and the web page lists).

Each RunRecord names its run ID, start and end, input, API, counts, exit code, and its files: the folder, the
journal, the copy of its results (results_copy) and of its latest verification (verify_copy). `undo RUN_ID`
and `verify RUN_ID` accept its run_id.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from batcher.http.quota import default_state_dir
from batcher.results.history import RunRecord, find, list_runs

__all__ = ["find_run", "runs_flow"]


def runs_flow(state_dir: Path | None, environ: Mapping[str, str]) -> list[RunRecord]:
    """Every run the history of the state folder (--state-dir, else the environment's) holds, oldest first."""
    return list_runs(state_dir or default_state_dir(environ))


def find_run(state_dir: Path | None, environ: Mapping[str, str], run_id: str) -> RunRecord:
    """One run of the history.

    Raises:
        UsageError: no such run.
    """
    return find(state_dir or default_state_dir(environ), run_id)
