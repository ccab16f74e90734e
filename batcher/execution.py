"""Sends a plan: the endpoint (real or an in-process sandbox), the journal, signals, then the results file.

No argument parsing, no printing, no exit codes: the flow decides what a summary means.
"""

from __future__ import annotations

import asyncio
import math
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from batcher.auth import Credentials
from batcher.client import ApiClient
from batcher.defaults import DEFAULT_RATE_LIMIT_PER_S, SANDBOX_TOKEN
from batcher.errors import RunStopped
from batcher.journal import Journal, journal_path, results_lock
from batcher.loader import LoadedInput
from batcher.logs import get_logger
from batcher.models import Batch, BatchResult, Outcome, WireStats
from batcher.planning import Plan
from batcher.reconciler import RowResults, reconcile
from batcher.report import Report, build_report
from batcher.resolve import Resolution, resolve_plan
from batcher.results_file import write_results
from batcher.sender import QuotaGate, send_batches
from batcher.settings import Settings

if TYPE_CHECKING:
    from batcher.sandbox import Registration, Scenario

ProgressCallback = Callable[[int, int], None]  # (rows settled, requests sent)
log = get_logger()


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    """Run against an in-process sandbox instead of the real API."""

    registrations_file: Path | None = None  # None: the sandbox knows every row of the input


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a finished (or stopped) run did."""

    rows: RowResults
    stats: WireStats
    elapsed_s: float
    results_path: Path
    report: Report
    stopped: RunStopped | None = None
    interrupted: bool = False
    resolution: Resolution | None = None  # people-shaped input: default track per event, requests, per-row results

    @property
    def counts(self) -> dict[Outcome, int]:
        return self.report.counts


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
    results_format: str = "auto",
) -> RunSummary:
    """Send the plan's batches, journalling each, then write one results line per input row.

    Raises:
        UsageError: another run holds the results path.
        OutputError: the journal or the results file cannot be written.
    """
    started = time.monotonic()
    results: list[BatchResult] = []
    stats = WireStats()
    with results_lock(results_path):
        journal = Journal(journal_path(results_path), append=resume)

        # people-shaped input (resolve.py): _send resolves emails and default tracks first, and says the new plan
        resolved: list[tuple[Plan, Resolution | None]] = [(plan, None)]

        def collect(result: BatchResult) -> None:
            batch = resolved[-1][0].batches[result.batch - 1]
            journal.record(batch, result)  # durable before the rows count as done
            results.append(result)
            _log_batch(batch, result)
            if on_progress is not None:
                on_progress(len(batch.rows), result.attempts)

        stopped: RunStopped | None = None
        interrupted = False
        try:
            interrupted = asyncio.run(
                _send(plan, settings, credentials, sandbox_options, collect, quota, stats, resolved.append)
            )
        except RunStopped as exc:
            stopped = exc
        finally:
            journal.close()
        plan, resolution = resolved[-1]
        rows = reconcile(
            plan.loaded,
            plan.batches,
            results,
            pending_reason=_pending_reason(stopped, interrupted),
            applied_before=plan.applied_before,
            held_back_reason=_held_back_reason(plan.limit),
            decided=None if resolution is None else resolution.decided,
        )
        if resolution is not None:
            resolution.show(rows)  # people-shaped input: which registration and track each row went to
        write_results(results_path, plan.loaded, rows, results_format=results_format)
    return RunSummary(
        rows=rows,
        stats=stats,
        elapsed_s=time.monotonic() - started,
        results_path=results_path,
        report=build_report(plan.loaded.event_id, plan.loaded.track_id, rows.outcome, rows.error),
        stopped=stopped,
        interrupted=interrupted,
        resolution=resolution,
    )


async def _send(
    plan: Plan,
    settings: Settings,
    credentials: Credentials | None,
    sandbox_options: SandboxOptions | None,
    on_result: Callable[[BatchResult], None],
    quota: QuotaGate | None,
    stats: WireStats,
    on_plan: Callable[[tuple[Plan, Resolution]], None],
) -> bool:
    """Send in this loop; True when a signal interrupted the run.

    The first SIGINT/SIGTERM stops new batches and lets those in flight finish; a second one
    abandons them too (their rows stay pending: a PUT is idempotent, so --resume may resend them).
    """
    stop = asyncio.Event()
    signals: list[int] = []
    async with (
        _endpoint(plan.loaded, settings, credentials, sandbox_options) as (where, token),
        ApiClient(where, token, stop=stop, quota=quota, stats=stats) as client,
    ):
        # people-shaped input: emails and default tracks resolved on the run's one client, before any PUT
        plan, resolution = await resolve_plan(plan, client, where.base_url, where.batch_size)
        on_plan((plan, resolution))
        task = asyncio.ensure_future(send_batches(plan.batches, where, token, on_result=on_result, client=client))
        with _signals_set(lambda: _interrupt(signals, stop, task)):
            await _finish(task)
    return bool(signals)


@asynccontextmanager
async def _endpoint(
    loaded: LoadedInput,
    settings: Settings,
    credentials: Credentials | None,
    sandbox_options: SandboxOptions | None,
) -> AsyncIterator[tuple[Settings, Credentials]]:
    """The settings and credentials to send with: the real API's, or an in-process sandbox's."""
    if sandbox_options is None:
        if credentials is None:
            raise ValueError("credentials are needed to talk to the real API")
        yield settings, credentials
        return
    from batcher import sandbox  # noqa: PLC0415 - only a sandbox run serves

    app = sandbox.make_app(_sandbox_scenario(settings), _sandbox_registrations(loaded, sandbox_options))
    async with sandbox.running(app) as url:
        yield replace(settings, base_url=url), Credentials(SANDBOX_TOKEN)


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


def _sandbox_scenario(settings: Settings) -> Scenario:
    # the sandbox enforces the pace the user says their key has, as the real API would
    from batcher.sandbox import Scenario  # noqa: PLC0415

    return Scenario(rate_limit_per_s=max(DEFAULT_RATE_LIMIT_PER_S, math.ceil(settings.rate_per_s)))


def _sandbox_registrations(
    loaded: LoadedInput, options: SandboxOptions
) -> Sequence[Registration | tuple[str, str, str, str]]:
    if options.registrations_file is not None:
        from batcher.sandbox import read_registrations  # noqa: PLC0415

        return read_registrations(options.registrations_file)
    valid = loaded.invalid_reason == ""
    if loaded.needs_resolution is not None:
        valid &= ~loaded.needs_resolution  # their registrations are known only once resolved
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
