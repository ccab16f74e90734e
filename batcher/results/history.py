"""The run history: every run (and undo) in a folder of its own under the state folder, never replaced.

    STATE/runs/<run_id>/run.json      what the run was run against and how it ended (RunRecord)
    STATE/runs/<run_id>/journal       its journal (journal.py): reads, intents (before-images), applied batches
    STATE/runs/<run_id>/results.csv   a copy of its results file as the run wrote it
    STATE/runs/<run_id>/verify.csv    the latest verification of it, when one was made

A run ID sorts by its start: 20261204T183012Z-3fa9. `--resume` continues the latest run on a results path only
when it did not finish and has the same input and API (why_not_continue says why not otherwise).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from batcher.errors import UsageError
from batcher.support.files import PRIVATE_MODE, write_text_atomically

RUNS_FOLDER = "runs"
RECORD_FILE = "run.json"
JOURNAL_FILE = "journal"
RESULTS_FILE = "results.csv"
VERIFY_FILE = "verify.csv"
VERIFY_SUFFIX = ".verify.csv"  # verify's file beside the results it checks: X.results.csv -> X.results.verify.csv
RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")
SANDBOX_API = "sandbox (in-process, --sandbox)"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as the history keeps it (run.json); ended is "" while it runs or after a crash."""

    run_id: str
    command: str  # run or undo
    started: str  # ISO 8601, UTC
    input: str  # the input file (absolute); for an undo, the results file it undid
    input_sha256: str
    results: str  # the results path it wrote (absolute)
    api: str  # the base URL, or SANDBOX_API
    client: str = ""  # the API key (client ID) where known
    target: str = ""  # --status, or the column the targets came from
    flags: tuple[str, ...] = ()  # what else shaped it: --no-snapshot, --limit N, --if-status ...
    undoes: str = ""  # an undo: the run it puts back
    attempts: int = 1  # 1 + the times --resume continued it
    ended: str = ""
    exit_code: int | None = None
    counts: dict[str, int] = field(default_factory=dict)  # rows per outcome
    finished: bool = False  # nothing is left for --resume: no row pending or failed, the run got to its end
    folder: Path = Path()  # where it is kept (not written to run.json)

    @property
    def journal(self) -> Path:
        return self.folder / JOURNAL_FILE

    @property
    def results_copy(self) -> Path:
        return self.folder / RESULTS_FILE

    @property
    def verify_copy(self) -> Path:
        return self.folder / VERIFY_FILE


def runs_folder(state_dir: Path) -> Path:
    return state_dir / RUNS_FOLDER


def now_text() -> str:
    """Now, UTC, to the millisecond (two runs may start within one second: the history sorts by it)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint(path: Path) -> str:
    """The SHA-256 of a file's bytes ("" when it cannot be read, or is not a regular file: a FIFO or a device such
    as /dev/zero would never end; the loader refuses those with its own message)."""
    digest = hashlib.sha256()
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return ""
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()


def begin(state_dir: Path, record: RunRecord) -> RunRecord:
    """Make the folder of a new run (a fresh run ID) and write its run.json.

    Raises:
        UsageError: the state folder cannot be written.
    """
    root = runs_folder(state_dir)
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        while True:
            run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(2)
            folder = root / run_id
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=0o700)
                break
    except OSError as exc:
        raise UsageError(
            f"{root}: cannot keep the run's record there ({exc.strerror or exc}); check --state-dir"
        ) from exc
    started = replace(record, run_id=run_id, folder=folder, started=record.started or now_text())
    save(started)
    return started


def save(record: RunRecord) -> None:
    """Write run.json of a run (atomically).

    Raises:
        OutputError: it cannot be written.
    """
    document = {name: value for name, value in asdict(record).items() if name != "folder"}
    document["flags"] = list(record.flags)
    text = json.dumps(document, indent=2) + "\n"
    write_text_atomically(record.folder / RECORD_FILE, text, what="the run's record")


def keep(record: RunRecord, source: Path, name: str) -> None:
    """Copy a file the run wrote into its folder (best effort: the run's own file stays where it was written)."""
    if not source.is_file():
        return
    with contextlib.suppress(OSError):
        target = record.folder / name
        shutil.copyfile(source, target)
        os.chmod(target, PRIVATE_MODE)


def load(folder: Path) -> RunRecord | None:
    """The record in a run folder; None when there is none or it cannot be read."""
    try:
        document = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
        document["flags"] = tuple(document.get("flags") or ())
        document["counts"] = {str(key): int(value) for key, value in (document.get("counts") or {}).items()}
        return RunRecord(**document, folder=folder)
    except (OSError, ValueError, TypeError):
        return None


def list_runs(state_dir: Path) -> list[RunRecord]:
    """Every run of the history, oldest first."""
    root = runs_folder(state_dir)
    if not root.is_dir():
        return []
    found = [load(folder) for folder in sorted(root.iterdir()) if RUN_ID.match(folder.name)]
    return sorted(
        (record for record in found if record is not None), key=lambda record: (record.started, record.run_id)
    )


def find(state_dir: Path, run_id: str) -> RunRecord:
    """The run with this ID.

    Raises:
        UsageError: the history holds no such run.
    """
    record = load(runs_folder(state_dir) / run_id) if RUN_ID.match(run_id) else None
    if record is None:
        raise UsageError(
            f"{run_id}: no such run in {runs_folder(state_dir)}; 'batcher runs' lists them (or give a results file)"
        )
    return record


def looks_like_run_id(text: str) -> bool:
    return bool(RUN_ID.match(text))


def latest_on(state_dir: Path, results: Path) -> RunRecord | None:
    """The latest run that wrote this results path (None: no run of the history did)."""
    where = str(results.resolve())
    runs = [record for record in list_runs(state_dir) if record.results == where]
    return runs[-1] if runs else None


def why_not_continue(last: RunRecord | None, wanted: RunRecord) -> str:
    """Why --resume cannot continue last for a run like wanted ("" when it can)."""
    if last is None:
        return f"no earlier run wrote {wanted.results}"
    if last.command != wanted.command:
        return f"the last run on {wanted.results} ({last.run_id}) was a {last.command}"
    if last.api != wanted.api:
        return f"the last run on {wanted.results} ({last.run_id}) was against another API ({last.api})"
    if last.input != wanted.input or last.input_sha256 != wanted.input_sha256:
        return f"the last run on {wanted.results} ({last.run_id}) had another input (or the file changed since)"
    if last.finished:
        return f"the last run on {wanted.results} ({last.run_id}) finished: nothing was left to send"
    if last.target != wanted.target or last.undoes != wanted.undoes:
        return f"the last run on {wanted.results} ({last.run_id}) had another target ({last.target or 'none'})"
    return ""
