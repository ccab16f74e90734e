"""What a `run` or `plan` tells when it ends: its result value (RunResult) and the --summary-json document of it."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from batcher.errors import EXIT_OK, BatcherError, UsageError
from batcher.flows.options import RunOptions
from batcher.support.files import SameFile, why_unwritable, write_text_atomically
from batcher.support.redaction import redact

if TYPE_CHECKING:
    from batcher.flows.verify import VerifyResult
    from batcher.plan.planning import Plan
    from batcher.remote.execute import RunSummary
    from batcher.results.history import RunRecord


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
    run: RunRecord | None = None  # the run's record in the run history, once it started sending


class UnwritableSummary(UsageError):
    """--summary-json names a path that cannot be written (so no summary is written there)."""


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
        "error": _error_text(result),
        "input": str(result.options.input),
        # where this run's results are: beside the input, or (nothing reached the API) its run history folder
        "results": str(result.summary.results_path if result.summary is not None else result.options.results),
        "run_id": result.run.run_id if result.run is not None else None,
    }
    if result.error is not None and result.error.exit_code == EXIT_OK:
        document["note"] = str(result.error)
        if summary is None:  # nothing to do: no results were written, the file there is an earlier run's
            document["results"] = None
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


def _error_text(result: RunResult) -> str | None:
    """What stopped the command: its error, or what stopped the run (None for nothing to do)."""
    if result.error is not None:
        return str(result.error) if result.error.exit_code != EXIT_OK else None
    stopped = result.summary.stopped if result.summary is not None else None
    return str(stopped) if stopped is not None else None


def with_summary_json(result: RunResult) -> RunResult:
    path = result.options.output.summary_json
    if path is None or isinstance(result.error, UnwritableSummary | SameFile):
        return result
    try:
        text = redact(json.dumps(summary_document(result), indent=2) + "\n")
        write_text_atomically(path, text, what="the summary")
    except BatcherError as exc:
        return replace(result, summary_error=str(exc))
    return result
