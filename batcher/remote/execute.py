"""Sends a plan: the endpoint the flow gives (real or an in-process sandbox), one client for the reads and the PUTs,
the journal, signals (support/signals.py), then the results file; remote/outcomes.py merges what decided each row.

No argument parsing, no printing, no exit codes: the flow decides what a summary means.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from batcher.errors import BatcherError, RunStopped, internal_error
from batcher.http.auth import Credentials
from batcher.http.client import ApiClient
from batcher.http.session import Session
from batcher.models import Batch, BatchResult, Outcome, TrackRead, WireStats
from batcher.plan.chunker import plan_batches
from batcher.plan.planning import Plan
from batcher.plan.reconciler import reconcile
from batcher.remote.adopt import adopt, journal_resolved
from batcher.remote.outcomes import decided, held_back_reason, pending_reason, previous_status
from batcher.remote.reads import getter
from batcher.remote.resolve import Resolution, check_email_column, email_mismatches, resolve_plan
from batcher.remote.sender import send_batches
from batcher.remote.snapshot import Preview, Settled, TrackKey, preview, settle, take_snapshot, tracks_of
from batcher.results.format import RowResults
from batcher.results.journal import NO_EARLIER_ATTEMPTS, EarlierAttempts, Journal
from batcher.results.report import Report, build_report
from batcher.results.writer import write_results
from batcher.settings import Settings
from batcher.support.logs import get_logger
from batcher.support.signals import Interrupts, StopButton, signals_set

ProgressCallback = Callable[[int, int], None]  # (rows settled, requests sent); a read page is (0, 1)
ConfirmChanges = Callable[[Preview], bool]  # the reads are done: send the PUTs (True) or nothing (False)
# where to send: opened around the send, it yields the settings (base URL) and credentials to send with; the flow
# gives the real API's, or an in-process sandbox's (flows/endpoint.py)
Endpoint = Callable[[], AbstractAsyncContextManager[tuple[Settings, Credentials]]]
log = get_logger()


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """The reads before the PUTs (the snapshot); a run without them (--no-snapshot) passes None."""

    if_status: frozenset[str] | None = None  # change only rows whose current status is one of these
    force: bool = False  # undo: change rows back even where someone changed them since the run


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
    declined: bool = False  # confirm_changes said no after the reads: no PUT was sent
    resolution: Resolution | None = None  # people-shaped input: default track per event, requests, per-row results

    @property
    def counts(self) -> dict[Outcome, int]:
        return self.report.counts


@dataclass(slots=True)
class _Progress:
    """What the send got to: the batches really sent (cut once, after resolving and reading), what the reads found."""

    reads: dict[TrackKey, TrackRead] = field(default_factory=dict)
    batches: tuple[Batch, ...] = ()  # none until every row to send is known
    plan: Plan | None = None  # the plan once resolved (people-shaped input), None before
    resolution: Resolution | None = None
    settled: Settled | None = None
    preview: Preview | None = None
    declined: bool = False
    adopted: dict[int, str] = field(default_factory=dict)  # row -> before-image, of rows an earlier attempt changed


@dataclass(frozen=True, slots=True)
class Controls:
    """What a front-end without a terminal needs: a say after the reads, and a stop that is not a signal."""

    confirm_changes: ConfirmChanges | None = None  # None: send once the reads are done (the command line)
    stop: StopButton | None = None


def execute(
    plan: Plan,
    settings: Settings,
    session: Session,
    endpoint: Endpoint,
    results_path: Path,
    *,
    journal_file: Path,
    earlier: EarlierAttempts = NO_EARLIER_ATTEMPTS,
    on_progress: ProgressCallback | None = None,
    results_format: str = "auto",
    reads: ReadOptions | None = None,
    on_preview: Callable[[Preview], None] | None = None,
    controls: Controls = Controls(),
    untouched_results: Path | None = None,
) -> RunSummary:
    """Resolve the people-shaped rows, read the current statuses (unless reads is None), cut what is left to send
    into batches (the one call of the chunker), send them, journalling each, then write one results line per
    input row. on_preview sees what the reads found before any PUT; an error it raises (the flow's guard rails)
    stops the run with nothing sent. controls.confirm_changes, given the reads' from -> to table, may still
    send nothing (the page asks its user there); it waits in a thread, so the loop's connections stay served.
    The caller holds the results path's lock. journal_file is the run's journal; earlier, what the earlier attempts
    of this run did (--resume of an unfinished run): a registration they sent that the reads find at its target
    is this run's change, with their before-image; every other row is as the reads find it. When the run stopped
    before anything reached the API (no answer settled a row) and untouched_results is given, the results go there
    and the file at results_path (an earlier run's results) is left as it was.

    Raises:
        UsageError: from on_preview.
        OutputError: the journal or the results file cannot be written.
    """
    started = time.monotonic()
    results: list[BatchResult] = []
    stats = WireStats()
    journal = Journal(journal_file, append=True)
    progress = _Progress()

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
        run = _Run(plan, settings, journal, progress, reads, on_preview, earlier, controls, on_progress)
        interrupted, stopped = asyncio.run(_send(run, session, endpoint, collect, stats))
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
        planned=plan.groups,
        pending_reason=pending_reason(stopped, interrupted, declined=progress.declined),
        applied_before=plan.applied_before,
        held_back_reason=held_back_reason(plan.limit),
        previous_status=previous_status(plan, progress.reads, progress.adopted, earlier),
        decided=decided(plan, settled, resolution),
    )
    if resolution is not None:
        resolution.show(rows)  # people-shaped input: which registration and track each row went to
    if untouched_results is not None and stopped is not None and not results and _nothing_settled(rows):
        results_path = untouched_results
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
        declined=progress.declined,
        resolution=resolution,
    )


def _nothing_settled(rows: RowResults) -> bool:
    """No row got an outcome from the API: each is still pending, or was decided by the input alone."""
    unsettled = (Outcome.PENDING.value, Outcome.INVALID.value, Outcome.DUPLICATE.value)
    return bool(np.isin(rows.outcome.astype(str), unsettled).all())


@dataclass(frozen=True, slots=True)
class _Run:
    """What the send of one run needs, besides its endpoint."""

    plan: Plan
    settings: Settings
    journal: Journal
    progress: _Progress
    reads: ReadOptions | None
    on_preview: Callable[[Preview], None] | None
    earlier: EarlierAttempts  # what the earlier attempts of this (unfinished) run did
    controls: Controls
    on_progress: ProgressCallback | None = None  # told of each read page too, as (0 rows, 1 request)


async def _send(
    run: _Run,
    session: Session,
    endpoint: Endpoint,
    on_result: Callable[[BatchResult], None],
    stats: WireStats,
) -> tuple[bool, RunStopped | None]:
    """Read, then send, in this loop on one client; (interrupted by a signal, the error that stopped the run).

    The first SIGINT/SIGTERM stops new requests and lets those in flight finish; a second one
    abandons them too (their rows stay pending: a PUT is idempotent, so --resume may resend them).
    """
    stop = asyncio.Event()
    async with endpoint() as (where, token), session.client(where, token, stop=stop, stats=stats) as client:
        interrupts = Interrupts(stop, asyncio.ensure_future(_read_and_send(run, where, token, client, on_result)))
        button = run.controls.stop
        with signals_set(interrupts), button.listening(interrupts) if button is not None else nullcontext():
            try:
                await interrupts.finish()
            except RunStopped as exc:
                if not interrupts.count or client.stopped is not None:
                    return bool(interrupts.count), client.stopped or exc
    return bool(interrupts.count), None


async def _read_and_send(
    run: _Run, where: Settings, token: Credentials, client: ApiClient, on_result: Callable[[BatchResult], None]
) -> None:
    """The reads (unless turned off) settle what they can; the batches left are sent on the same client."""
    progress = run.progress
    # people-shaped input: emails and default tracks resolved on the run's one client, before any read or PUT
    plan, resolution = await resolve_plan(run.plan, client, where.base_url)
    progress.plan, progress.resolution = plan, resolution
    journal_resolved(run.journal, run.plan.loaded, resolution)
    groups, found, previous = plan.groups, None, None
    if run.reads is not None:
        loaded = plan.loaded
        known = resolution.known(plan.groups)  # the listings of the resolve stage are not read again
        wanted = tracks_of(plan.groups)
        for key, read in known.items():  # but they are this run's before-image too
            run.journal.record_read(read, [rid for group in wanted.get(key, []) for rid in group.registration_ids])
        progress.reads.update(known)
        snapshot, made = await take_snapshot(
            getter(client),
            where.base_url,
            plan.groups,
            loaded.row_count,
            known=known,
            on_read=run.journal.record_read,
            on_track=None if run.on_progress is None else functools.partial(_page_read, run.on_progress),
        )
        progress.reads.update({(read.event_id, read.track_id): read for read in made})
        # a row with an ID and an email: the registration as read must hold that email
        checked, mismatch = email_mismatches(loaded, plan.groups, {**known, **progress.reads})
        check_email_column(loaded, plan.groups, mismatch)  # most rows disagree: stop before any PUT
        settled = settle(
            checked,
            snapshot,
            if_status=run.reads.if_status,
            expected_status=plan.expected_status,
            force=run.reads.force,
        )
        wrong = mismatch != ""
        settled.outcome[wrong], settled.reason[wrong] = Outcome.INVALID.value, mismatch[wrong]
        progress.adopted = adopt(run.journal, run.earlier, checked, snapshot.previous_status, settled)
        previous = snapshot.previous_status
        stated = loaded.stated_status
        if stated is not None and progress.adopted:  # the file predates this run's own earlier changes
            stated = stated.copy()
            stated[list(progress.adopted)] = ""
        found = preview(loaded.registration_status, snapshot, settled, stated=stated, row_number=loaded.row_number)
        found = replace(found, earlier=len(progress.adopted))
        progress.settled, groups = settled, settled.groups
    progress.batches = tuple(plan_batches(groups, batch_size=plan.batch_size))  # the one cut into batches
    if found is not None:
        found = replace(found, puts=len(progress.batches))
        if run.on_preview is not None:
            run.on_preview(found)  # may refuse the run (--max-changes): nothing is sent
        progress.preview = found
        confirm = run.controls.confirm_changes
        if confirm is not None and progress.batches and not await asyncio.to_thread(confirm, found):
            progress.declined = True
            return
    if previous is not None:  # each before-image is durable before any PUT (--no-snapshot: there is none)
        before = previous
        run.journal.record_intents(
            [(batch, before[np.asarray(batch.rows, dtype=np.int64)].tolist()) for batch in progress.batches]
        )
    await send_batches(progress.batches, where, client, on_result=on_result)


def _page_read(on_progress: ProgressCallback, records: int, total_records: int | None) -> None:
    """A list page read: progress too (no row settled yet, one request)."""
    on_progress(0, 1)


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
