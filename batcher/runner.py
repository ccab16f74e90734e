"""Wires the stages together for `run` and `plan`. No argument parsing, no printing, no exit."""

from __future__ import annotations

import asyncio
import gc
import math
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from batcher import sandbox
from batcher.auth import Credentials
from batcher.chunker import plan_batches
from batcher.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_STOPPED, RunStopped, UsageError
from batcher.journal import Journal, journal_path, read_applied, results_lock
from batcher.loader import DEFAULT_OPTIONS, InputOptions, LoadedInput, load_input
from batcher.logs import get_logger
from batcher.models import Batch, BatchResult, Outcome, RegistrationKey, RowGroup
from batcher.reconciler import RowResults, all_succeeded, read_succeeded_keys, reconcile, write_results
from batcher.report import Report, build_report
from batcher.sender import QuotaGate, send_batches
from batcher.settings import Settings

ProgressCallback = Callable[[int, int], None]  # (rows settled, requests sent)
log = get_logger()


@dataclass(frozen=True, slots=True)
class Plan:
    """An input file validated and cut into batches; nothing sent yet."""

    loaded: LoadedInput
    batches: tuple[Batch, ...]
    applied_before: npt.NDArray[np.int64]  # per row: HTTP status of an earlier run that applied it, 0 if none
    held_back: int = 0  # valid rows left for a later run by --limit
    limit: int | None = None

    @property
    def sendable_rows(self) -> int:
        return sum(len(batch.rows) for batch in self.batches)

    @property
    def rows_applied_before(self) -> int:
        return int((self.applied_before > 0).sum())

    def estimated_seconds(self, settings: Settings) -> float:
        """The time the requests take at the configured pace."""
        return max(0, len(self.batches) - 1) * settings.pacing_interval_s


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    """Run against an in-process sandbox instead of the real API."""

    registrations_file: Path | None = None  # None: the sandbox knows every row of the input


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a finished (or stopped) run did."""

    counts: dict[Outcome, int]
    requests_sent: int
    elapsed_s: float
    results_path: Path
    exit_code: int
    report: Report
    stopped: RunStopped | None = None
    interrupted: bool = False

    @property
    def requests_per_s(self) -> float:
        return self.requests_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


def prepare(
    input_path: Path,
    settings: Settings,
    *,
    default_status: str | None,
    applied: Mapping[RegistrationKey, int] | None = None,
    limit: int | None = None,
    options: InputOptions = DEFAULT_OPTIONS,
) -> Plan:
    """Load, validate and batch an input file, leaving out registrations an earlier run applied.

    With limit, only the first limit rows still to send (in input order) are batched: a canary run.

    Raises:
        InputError: the file cannot be read or trusted.
        UsageError: --status is not a known status, or an input option does not fit the file.
    """
    loaded = load_input(input_path, default_status=default_status, options=options)
    # the loaded rows (millions of strings in arrays and tuples) live for the whole run: the cycle collector
    # walking them at every full collection cost a tenth of a second per million rows in plan_batches alone
    gc.freeze()
    applied_before = np.zeros(loaded.row_count, dtype=np.int64)
    groups = list(loaded.groups) if not applied else _without_applied(loaded.groups, applied, applied_before)
    held_back = 0
    if limit is not None:
        groups, held_back = _first_rows(groups, limit)
    batches = tuple(plan_batches(groups, batch_size=settings.batch_size))
    return Plan(loaded, batches, applied_before, held_back, limit)


def _first_rows(groups: list[RowGroup], limit: int) -> tuple[list[RowGroup], int]:
    """The groups cut down to the first limit rows of the input; and how many rows were left out."""
    rows = np.sort(np.fromiter((row for group in groups for row in group.rows), dtype=np.int64))
    if len(rows) <= limit:
        return groups, 0
    last = rows[limit - 1] if limit > 0 else -1
    kept: list[RowGroup] = []
    for group in groups:
        count = int(np.searchsorted(np.asarray(group.rows), last, side="right"))
        if count:
            kept.append(replace(group, registration_ids=group.registration_ids[:count], rows=group.rows[:count]))
    return kept, len(rows) - limit


def _without_applied(
    groups: Sequence[RowGroup], applied: Mapping[RegistrationKey, int], applied_before: npt.NDArray[np.int64]
) -> list[RowGroup]:
    kept: list[RowGroup] = []
    for group in groups:
        ids: list[str] = []
        rows: list[int] = []
        for registration_id, row in zip(group.registration_ids, group.rows, strict=True):
            status = applied.get((group.event_id, group.track_id, registration_id, group.registration_status))
            if status:
                applied_before[row] = status
            else:
                ids.append(registration_id)
                rows.append(row)
        if ids:
            kept.append(replace(group, registration_ids=tuple(ids), rows=tuple(rows)))
    return kept


def _log_batch(batch: Batch, result: BatchResult) -> None:
    failed = len(result.failed_ids) + len(result.id_errors) + (len(batch.rows) if result.error else 0)
    log.info(
        "batch %d done: HTTP %s, %d of %d failed",
        batch.number,
        result.http_status,
        failed,
        len(batch.rows),
        extra={
            "event_id": batch.event_id,
            "track_id": batch.track_id,
            "batch": batch.number,
            "http_status": result.http_status,
            "attempts": result.attempts,
            "duration_s": round(result.duration_s, 3),
            "rows": len(batch.rows),
            "failed": failed,
            "error": result.error,
        },
    )


def read_earlier_run(results_path: Path, *, default_status: str | None) -> dict[RegistrationKey, int]:
    """What an earlier run on this results path applied, from its journal and its results file.

    Raises:
        UsageError: there is nothing to resume from.
        InputError: the earlier results file cannot be read.
    """
    journal = journal_path(results_path)
    if not journal.exists() and not results_path.exists():
        raise UsageError(
            f"nothing to resume: neither {journal} nor {results_path} exists. "
            "Run without --resume, or give the --results path of the earlier run."
        )
    applied: dict[RegistrationKey, int] = {}
    if results_path.exists():
        applied.update(read_succeeded_keys(results_path, default_status=default_status))
    if journal.exists():
        applied.update(read_applied(journal))
    return applied


def execute(
    plan: Plan,
    settings: Settings,
    credentials: Credentials | None,
    results_path: Path,
    *,
    sandbox_options: SandboxOptions | None = None,
    on_progress: ProgressCallback | None = None,
    resume: bool = False,
    quota: QuotaGate | None = None,
) -> RunSummary:
    """Send the plan's batches, journalling each, then write one results line per input row.

    Raises:
        UsageError: another run holds the results path.
        OutputError: the journal or the results file cannot be written.
    """
    started = time.monotonic()
    results: list[BatchResult] = []
    with results_lock(results_path):
        journal = Journal(journal_path(results_path), append=resume)

        def collect(result: BatchResult) -> None:
            batch = plan.batches[result.batch - 1]
            journal.record(batch, result)  # durable before the rows count as done
            results.append(result)
            _log_batch(batch, result)
            if on_progress is not None:
                on_progress(len(batch.rows), result.attempts)

        stopped: RunStopped | None = None
        interrupted = False
        try:
            interrupted = asyncio.run(_send(plan, settings, credentials, sandbox_options, collect, quota))
        except RunStopped as exc:
            stopped = exc
        finally:
            journal.close()
        rows = reconcile(
            plan.loaded,
            plan.batches,
            results,
            pending_reason=_pending_reason(stopped, interrupted),
            applied_before=plan.applied_before,
            held_back_reason=_held_back_reason(plan.limit),
        )
        write_results(results_path, plan.loaded, rows)
    return RunSummary(
        counts=rows.counts(),
        requests_sent=sum(result.attempts for result in results),
        elapsed_s=time.monotonic() - started,
        results_path=results_path,
        exit_code=_exit_code(plan, rows, stopped, interrupted),
        report=build_report(plan.loaded.event_id, plan.loaded.track_id, rows.outcome, rows.error),
        stopped=stopped,
        interrupted=interrupted,
    )


async def _send(
    plan: Plan,
    settings: Settings,
    credentials: Credentials | None,
    sandbox_options: SandboxOptions | None,
    on_result: Callable[[BatchResult], None],
    quota: QuotaGate | None,
) -> bool:
    """Send in this loop; True when a signal interrupted the run.

    The first SIGINT/SIGTERM stops new batches and lets those in flight finish; a second one
    abandons them too (their rows stay pending: a PUT is idempotent, so --resume may resend them).
    """
    stop = asyncio.Event()
    signals: list[int] = []
    if sandbox_options is None:
        if credentials is None:
            raise ValueError("credentials are needed to talk to the real API")
        task = asyncio.ensure_future(
            send_batches(plan.batches, settings, credentials, on_result=on_result, stop=stop, quota=quota)
        )
        with _signals_set(lambda: _interrupt(signals, stop, task)):
            await _finish(task)
        return bool(signals)
    app = sandbox.make_app(_sandbox_scenario(settings), _sandbox_registrations(plan.loaded, sandbox_options))
    async with sandbox.running(app) as url:
        task = asyncio.ensure_future(
            send_batches(
                plan.batches,
                replace(settings, base_url=url),
                Credentials(sandbox.SANDBOX_TOKEN),
                on_result=on_result,
                stop=stop,
            )
        )
        with _signals_set(lambda: _interrupt(signals, stop, task)):
            await _finish(task)
    return bool(signals)


def _interrupt(signals: list[int], stop: asyncio.Event, task: asyncio.Future[list[BatchResult]]) -> None:
    signals.append(1)
    stop.set()
    if len(signals) > 1:
        task.cancel()


async def _finish(task: asyncio.Future[list[BatchResult]]) -> None:
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise


@contextmanager
def _signals_set(handler: Callable[[], None]) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(number, handler)
            installed.append(number)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            pass
    try:
        yield
    finally:
        for number in installed:
            loop.remove_signal_handler(number)


def _sandbox_scenario(settings: Settings) -> sandbox.Scenario:
    # the sandbox enforces the pace the user says their key has, as the real API would
    return sandbox.Scenario(rate_limit_per_s=max(sandbox.DEFAULT_RATE_LIMIT_PER_S, math.ceil(settings.rate_per_s)))


def _sandbox_registrations(
    loaded: LoadedInput, options: SandboxOptions
) -> Sequence[sandbox.Registration | tuple[str, str, str, str]]:
    if options.registrations_file is not None:
        return sandbox.read_registrations(options.registrations_file)
    valid = loaded.invalid_reason == ""
    return [
        (event_id, track_id, registration_id, "REGISTERED")
        for event_id, track_id, registration_id in zip(
            loaded.event_id[valid].tolist(),
            loaded.track_id[valid].tolist(),
            loaded.registration_id[valid].tolist(),
            strict=True,
        )
    ]


def _held_back_reason(limit: int | None) -> str:
    if limit is None:
        return "not sent"
    return f"not sent: beyond --limit {limit}; run the same command with --resume and without --limit to send it"


def _pending_reason(stopped: RunStopped | None, interrupted: bool) -> str:
    if interrupted:
        return "not sent: the run was interrupted; re-run with --resume"
    if stopped is not None:
        return "not sent: the run stopped early; see the error message, then re-run with --resume"
    return "not sent"


def _exit_code(plan: Plan, rows: RowResults, stopped: RunStopped | None, interrupted: bool) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    if stopped is not None:
        return stopped.exit_code
    if plan.held_back:
        return EXIT_STOPPED  # a canary run: rows are left pending for --resume
    return EXIT_OK if all_succeeded(plan.loaded, rows) else EXIT_SOME_FAILED
