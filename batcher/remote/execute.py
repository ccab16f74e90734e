"""Sends a plan: the endpoint (real or an in-process sandbox), one client for the reads and the PUTs, the journal,
signals, then the results file.

No argument parsing, no printing, no exit codes: the flow decides what a summary means.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from batcher.errors import BatcherError, RunStopped, UsageError, WrongBaseUrl, internal_error
from batcher.flows.endpoint import SandboxOptions, open_endpoint
from batcher.http.auth import Credentials
from batcher.http.client import ApiClient
from batcher.input.columnar import Strings
from batcher.models import Batch, BatchResult, Outcome, WireStats
from batcher.plan.chunker import plan_batches
from batcher.plan.planning import Plan
from batcher.plan.reconciler import RowResults, reconcile
from batcher.remote.reads import TrackRead, getter
from batcher.remote.resolve import Resolution, email_mismatches, groups_of, resolve_plan
from batcher.remote.sender import QuotaGate, send_batches
from batcher.remote.snapshot import Preview, Settled, TrackKey, image, preview, settle, take_snapshot, tracks_of
from batcher.results.file import write_results
from batcher.results.journal import BeforeImage, Journal, journal_path, read_before_image, results_lock
from batcher.results.report import Report, build_report
from batcher.settings import Settings
from batcher.support.logs import get_logger

ProgressCallback = Callable[[int, int], None]  # (rows settled, requests sent)
log = get_logger()


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """The reads before the PUTs (the snapshot); a run without them (--no-snapshot) passes None."""

    if_status: frozenset[str] | None = None  # change only rows whose current status is one of these
    max_changes: int | None = None  # refuse, before any PUT, a run that would really change more rows
    force: bool = False  # undo: change rows back even where someone changed them since the run


class TooManyChanges(UsageError):
    """The reads show more real changes than --max-changes allows: nothing was sent."""


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
    preview: Preview | None = None  # what the reads found (None: nothing was read)
    resolution: Resolution | None = None  # people-shaped input: default track per event, requests, per-row results

    @property
    def counts(self) -> dict[Outcome, int]:
        return self.report.counts


@dataclass(slots=True)
class _Progress:
    """What the send got to: the batches really sent (re-cut after the reads), and what the reads found."""

    batches: tuple[Batch, ...]
    reads: dict[TrackKey, TrackRead] = field(default_factory=dict)
    plan: Plan | None = None  # the plan once resolved (people-shaped input), None before
    resolution: Resolution | None = None
    settled: Settled | None = None
    preview: Preview | None = None


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
    reads: ReadOptions | None = None,
    on_preview: Callable[[Preview], None] | None = None,
) -> RunSummary:
    """Read the current statuses (unless reads is None), send the batches left, journalling each, then write
    one results line per input row.

    Raises:
        UsageError: another run holds the results path; TooManyChanges: more real changes than --max-changes.
        OutputError: the journal or the results file cannot be written.
    """
    started = time.monotonic()
    results: list[BatchResult] = []
    stats = WireStats()
    with results_lock(results_path):
        journal_file = journal_path(results_path)
        images = read_before_image(journal_file) if resume and journal_file.exists() else {}
        journal = Journal(journal_file, append=resume)
        progress = _Progress(plan.batches, {key: image.read for key, image in images.items()})

        def collect(result: BatchResult) -> None:
            batch = progress.batches[result.batch - 1]
            journal.record(batch, result)  # durable before the rows count as done
            results.append(result)
            _log_batch(batch, result)
            if on_progress is not None:
                on_progress(len(batch.rows), result.attempts)

        stopped: RunStopped | None = None
        interrupted = False
        try:
            run = _Run(plan, settings, journal, progress, reads, on_preview, _known(plan, images))
            interrupted, stopped = asyncio.run(_send(run, credentials, sandbox_options, collect, quota, stats))
        except BatcherError:
            raise
        except Exception as exc:  # the last line of defence: a bug still leaves the results of what was done
            log.exception("unexpected error during the run")
            stopped = internal_error(exc)
        finally:
            journal.close()
        plan, resolution, settled = progress.plan or plan, progress.resolution, progress.settled
        rows = reconcile(
            plan.loaded,
            progress.batches,
            results,
            pending_reason=_pending_reason(stopped, interrupted),
            applied_before=plan.applied_before,
            held_back_reason=_held_back_reason(plan.limit),
            previous_status=_previous_status(plan, progress.reads, images),
            decided=_decided(plan, settled, resolution),
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
        preview=progress.preview,
        resolution=resolution,
    )


def _previous_status(
    plan: Plan, reads: Mapping[TrackKey, TrackRead], images: Mapping[TrackKey, BeforeImage]
) -> Strings | None:
    """Per row, the status before the change: from this run's reads, except for the rows an earlier run on this
    results path applied (--resume), which keep what its journal read before them, never what is read now (their
    own change)."""
    count = plan.loaded.row_count
    previous = image(plan.loaded.groups, reads, count).previous_status if reads else None
    applied = plan.applied_before > 0
    if not images or not applied.any():
        return previous
    before = image(plan.loaded.groups, {key: recorded.read for key, recorded in images.items()}, count)
    previous = previous.copy() if previous is not None else np.full(count, "", dtype=object)
    previous[applied] = before.previous_status[applied]
    return previous


def _decided(plan: Plan, settled: Settled | None, resolution: Resolution | None) -> tuple[Strings, Strings] | None:
    """The rows settled before sending: (undo) from the results file, by resolving, then by the reads."""
    layers = [plan.preset, resolution.decided if resolution is not None else None]
    layers.append((settled.outcome, settled.reason) if settled is not None else None)
    present = [layer for layer in layers if layer is not None]
    if not present:
        return None
    outcome, reason = present[0][0].copy(), present[0][1].copy()
    for more_outcome, more_reason in present[1:]:
        chosen = more_outcome != ""
        outcome[chosen], reason[chosen] = more_outcome[chosen], more_reason[chosen]
    return outcome, reason


def _known(plan: Plan, images: Mapping[TrackKey, BeforeImage]) -> dict[TrackKey, TrackRead]:
    """The journal's reads that answer for every id this run asks about in their track (the others: read again)."""
    known: dict[TrackKey, TrackRead] = {}
    for key, groups in tracks_of(plan.groups).items():
        recorded = images.get(key)
        if recorded is not None and all(rid in recorded.covered for group in groups for rid in group.registration_ids):
            known[key] = recorded.read
    return known


@dataclass(frozen=True, slots=True)
class _Run:
    """What the send of one run needs, besides its endpoint."""

    plan: Plan
    settings: Settings
    journal: Journal
    progress: _Progress
    reads: ReadOptions | None
    on_preview: Callable[[Preview], None] | None
    known: dict[TrackKey, TrackRead]


async def _send(
    run: _Run,
    credentials: Credentials | None,
    sandbox_options: SandboxOptions | None,
    on_result: Callable[[BatchResult], None],
    quota: QuotaGate | None,
    stats: WireStats,
) -> tuple[bool, RunStopped | None]:
    """Read, then send, in this loop on one client; (interrupted by a signal, the error that stopped the run).

    The first SIGINT/SIGTERM stops new requests and lets those in flight finish; a second one
    abandons them too (their rows stay pending: a PUT is idempotent, so --resume may resend them).
    """
    stop = asyncio.Event()
    signals: list[int] = []
    async with (
        open_endpoint(run.plan.loaded, run.settings, credentials, sandbox_options) as (where, token),
        ApiClient(where, token, stop=stop, quota=quota, stats=stats) as client,
    ):
        task = asyncio.ensure_future(_read_and_send(run, where, token, client, on_result))
        with _signals_set(lambda: _interrupt(signals, stop, task)):
            try:
                await _finish(task)
            except RunStopped as exc:
                if not signals or client.stopped is not None:
                    return bool(signals), client.stopped or exc
    return bool(signals), None


async def _read_and_send(
    run: _Run, where: Settings, token: Credentials, client: ApiClient, on_result: Callable[[BatchResult], None]
) -> None:
    """The reads (unless turned off) settle what they can; the batches left are sent on the same client."""
    progress = run.progress
    # people-shaped input: emails and default tracks resolved on the run's one client, before any read or PUT
    plan, resolution = await resolve_plan(run.plan, client, where.base_url, where.batch_size)
    if plan is not run.plan:
        plan = replace(plan, groups=tuple(groups_of(plan.batches)))
    progress.plan, progress.resolution, progress.batches = plan, resolution, plan.batches
    if run.reads is not None:
        loaded = plan.loaded
        known = {**resolution.known(plan.groups), **run.known}  # the listings of the resolve stage are not read again
        snapshot, made = await take_snapshot(
            getter(client),
            where.base_url,
            plan.groups,
            loaded.row_count,
            known=known,
            on_read=run.journal.record_read,
        )
        progress.reads.update({(read.event_id, read.track_id): read for read in made})
        _stop_on_a_wrong_base_url(made, where.base_url)
        # a row with an ID and an email: the registration as read must hold that email
        groups, mismatch = email_mismatches(loaded, plan.groups, {**known, **progress.reads})
        settled = settle(
            groups,
            snapshot,
            if_status=run.reads.if_status,
            expected_status=plan.expected_status,
            force=run.reads.force,
        )
        wrong = mismatch != ""
        settled.outcome[wrong], settled.reason[wrong] = Outcome.INVALID.value, mismatch[wrong]
        found = preview(
            loaded.registration_status, snapshot, settled, stated=loaded.stated_status, row_number=loaded.row_number
        )
        limit = run.reads.max_changes
        if limit is not None and found.changes > limit:
            raise TooManyChanges(
                f"{loaded.path}: the reads show this run would change {found.changes} registrations, more than "
                f"--max-changes {limit}; nothing was sent. Check the input; if it is right, raise --max-changes."
            )
        progress.batches = tuple(plan_batches(settled.groups, batch_size=run.settings.batch_size))
        progress.settled, progress.preview = settled, found
        if run.on_preview is not None:
            run.on_preview(found)
    await send_batches(progress.batches, where, token, on_result=on_result, client=client)


def _stop_on_a_wrong_base_url(made: Sequence[TrackRead], base_url: str) -> None:
    """A base URL whose every read answer is unreadable is not the API: stop before any PUT."""
    if made and all(read.unreadable for read in made):
        raise WrongBaseUrl(
            f"{base_url} does not answer like the Constant Contact API (its answers to the reads are not the "
            "API's); check --base-url. Nothing was sent."
        )


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


def _interrupt(signals: list[int], stop: asyncio.Event, task: asyncio.Future[None]) -> None:
    signals.append(1)
    stop.set()
    if len(signals) > 1:
        task.cancel()


async def _finish(task: asyncio.Future[None]) -> None:
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
