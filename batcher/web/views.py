"""What the templates show of a job, from the flows' results and render.py's texts (the command line's words)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batcher.flows.render import duration, preview_lines, run_lines, transition_text
from batcher.flows.render_reads import verify_lines
from batcher.models import Outcome

if TYPE_CHECKING:
    from batcher.flows.summary import RunResult
    from batcher.remote.snapshot import Preview
    from batcher.results.report import Report
    from batcher.web.jobs import Job


@dataclass(frozen=True, slots=True)
class Done:
    """A finished run or undo, as the Done section shows it."""

    lines: list[str]  # the command line's summary, word for word
    report: Report | None
    outcomes: list[tuple[str, int]]  # (outcome, rows), the outcomes that have rows
    unfinished: int  # failed + pending rows: "Retry failed" sends them
    exit_code: int
    declined: bool


@dataclass(frozen=True, slots=True)
class State:
    """The job's state section."""

    busy: bool
    preview_lines: list[str]
    transition: str
    run: Done | None
    undo: Done | None
    verify_lines: list[str]


def state_of(job: Job) -> State:
    busy = job.busy
    preview = job.preview
    return State(
        busy=busy,
        preview_lines=preview_lines(preview) if preview is not None else [],
        transition=transition_text(preview) if preview is not None else "",
        run=done_of(job.run) if job.run is not None and not (busy and job.kind == "run") else None,
        undo=done_of(job.undo) if job.undo is not None and not (busy and job.kind == "undo") else None,
        verify_lines=verify_lines(job.verification)
        if job.verification is not None and not (busy and job.kind == "verify")
        else [],
    )


def done_of(result: RunResult) -> Done:
    _, lines = run_lines(result)
    summary = result.summary
    report = summary.report if summary is not None else None
    outcomes = [(outcome.value, rows) for outcome, rows in report.counts.items() if rows] if report else []
    unfinished = report.counts[Outcome.FAILED] + report.counts[Outcome.PENDING] if report else 0
    return Done(lines, report, outcomes, unfinished, result.exit_code, result.declined)


def sent_rows(preview: Preview) -> list[tuple[str, str, int, bool]]:
    """The from -> to table: (from, to, rows, sent)."""
    return [
        (line.previous_status or "not found by the read", line.target_status, line.rows, line.sent)
        for line in preview.transitions
    ]


def seconds(value: float | None) -> str:
    return "unknown" if value is None else duration(value)


def thousands(value: int) -> str:
    return f"{value:,}"


def percent(done: int, total: int) -> int:
    return round(100 * done / total) if total else 100


def when(timestamp: float) -> str:
    """A time of this computer's clock, to the minute."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


FILTERS: dict[str, Callable[..., object]] = {
    "basename": basename,
    "seconds": seconds,
    "thousands": thousands,
    "sent_rows": sent_rows,
    "when": when,
}
