"""A run's place in the run history: which run it is (new, or the unfinished one --resume continues), what it was
run against, and how it ended. The flows of run, undo and verify use it; it prints nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from batcher.errors import UsageError
from batcher.flows.options import ReadOptions, RunOptions
from batcher.http.profiles import DEFAULT_PROFILE
from batcher.http.session import state_folder
from batcher.models import Outcome
from batcher.plan.undo import UndoSource
from batcher.results import history
from batcher.results.history import RunRecord
from batcher.results.journal import NO_EARLIER_ATTEMPTS, EarlierAttempts, read_attempts, read_changes, read_resolved

ENV_CLIENT_ID = "CTCT_CLIENT_ID"


@dataclass(frozen=True, slots=True)
class Chosen:
    """The run this command is: a new one (continued None), or the unfinished run it continues."""

    wanted: RunRecord  # what this run is run against (no ID yet)
    continued: RunRecord | None
    earlier: EarlierAttempts  # what the continued run's earlier attempts did
    notices: tuple[str, ...]
    replaces: RunRecord | None = None  # the earlier run whose results file this run replaces (notices say so)


def history_folder(options: RunOptions | ReadOptions, environ: Mapping[str, str]) -> Path:
    """The state folder a command's session uses (its profile's), where the run history is."""
    return state_folder(options.session.state_dir, options.session.profile, environ)


def api_of(options: RunOptions) -> str:
    return history.SANDBOX_API if options.sandbox else options.settings.base_url


def client_of(options: RunOptions, environ: Mapping[str, str]) -> str:
    """The account the run used, where known: its profile (other than the default) and the API key as a fingerprint
    (the key itself is kept out of records and pages)."""
    known = []
    if options.session.profile != DEFAULT_PROFILE:
        known.append(f"profile {options.session.profile}")
    client = environ.get(ENV_CLIENT_ID, "").strip()
    if client:
        known.append(f"key sha256:{hashlib.sha256(client.encode()).hexdigest()[:12]}")
    return ", ".join(known)


def wanted_record(options: RunOptions, environ: Mapping[str, str], *, undoes: str = "") -> RunRecord:
    """The record of this run as it starts (no ID, no folder yet)."""
    flags = []
    if not options.snapshot:
        flags.append("--no-snapshot")
    if options.limit is not None:
        flags.append(f"--limit {options.limit}")
    if options.if_status:
        flags.append("--if-status " + ",".join(sorted(options.if_status)))
    if options.force:
        flags.append("--force")
    if options.input_options.status_column:
        target = f"column {options.input_options.status_column}"
    else:
        target = options.default_status or ""
    if undoes:
        target = f"the previous statuses of run {undoes}"
    return RunRecord(
        run_id="",
        command="undo" if options.undo else "run",
        started="",
        input=str(options.input.resolve()),
        input_sha256=history.fingerprint(options.input),
        results=str(options.results.resolve()),
        api=api_of(options),
        client=client_of(options, environ),
        target=target,
        flags=tuple(flags),
        undoes=undoes,
    )


def choose(options: RunOptions, environ: Mapping[str, str], state_dir: Path, *, undoes: str = "") -> Chosen:
    """Which run this is. --resume continues the latest run on the results path only when it did not finish and
    has the same input, API and target; otherwise the notices say why this is a new run, and that the results it
    replaces are kept in the history."""
    wanted = wanted_record(options, environ, undoes=undoes)
    last = history.latest_on(state_dir, options.results)
    notices: list[str] = []
    if options.resume:
        why = history.why_not_continue(last, wanted)
        if not why:
            assert last is not None
            notices.append(f"--resume: continues run {last.run_id} (started {last.started}, not finished)")
            if not options.snapshot:
                notices.append(
                    f"--no-snapshot: nothing is checked against the API; the rows run {last.run_id}'s journal says "
                    "it applied are not sent again, every other row is sent"
                )
            return Chosen(wanted, last, read_attempts(last.journal), tuple(notices))
        notices.append(f"--resume: {why}; this is a new run")
    if not options.snapshot:
        notices.append("--no-snapshot: nothing is checked against the API before the PUTs; every row is sent")
    replaces = last if last is not None and options.results.exists() and not options.dry_run else None
    if replaces is not None:
        notices.append(replaced_notice(options.results, replaces))
    return Chosen(wanted, None, NO_EARLIER_ATTEMPTS, tuple(notices), replaces)


def kept_notice(results: Path, written: Path, last: RunRecord | None) -> str:
    """The note that a run which reached nothing left the earlier results file in place."""
    whose = f" (the results of run {last.run_id})" if last is not None else ""
    return (
        f"nothing reached the API, so {results} is left as it was{whose}; this run's rows are in {written} "
        "(its run history folder)"
    )


def replaced_notice(results: Path, last: RunRecord) -> str:
    """The note that a run replaces the results file an earlier run wrote (kept in the history)."""
    if is_rehearsal(last):
        return (
            f"{results} held the results of run {last.run_id}, a rehearsal (--sandbox) that changed nothing at the "
            "API; they are replaced here and kept in the run history ('batcher runs')"
        )
    return (
        f"{results} held the results of run {last.run_id}; they are replaced here and kept in the run history "
        f"('batcher runs'; 'batcher undo {last.run_id}' still puts that run back)"
    )


def is_rehearsal(run: RunRecord) -> bool:
    """A run against the in-process sandbox of --sandbox: nothing at any API was read or changed."""
    return run.api == history.SANDBOX_API


def start(chosen: Chosen, state_dir: Path) -> RunRecord:
    """The run's record as it starts sending: the continued run (one attempt more), or a new folder.

    Raises:
        UsageError: the state folder cannot be written.
    """
    if chosen.continued is not None:
        record = replace(chosen.continued, attempts=chosen.continued.attempts + 1, ended="", exit_code=None)
        history.save(record)
        return record
    return history.begin(state_dir, chosen.wanted)


def finish(
    record: RunRecord,
    *,
    exit_code: int,
    counts: Mapping[Outcome, int] | None,
    finished: bool,
    results_kept: bool = False,
) -> RunRecord:
    """Write how the run ended, and keep a copy of its results file in its folder (results_kept: the run wrote
    its results in its folder, and left the file at its results path, an earlier run's, as it was)."""
    done = replace(
        record,
        ended=history.now_text(),
        exit_code=exit_code,
        counts={str(outcome): count for outcome, count in counts.items()} if counts is not None else record.counts,
        finished=finished,
    )
    if results_kept:  # the results it wrote are in its folder: undo and verify of the path find the earlier run
        done = replace(done, results=str(record.results_copy))
    else:
        history.keep(done, Path(record.results), history.RESULTS_FILE)
    history.save(done)
    return done


@dataclass(frozen=True, slots=True)
class UndoTarget:
    """What undo puts back: the results file to read, the run that wrote it (None: not in the history)."""

    results_file: Path
    run: RunRecord | None


def undo_target(options: RunOptions, state_dir: Path) -> tuple[RunOptions, UndoTarget]:
    """undo RUN_ID or undo RESULTS: the options with the results file as input (and, for a run ID, the undo's
    results beside the run's own results unless --results), and the run to put back. A verification file
    (X.results.verify.csv) stands for the run it checked.

    Raises:
        UsageError: a run ID the history does not hold, a verification file of no run of it, or a rehearsal's run
            (--sandbox) to undo against an API.
    """
    run, named = run_named(options.input, state_dir)
    if run is None and options.input.name.endswith(history.VERIFY_SUFFIX):  # X.results.verify.csv: the run checked
        run, named = checked_run(options.input, state_dir), True
    if run is not None and is_rehearsal(run) and not options.sandbox:
        raise UsageError(
            f"run {run.run_id} ({Path(run.results).name}) was a rehearsal (--sandbox): it changed nothing at the "
            "API, so there is nothing to undo there; nothing was sent"
        )
    if run is None or not named:
        return options, UndoTarget(options.input, run)
    out = options.results if options.results_given else beside(run, ".undo.csv")
    return replace(options, input=run.results_copy, results=out), UndoTarget(run.results_copy, run)


def run_named(given: Path, state_dir: Path) -> tuple[RunRecord | None, bool]:
    """The run a command names: by its ID (True), else the latest run that wrote the results file given (False).

    Raises:
        UsageError: a run ID the history does not hold.
    """
    if not given.exists() and history.looks_like_run_id(given.name):
        return history.find(state_dir, given.name), True
    return history.latest_on(state_dir, given), False


def checked_run(verification: Path, state_dir: Path) -> RunRecord:
    """The run a verification file beside its results checked: the latest run on those results made before it.

    Raises:
        UsageError: no run of the history wrote results beside it.
    """
    where = verification.resolve()
    try:
        made = datetime.fromtimestamp(verification.stat().st_mtime, UTC).isoformat(timespec="milliseconds")
    except OSError:
        made = "9"  # later than any start
    runs = [run for run in history.list_runs(state_dir) if beside(run, history.VERIFY_SUFFIX) == where]
    before = [run for run in runs if run.started.removesuffix("Z") <= made.removesuffix("+00:00")]
    if before or runs:
        return (before or runs)[-1]
    results = verification.name.removesuffix(history.VERIFY_SUFFIX)
    raise UsageError(
        f"{verification} is a verification file and no run of the history wrote the results it checked; give the "
        f"results file instead ({results}.csv or {results}.xlsx), or a run ID ('batcher runs' lists them)"
    )


def beside(run: RunRecord, suffix: str) -> Path:
    """A file beside the run's own results: X.results.csv -> X.results<suffix>."""
    results = Path(run.results)
    return results.with_name(results.stem + suffix)


def undo_source(target: UndoTarget, *, force: bool) -> UndoSource:
    """What the journal of the run to undo says it changed (nothing known when no run of the history wrote it).

    Raises:
        UsageError: the journal is not a batcher journal.
    """
    run = target.run
    if run is None:
        return UndoSource(None, {}, force=force)
    if not run.journal.exists():
        return UndoSource({}, {}, run.run_id, force=force)
    return UndoSource(read_changes(run.journal), read_resolved(run.journal), run.run_id, force=force)
