"""Wires the stages together for `run` and `plan`. No argument parsing, no printing, no exit."""

from __future__ import annotations

import asyncio
import math
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from batcher import sandbox
from batcher.auth import Credentials
from batcher.chunker import plan_batches
from batcher.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, RunStopped
from batcher.loader import DEFAULT_OPTIONS, InputOptions, LoadedInput, load_input
from batcher.models import Batch, BatchResult, Outcome
from batcher.reconciler import RowResults, all_succeeded, reconcile, write_results
from batcher.sender import send_batches
from batcher.settings import Settings

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Plan:
    """An input file validated and cut into batches; nothing sent yet."""

    loaded: LoadedInput
    batches: tuple[Batch, ...]

    @property
    def sendable_rows(self) -> int:
        return sum(len(batch.rows) for batch in self.batches)

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
    stopped: RunStopped | None = None
    interrupted: bool = False

    @property
    def requests_per_s(self) -> float:
        return self.requests_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


def prepare(
    input_path: Path, settings: Settings, *, default_status: str | None, options: InputOptions = DEFAULT_OPTIONS
) -> Plan:
    """Load, validate and batch an input file.

    Raises:
        InputError: the file cannot be read or trusted.
        UsageError: --status is not a known status, or an input option does not fit the file.
    """
    loaded = load_input(input_path, default_status=default_status, options=options)
    return Plan(loaded, tuple(plan_batches(loaded.groups, batch_size=settings.batch_size)))


def execute(
    plan: Plan,
    settings: Settings,
    credentials: Credentials | None,
    results_path: Path,
    *,
    sandbox_options: SandboxOptions | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunSummary:
    """Send the plan's batches, then write one results line per input row.

    Raises:
        OutputError: the results file cannot be written.
    """
    started = time.monotonic()
    results: list[BatchResult] = []

    def collect(result: BatchResult) -> None:
        results.append(result)
        if on_progress is not None:
            on_progress(len(plan.batches[result.batch - 1].rows))

    stopped: RunStopped | None = None
    interrupted = False
    try:
        interrupted = asyncio.run(_send(plan, settings, credentials, sandbox_options, collect))
    except RunStopped as exc:
        stopped = exc
    pending_reason = _pending_reason(stopped, interrupted)
    rows = reconcile(plan.loaded, plan.batches, results, pending_reason=pending_reason)
    write_results(results_path, plan.loaded, rows)
    return RunSummary(
        counts=rows.counts(),
        requests_sent=sum(result.attempts for result in results),
        elapsed_s=time.monotonic() - started,
        results_path=results_path,
        exit_code=_exit_code(plan, rows, stopped, interrupted),
        stopped=stopped,
        interrupted=interrupted,
    )


async def _send(
    plan: Plan,
    settings: Settings,
    credentials: Credentials | None,
    sandbox_options: SandboxOptions | None,
    on_result: Callable[[BatchResult], None],
) -> bool:
    """Send in this loop; True when a signal interrupted the run."""
    stop = asyncio.Event()
    interrupted: list[bool] = []

    def interrupt() -> None:
        interrupted.append(True)
        stop.set()

    with _signals_set(stop, interrupt):
        if sandbox_options is None:
            if credentials is None:
                raise ValueError("credentials are needed to talk to the real API")
            await send_batches(plan.batches, settings, credentials, on_result=on_result, stop=stop)
        else:
            app = sandbox.make_app(_sandbox_scenario(settings), _sandbox_registrations(plan.loaded, sandbox_options))
            async with sandbox.running(app) as url:
                await send_batches(
                    plan.batches,
                    replace(settings, base_url=url),
                    Credentials(sandbox.SANDBOX_TOKEN),
                    on_result=on_result,
                    stop=stop,
                )
    return bool(interrupted)


@contextmanager
def _signals_set(stop: asyncio.Event, interrupt: Callable[[], None]) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(number, interrupt)
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


def _sandbox_registrations(loaded: LoadedInput, options: SandboxOptions) -> list[tuple[str, str, str, str]]:
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
    return EXIT_OK if all_succeeded(plan.loaded, rows) else EXIT_SOME_FAILED
