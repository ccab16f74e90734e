"""The `run` and `plan` flow: earlier run, plan, guard rails, confirmation, quota, send, summary, exit code.

It prints nothing: confirmation and progress come in as callbacks, and everything to tell comes back in one
RunResult, which render.py turns into text. The command line imports this module for every command: the session
(http/session.py), planning (pyarrow) and execute (aiohttp) are imported where they are used, so `--help` and
`plan` do not pay for what they do not run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from batcher.defaults import PROG
from batcher.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_STOPPED,
    EXIT_USAGE,
    BatcherError,
    InputError,
    UsageError,
    internal_error,
)
from batcher.flows.command_line import CommandLine
from batcher.flows.options import RunOptions
from batcher.flows.summary import QuotaView, RunResult, UnwritableSummary, with_summary_json
from batcher.models import Outcome
from batcher.support.files import SameFile, check_distinct, why_unwritable
from batcher.support.logs import get_logger
from batcher.support.words import plural

if TYPE_CHECKING:
    from batcher.flows.record import Chosen, UndoTarget
    from batcher.flows.verify import VerifyResult
    from batcher.http.session import Session
    from batcher.plan.planning import Plan
    from batcher.remote.execute import ProgressCallback, RunSummary
    from batcher.remote.snapshot import Preview
    from batcher.results.history import RunRecord
    from batcher.support.signals import StopButton


@dataclass(frozen=True, slots=True)
class RunHooks:
    """What the flow asks of whoever runs it (the command line, or a test)."""

    on_plan: Callable[[Plan], None] = lambda plan: None  # the plan is ready (its notes may be shown now)
    confirm: Callable[[Plan, QuotaView | None], bool] = lambda plan, quota: True  # False: send nothing
    progress: Callable[[int], AbstractContextManager[ProgressCallback | None]] = lambda total: nullcontext()
    on_preview: Callable[[Preview], None] = lambda preview: None  # the reads are done: the real from -> to table
    # after on_preview: send the PUTs or not (None: send; the terminal's yes came before the reads). The page asks
    # here, in a thread of its own, while the run waits; a stop button stands for Ctrl-C where there is no terminal
    confirm_changes: Callable[[Preview], bool] | None = None
    stop: StopButton | None = None


def run_flow(options: RunOptions, environ: Mapping[str, str], hooks: RunHooks = RunHooks()) -> RunResult:
    """Do one `run` or `plan` from typed options; never raises a BatcherError (it is in the result)."""
    seen = _Seen()
    try:
        result = _run(options, environ, hooks, seen)
    except BatcherError as exc:
        result = RunResult(options, exc.exit_code, plan=seen.plan, error=exc)
    except KeyboardInterrupt:
        result = RunResult(options, EXIT_INTERRUPTED, plan=seen.plan, interrupted=True)
    except Exception as exc:  # the last line of defence: a bug still gets its summary and its own exit code
        get_logger().exception("unexpected error")
        error = internal_error(exc)
        result = RunResult(options, error.exit_code, plan=seen.plan, error=error)
    return with_summary_json(result)


@dataclass(slots=True)
class _Seen:
    """How far a run got before an error: the plan, once made."""

    plan: Plan | None = None


def _run(options: RunOptions, environ: Mapping[str, str], hooks: RunHooks, seen: _Seen) -> RunResult:
    from batcher.flows import record  # noqa: PLC0415 - pyarrow only to read input
    from batcher.http.session import Session  # noqa: PLC0415 - the flows stay light for `batcher --help`
    from batcher.results.journal import results_lock  # noqa: PLC0415

    target = None
    if options.undo:  # undo RUN_ID: the run's kept results, from the history of the session's state folder
        options, target = record.undo_target(options, record.history_folder(options, environ))
    check_output_paths(options, record.history_folder(options, environ))
    # the one owner of the token, the state folder and the quota ledger (a sandbox run counts no quota); then the
    # lock, before the plan: no other run on this results path can plan from the same earlier state
    with (
        Session(options.session, environ, credentials=options.sends, ledger=not options.sandbox) as session,
        nullcontext() if options.dry_run else results_lock(options.results),
    ):
        undoes = target.run.run_id if target is not None and target.run is not None else ""
        chosen = record.choose(options, environ, session.state_dir, undoes=undoes)
        plan = _prepare(options, chosen, target)
        seen.plan = plan
        return _run_planned(options, environ, hooks, plan, session, chosen)


def _prepare(options: RunOptions, chosen: Chosen, target: UndoTarget | None) -> Plan:
    from batcher.flows import record  # noqa: PLC0415

    if target is not None:
        from batcher.plan.undo import prepare_undo  # noqa: PLC0415

        source = record.undo_source(target, force=options.force)
        return prepare_undo(options.input, options.settings, source, limit=options.limit, notices=chosen.notices)
    from batcher.plan.planning import prepare  # noqa: PLC0415 - pyarrow only to read input

    return prepare(
        options.input,
        options.settings,
        default_status=options.default_status,
        # with the reads, the API's state decides; without them, the journal of the run continued is all there is
        applied=chosen.earlier.applied if chosen.continued is not None and not options.snapshot else None,
        limit=options.limit,
        options=options.input_options,
        notices=chosen.notices,
    )


def _run_planned(
    options: RunOptions, environ: Mapping[str, str], hooks: RunHooks, plan: Plan, session: Session, chosen: Chosen
) -> RunResult:
    from batcher.flows import record  # noqa: PLC0415

    notices = list(plan.notices)
    hooks.on_plan(plan)
    run = None
    try:
        view = _quota_view(session)
        if options.dry_run:
            code = exit_code(plan, None, allow_invalid=options.allow_invalid)
            return RunResult(options, code, plan=plan, quota=view, notices=tuple(notices))
        check_guard_rails(plan, options)
        if options.sandbox:
            from batcher.flows.endpoint import check_sandbox_input  # noqa: PLC0415

            check_sandbox_input(plan.loaded, options.sandbox_registrations)
        if not hooks.confirm(plan, view):
            return RunResult(options, EXIT_USAGE, plan=plan, quota=view, declined=True)
        run = record.start(chosen, session.state_dir)
        summary = _execute(options, plan, session, hooks, run, chosen)
    except BaseException as exc:
        if run is not None:  # the run's record says how it ended: not finished, --resume continues it
            code = exc.exit_code if isinstance(exc, BatcherError) else EXIT_INTERRUPTED
            record.finish(run, exit_code=code, counts=None, finished=False)
        raise
    finally:
        session.close()
    if summary.declined:  # the page's "Cancel" after the reads: nothing was sent
        record.finish(run, exit_code=EXIT_USAGE, counts=summary.counts, finished=False)
        return RunResult(options, EXIT_USAGE, plan=plan, summary=summary, quota=_quota_view(session), declined=True)
    notices += session.notices()
    kept = summary.results_path != options.results
    if kept:  # nothing reached the API: the earlier results file stays, and says so instead of "replaced"
        if chosen.replaces is not None:
            notices.remove(record.replaced_notice(options.results, chosen.replaces))
        notices.append(record.kept_notice(options.results, summary.results_path, chosen.replaces))
    code = exit_code(plan, summary, allow_invalid=options.allow_invalid)
    unfinished = _unfinished(summary) or bool(plan.held_back) or summary.stopped is not None or summary.interrupted
    line = options.command_line or CommandLine("undo" if options.undo else "run", options.input)
    retry = resume_command(line, options.results) if _worth_resuming(summary) else ""
    verification = None
    if options.verify and summary.stopped is None and not summary.interrupted:
        verification, verify_code = _verify(options, environ, session, notices)
        if code == EXIT_OK:
            code = verify_code
    run = record.finish(run, exit_code=code, counts=summary.counts, finished=not unfinished, results_kept=kept)
    return RunResult(
        options,
        code,
        plan=plan,
        summary=summary,
        quota=_quota_view(session),
        notices=tuple(notices),
        resume_command=retry,
        verification=verification,
        run=run,
    )


def _verify(
    options: RunOptions, environ: Mapping[str, str], session: Session, notices: list[str]
) -> tuple[VerifyResult | None, int]:
    """`run --verify`: the verify command's flow on the results just written, on the run's session (its token, as
    refreshed by the run, its ledger and state folder). Its client is a second ApiClient of that session: the run's
    lived in the event loop of the send, which ended before the results file was written.

    Returns what it found (None if it could not verify) and the exit code it asks for.
    """
    from batcher.flows.options import read_options_of  # noqa: PLC0415
    from batcher.flows.verify import VerifyOptions, verify_flow  # noqa: PLC0415 - only when asked

    if options.sandbox:
        notices.append("--verify reads the real API; the in-process sandbox of --sandbox is gone after the run")
        return None, EXIT_OK
    try:
        verification = verify_flow(VerifyOptions(options.results, read_options_of(options)), environ, session=session)
    except BatcherError as exc:
        notices.append(f"--verify could not finish: {exc}; run 'batcher verify {options.results}' later")
        return None, exc.exit_code
    return verification, verification.exit_code


def _execute(
    options: RunOptions, plan: Plan, session: Session, hooks: RunHooks, run: RunRecord, chosen: Chosen
) -> RunSummary:
    from batcher.flows.endpoint import SandboxOptions, open_endpoint  # noqa: PLC0415
    from batcher.remote.execute import Controls, ReadOptions, execute  # noqa: PLC0415 - aiohttp only to send

    sandbox = SandboxOptions(options.sandbox_registrations) if options.sandbox else None
    with hooks.progress(plan.sendable_rows) as advance:
        return execute(
            plan,
            options.settings,
            session,
            functools.partial(open_endpoint, plan.loaded, options.settings, session.credentials, sandbox),
            options.results,
            on_progress=advance,
            journal_file=run.journal,
            earlier=chosen.earlier,
            results_format=options.results_format,
            reads=ReadOptions(options.if_status, force=options.force) if options.snapshot else None,
            on_preview=lambda preview: _previewed(options, preview, hooks),
            controls=Controls(hooks.confirm_changes, hooks.stop),
            # a new run that reaches nothing leaves an earlier run's results file in place: its rows go to its folder
            untouched_results=run.results_copy if options.results.exists() and chosen.continued is None else None,
        )


def _previewed(options: RunOptions, preview: Preview, hooks: RunHooks) -> None:
    """The reads are done, before any PUT: the real changes are known."""
    check_max_changes(options, preview.changes, read=True)
    hooks.on_preview(preview)


def _quota_view(session: Session) -> QuotaView | None:
    ledger = session.ledger
    if ledger is None:
        return None
    return QuotaView(ledger.daily_quota, ledger.remaining_today(), ledger.path.parent)


def check_output_paths(options: RunOptions, state_folder: Path | None = None) -> None:
    """Refuse, before anything is read or sent, an output path that cannot be written.

    Raises:
        UsageError: the results path is the input, or is not a file path in a folder that can be written.
        UnwritableSummary: the same for --summary-json.
        SameFile: two of the input, results, journal, lock, summary and log file are the same file.
    """
    summary = options.output.summary_json
    if summary is not None and (problem := why_unwritable(summary, example="summary.json")):
        raise UnwritableSummary(f"--summary-json {str(summary)!r} {problem}; nothing was sent")
    if not options.dry_run or options.resume:  # a plan writes no results, and reads none unless it resumes
        results = options.results
        if not options.input.exists():  # a mistyped input path: said as such, not as a problem of its results' folder
            raise InputError(f"{options.input}: no such file. Check the path, or run 'ls' in that folder.")
        if problem := why_unwritable(results):
            raise UsageError(f"--results {str(results)!r} {problem}; nothing was sent")
        if results.resolve() == options.input.resolve():
            raise UsageError(f"--results {results} is the input file; give the results another path")
    check_distinct_outputs(options, state_folder)


SIDE_FILE_SUFFIXES = (".lock",)  # the file batcher keeps beside a results file


def check_distinct_outputs(options: RunOptions, state_folder: Path | None) -> None:
    """Refuse any two of the input and the files this run writes that are one file, and an output inside the run
    history (another run's journal, results copy or record) (issue 18.12)."""
    from batcher.results.history import runs_folder  # noqa: PLC0415
    from batcher.results.journal import lock_path  # noqa: PLC0415

    writes_results = (not options.dry_run or options.resume) and options.results.name not in ("", ".", "..")
    results = options.results if writes_results else None  # a path without a file name is refused on its own
    if results is not None and results.resolve() == options.input.resolve():
        raise UsageError(f"--results {results} is the input file; give the results another path")
    if results is not None and results.name.endswith(SIDE_FILE_SUFFIXES):
        raise SameFile(
            f"--results {str(results)!r} has the name of a run's lock file; batcher keeps those beside each "
            "results file. Give the results a name of their own; nothing was read or sent."
        )
    outputs = [
        ("--results", results),
        ("--summary-json", options.output.summary_json),
        ("--log-file", options.output.log_file),
    ]
    if state_folder is not None:
        history = runs_folder(state_folder).resolve()
        for name, path in outputs:
            if path is not None and path.resolve().is_relative_to(history):
                raise SameFile(
                    f"{name} {str(path)!r} is inside the run history ({history}), where batcher keeps each run's "
                    "journal and results: writing there would destroy another run's record. Give another path; "
                    "nothing was read or sent."
                )
    check_distinct(
        [
            ("the input", options.input),
            *outputs,
            ("the results' lock", lock_path(results) if results is not None else None),
        ]
    )


def check_guard_rails(plan: Plan, options: RunOptions) -> None:
    """Refuse a run that can send nothing, or (without the reads) that would change more than --max-changes.

    Raises:
        UsageError: the run is refused; nothing was sent.
    """
    waiting = plan.waiting is not None  # people-shaped rows: batched once resolved (resolve.py)
    nothing = not plan.groups and not plan.rows_applied_before and not plan.carried_over
    if nothing and not waiting and plan.preset is None:
        raise UsageError(f"{options.input}: no row can be sent; every row is invalid. Run 'batcher plan' to see why.")
    if not options.snapshot:  # with the reads, the real changes are counted once they are known (before any PUT)
        check_max_changes(options, plan.sendable_rows + plan.waiting_rows, read=False)  # resolved rows may change too


class TooManyChanges(UsageError):
    """More changes than --max-changes allows: nothing was sent."""


def check_max_changes(options: RunOptions, changes: int, *, read: bool) -> None:
    """The one check of --max-changes: changes counted from the plan, or (read) from the reads before any PUT.

    Raises:
        TooManyChanges: the run is refused; nothing was sent.
    """
    if options.max_changes is None or changes <= options.max_changes:
        return
    shown = "the reads show this run" if read else "this run"
    raise TooManyChanges(
        f"{options.input}: {shown} would change {plural(changes, 'registration')}, more than --max-changes "
        f"{options.max_changes}; nothing was sent. Check the input; if it is right, raise --max-changes."
    )


def exit_code(plan: Plan, summary: RunSummary | None, *, allow_invalid: bool) -> int:
    """The exit code of a plan (summary None) or of a run that got to the end of sending: the one place."""
    if summary is None:  # a dry run: the invalid rows are the verdict
        return EXIT_SOME_FAILED if plan.invalid_rows and not allow_invalid else EXIT_OK
    if summary.interrupted:
        return EXIT_INTERRUPTED
    if summary.stopped is not None:
        return summary.stopped.exit_code
    if plan.held_back:
        return EXIT_STOPPED  # a canary run: rows are left pending for --resume
    # a duplicate is as its first copy, which is counted under its own outcome
    counts = summary.counts
    unfinished = counts[Outcome.FAILED] + counts[Outcome.PENDING] + (0 if allow_invalid else counts[Outcome.INVALID])
    return EXIT_SOME_FAILED if unfinished else EXIT_OK


def _unfinished(summary: RunSummary) -> bool:
    return bool(summary.counts[Outcome.PENDING] or summary.counts[Outcome.FAILED])


def _worth_resuming(summary: RunSummary) -> bool:
    """Rows left to send, or failed rows a retry may fix (not one whose event is unknown, say)."""
    from batcher.results.report import failures_to_fix  # noqa: PLC0415

    return bool(summary.counts[Outcome.PENDING] or failures_to_fix(summary.rows)[0])


def resume_command(line: CommandLine, results_path: Path) -> str:
    """The command that resumes this run: the options given, without --limit, plus --resume and --results."""
    options = [(flag, value) for flag, value in line.options if flag != "--limit"]
    if ("--resume", None) not in options:
        options.append(("--resume", None))
    if not any(flag == "--results" for flag, _ in options):
        options.append(("--results", str(results_path)))
    return replace(line, options=tuple(options)).render(PROG)
