"""The `report` flow: sum up an existing results file, and extract rows to run again."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batcher.errors import EXIT_OK, EXIT_SOME_FAILED, UsageError
from batcher.models import Outcome
from batcher.results.report import Report, extract_rows, read_results_file, report_results_file
from batcher.support.files import write_text_atomically
from batcher.support.redaction import redact


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """What `report` was told."""

    results: Path
    only: tuple[Outcome, ...] | None = None
    out: Path | None = None
    summary_json: Path | None = None

    def __post_init__(self) -> None:
        if (self.only is None) != (self.out is None):
            raise UsageError("--only and --out go together: --only failed,pending --out retry.csv")


@dataclass(frozen=True, slots=True)
class ReportResult:
    """A results file summed up, and how many rows were extracted (None: none asked for)."""

    options: ReportOptions
    report: Report
    extracted: int | None
    exit_code: int
    needs_status: bool = False  # the extracted rows hold no target: run them with --status (or --status-column)
    status: str = ""  # the one target status the extracted rows share ("" when they do not share one)


def report_flow(options: ReportOptions) -> ReportResult:
    """Read the results file, write the summary JSON and the extracted rows if asked.

    Raises:
        InputError: the file is not a readable results file.
        OutputError: the summary or the extracted rows cannot be written.
    """
    results = read_results_file(options.results)
    report = report_results_file(results)
    if options.summary_json is not None:
        document = {"results": str(options.results), **report.as_dict()}
        write_text_atomically(options.summary_json, redact(json.dumps(document, indent=2) + "\n"))
    extracted = None
    if options.out is not None and options.only is not None:
        extracted = extract_rows(results, options.only, options.out)
    # the target is never read from a registration_status column (issue 11): the command must name it
    status = ""
    if options.only is not None:
        chosen = np.isin(np.char.lower(results.outcome.astype(str)), [item.value for item in options.only])
        targets = {str(target) for target in results.earlier.target_status[chosen].tolist() if target}
        status = targets.pop() if len(targets) == 1 else ""
    unfinished = sum(report.counts[item] for item in (Outcome.PENDING, Outcome.FAILED, Outcome.INVALID))
    code = EXIT_OK if not unfinished else EXIT_SOME_FAILED
    return ReportResult(options, report, extracted, code, needs_status=True, status=status)


def chosen_words(outcomes: Sequence[Outcome]) -> str:
    return ",".join(outcome.value for outcome in outcomes)
