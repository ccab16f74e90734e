"""The `run` and `plan` flow: earlier run, plan, guard rails, confirmation, quota, send, summary, exit code.

It prints nothing: confirmation and progress come in as callbacks, and everything to tell comes back in one
RunResult, which render.py turns into text.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from batcher.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_STOPPED,
    EXIT_USAGE,
    BatcherError,
    UsageError,
    internal_error,
)
from batcher.flows.options import RunOptions
from batcher.models import Outcome
from batcher.support.files import SameFile, check_distinct, why_unwritable, write_text_atomically
from batcher.support.logs import get_logger
from batcher.support.redaction import redact

if TYPE_CHECKING:
    from batcher.flows.verify import VerifyResult
    from batcher.http.auth import Credentials
    from batcher.http.quota import QuotaLedger
    from batcher.plan.planning import Plan
    from batcher.remote.execute import ProgressCallback, RunSummary
    from batcher.remote.snapshot import Preview

PROG = "batcher"


@dataclass(frozen=True, slots=True)
class RunHooks:
    """What the flow asks of whoever runs it (the command line, or a test)."""

    on_plan: Callable[[Plan], None] = lambda plan: None  # the plan is ready (its notes may be shown now)
    confirm: Callable[[Plan, QuotaView | None], bool] = lambda plan, quota: True  # False: send nothing
    progress: Callable[[int], AbstractContextManager[ProgressCallback | None]] = lambda total: nullcontext()
    on_preview: Callable[[Preview], None] = lambda preview: None  # the reads are done: the real from -> to table


@dataclass(frozen=True, slots=True)
class QuotaView:
    """The local daily quota as the plan and the summary show it."""

    daily_quota: int
    left_today: int
    folder: Path


@dataclass(frozen=True, slots=True)
class RunResult:
    """Everything one run or plan did, to be rendered; exit_code is the process's exit code."""

    options: RunOptions
    exit_code: int
    plan: Plan | None = None
    summary: RunSummary | None = None
    quota: QuotaView | None = None
    notices: tuple[str, ...] = ()  # said once at the end, e.g. that a rotated token was saved
    error: BatcherError | None = None  # the run did not get to the end (or not at all)
    declined: bool = False  # the person at the terminal said no
    interrupted: bool = False  # Ctrl-C outside the send
    resume_command: str = ""
    summary_error: str = ""  # the summary JSON could not be written at the end
    verification: VerifyResult | None = None  # run --verify: what reading back found


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
    return _with_summary_json(result)


@dataclass(slots=True)
class _Seen:
    """How far a run got before an error: the plan, once made."""

    plan: Plan | None = None


def _run(options: RunOptions, environ: Mapping[str, str], hooks: RunHooks, seen: _Seen) -> RunResult:
    from batcher.http.quota import QuotaLedger, default_state_dir  # noqa: PLC0415
    from batcher.plan.planning import prepare  # noqa: PLC0415 - pyarrow only to read input

    check_output_paths(options)
    state_dir = options.state_dir or default_state_dir(environ)
    credentials = None
    if options.sends:
        from batcher.http.auth import load_credentials  # noqa: PLC0415

        credentials = load_credentials(
            environ, token_file=options.token_file, state_dir=state_dir, token_url=options.token_url
        )
    if options.undo:
        from batcher.plan.planning import prepare_undo  # noqa: PLC0415

        plan = prepare_undo(
            options.input,
            options.settings,
            resume_from=options.results if options.resume else None,
            limit=options.limit,
        )
    else:
        plan = prepare(
            options.input,
            options.settings,
            default_status=options.default_status,
            resume_from=options.results if options.resume else None,
            limit=options.limit,
            options=options.input_options,
        )
    notices = list(plan.notices)
    seen.plan = plan
    hooks.on_plan(plan)
    ledger = None if options.sandbox else QuotaLedger(state_dir, options.daily_quota or 0)
    try:
        view = _quota_view(ledger)
        if options.dry_run:
            code = exit_code(plan, None, allow_invalid=options.allow_invalid)
            return RunResult(options, code, plan=plan, quota=view, notices=tuple(notices))
        check_guard_rails(plan, options)
        if not hooks.confirm(plan, view):
            return RunResult(options, EXIT_USAGE, plan=plan, quota=view, declined=True)
        summary = _execute(options, plan, credentials, ledger, hooks)
    finally:
        if ledger is not None:
            ledger.close()
    if credentials is not None and credentials.saved_notice:
        notices.append(credentials.saved_notice)
    code = exit_code(plan, summary, allow_invalid=options.allow_invalid)
    retry = resume_command(options.words, options.results) if _unfinished(summary) else ""
    verification = None
    if options.verify and summary.stopped is None and not summary.interrupted:
        verification, verify_code = _verify(options, environ, notices)
        if code == EXIT_OK:
            code = verify_code
    return RunResult(
        options,
        code,
        plan=plan,
        summary=summary,
        quota=_quota_view(ledger),
        notices=tuple(notices),
        resume_command=retry,
        verification=verification,
    )


def _verify(options: RunOptions, environ: Mapping[str, str], notices: list[str]) -> tuple[VerifyResult | None, int]:
    """`run --verify`: the verify command's flow on the results just written (its own client, after the run's).

    Returns what it found (None if it could not verify) and the exit code it asks for.
    """
    from batcher.flows.options import read_options_of  # noqa: PLC0415
    from batcher.flows.verify import VerifyOptions, verify_flow  # noqa: PLC0415 - only when asked

    if options.sandbox:
        notices.append("--verify reads the real API; the in-process sandbox of --sandbox is gone after the run")
        return None, EXIT_OK
    try:
        verification = verify_flow(VerifyOptions(options.results, read_options_of(options)), environ)
    except BatcherError as exc:
        notices.append(f"--verify could not finish: {exc}; run 'batcher verify {options.results}' later")
        return None, exc.exit_code
    return verification, verification.exit_code


def _execute(
    options: RunOptions, plan: Plan, credentials: Credentials | None, ledger: QuotaLedger | None, hooks: RunHooks
) -> RunSummary:
    from batcher.flows.endpoint import SandboxOptions  # noqa: PLC0415
    from batcher.remote.execute import ReadOptions, execute  # noqa: PLC0415 - aiohttp only to send

    with hooks.progress(plan.sendable_rows) as advance:
        return execute(
            plan,
            options.settings,
            credentials,
            options.results,
            sandbox_options=SandboxOptions(options.sandbox_registrations) if options.sandbox else None,
            on_progress=advance,
            resume=options.resume,
            quota=ledger,
            results_format=options.results_format,
            reads=ReadOptions(options.if_status, options.max_changes, force=options.force)
            if options.snapshot
            else None,
            on_preview=hooks.on_preview,
        )


def _quota_view(ledger: QuotaLedger | None) -> QuotaView | None:
    if ledger is None:
        return None
    return QuotaView(ledger.daily_quota, ledger.remaining_today(), ledger.path.parent)


class UnwritableSummary(UsageError):
    """--summary-json names a path that cannot be written (so no summary is written there)."""


def check_output_paths(options: RunOptions) -> None:
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
        if problem := why_unwritable(results):
            raise UsageError(f"--results {str(results)!r} {problem}; nothing was sent")
        if results.resolve() == options.input.resolve():
            raise UsageError(f"--results {results} is the input file; give the results another path")
    _check_distinct_paths(options)


SIDE_FILE_SUFFIXES = (".journal", ".lock")  # the files batcher keeps beside a results file


def _check_distinct_paths(options: RunOptions) -> None:
    """Refuse any two of the input and the files this run writes that are one file (issue 18.12)."""
    from batcher.results.journal import journal_path, lock_path  # noqa: PLC0415

    writes_results = not options.dry_run or options.resume
    results = options.results if writes_results else None
    if results is not None and results.name.endswith(SIDE_FILE_SUFFIXES):
        raise SameFile(
            f"--results {str(results)!r} has the name of a run's {results.suffix.lstrip('.')} file; batcher keeps "
            "those beside each results file. Give the results a name of their own; nothing was read or sent."
        )
    check_distinct(
        [
            ("the input", options.input),
            ("--results", results),
            ("the results' journal", journal_path(results) if results is not None else None),
            ("the results' lock", lock_path(results) if results is not None else None),
            ("--summary-json", options.output.summary_json),
            ("--log-file", options.output.log_file),
        ]
    )


def check_guard_rails(plan: Plan, options: RunOptions) -> None:
    """Refuse a run that can send nothing, or that would change more than --max-changes.

    Raises:
        UsageError: the run is refused; nothing was sent.
    """
    waiting = plan.loaded.needs_resolution is not None  # people-shaped rows: batched once resolved (resolve.py)
    nothing = not plan.batches and not plan.rows_applied_before and not plan.carried_over
    if nothing and not waiting and plan.preset is None:
        raise UsageError(f"{options.input}: no row can be sent; every row is invalid. Run 'batcher plan' to see why.")
    needs = plan.loaded.needs_resolution  # rows resolved when run may all change too
    changes = plan.sendable_rows + (0 if needs is None else int(needs.sum()))
    # with the reads, --max-changes counts the real changes once they are known (before any PUT)
    if options.max_changes is not None and not options.snapshot and changes > options.max_changes:
        raise UsageError(
            f"{options.input}: this run would change {changes} registrations, more than --max-changes "
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


def resume_command(words: Sequence[str], results_path: Path) -> str:
    """The command that resumes this run: the same arguments, without --limit, plus --resume and --results."""
    kept: list[str] = [PROG]
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word == "--limit":
            skip = True
            continue
        if word.startswith("--limit="):
            continue
        kept.append(word)
    if "--resume" not in kept:
        kept.append("--resume")
    if not any(word == "--results" or word.startswith("--results=") for word in kept):
        kept += ["--results", str(results_path)]
    return shlex.join(kept)


def write_error_summary(path: Path | None, error: BatcherError, input_path: Path | None) -> None:
    """The --summary-json of a run refused before its options were all read (best effort: it may be unwritable)."""
    if path is None or why_unwritable(path):
        return
    where = str(input_path) if input_path is not None else None
    document = {"exit_code": error.exit_code, "error": str(error), "input": where, "results": None}
    with contextlib.suppress(BatcherError):
        write_text_atomically(path, redact(json.dumps(document, indent=2) + "\n"), what="the summary")


def summary_document(result: RunResult) -> dict[str, object]:
    """The --summary-json document of a result, whatever the exit."""
    summary, plan = result.summary, result.plan
    document: dict[str, object] = {
        "exit_code": result.exit_code,
        "error": str(result.error) if result.error is not None else None,
        "input": str(result.options.input),
        "results": str(result.options.results),
    }
    if summary is not None and plan is not None:
        document |= {
            "requests_sent": summary.stats.requests,
            "elapsed_s": round(summary.elapsed_s, 3),
            "requests_per_s": round(summary.stats.requests_per_s, 3),
            "rows_applied_before": plan.rows_applied_before,
            "quota_left_today": result.quota.left_today if result.quota is not None else None,
            "stopped": str(summary.stopped) if summary.stopped is not None else None,
            "interrupted": summary.interrupted,
            "resume_command": result.resume_command or None,
            "reads": summary.preview.reads if summary.preview is not None else None,
            "transitions": summary.preview.as_dicts() if summary.preview is not None else None,
            **summary.report.as_dict(),
        }
    return document


def _with_summary_json(result: RunResult) -> RunResult:
    path = result.options.output.summary_json
    if path is None or isinstance(result.error, UnwritableSummary | SameFile):
        return result
    try:
        text = redact(json.dumps(summary_document(result), indent=2) + "\n")
        write_text_atomically(path, text, what="the summary")
    except BatcherError as exc:
        return replace(result, summary_error=str(exc))
    return result
