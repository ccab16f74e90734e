"""The end-of-run summary: rows per outcome, a per-event/track table and the commonest reasons.

Built column-wise from a run's rows or from an existing results file, so `run` and `report` say the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

from batcher.input.columnar import Strings, fullmatch
from batcher.input.rules import TRACK_PATTERN, UUID_PATTERN
from batcher.models import EVENT_NOT_FOUND, TRACK_NOT_FOUND, Outcome
from batcher.results.format import RowResults, as_text, escape_formulas
from batcher.results.reader import ResultsFile, read_results_file
from batcher.results.writer import write_csv

__all__ = [
    "Report",
    "ResultsFile",
    "TrackLine",
    "build_report",
    "extract_rows",
    "failures_to_fix",
    "read_results_file",
]

ID_PATTERNS = {"event_id": UUID_PATTERN, "track_id": TRACK_PATTERN, "registration_id": UUID_PATTERN}
TOP_REASONS = 5


@dataclass(frozen=True, slots=True)
class TrackLine:
    event_id: str
    track_id: str
    counts: dict[Outcome, int]


@dataclass(frozen=True, slots=True)
class Report:
    """What a results file says, summed up."""

    counts: dict[Outcome, int]
    tracks: tuple[TrackLine, ...]
    top_reasons: tuple[tuple[str, int], ...]

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "counts": {outcome.value: count for outcome, count in self.counts.items()},
            "tracks": [
                {"event_id": line.event_id, "track_id": line.track_id}
                | {outcome.value: count for outcome, count in line.counts.items()}
                for line in self.tracks
            ],
            "top_reasons": [{"reason": reason, "rows": rows} for reason, rows in self.top_reasons],
        }


def build_report(event_id: Strings, track_id: Strings, outcome: Strings, error: Strings) -> Report:
    """Sum up rows given as columns."""
    import pandas as pd  # noqa: PLC0415 - `plan` never reports, and pandas takes a fifth of a second to import

    frame = pd.DataFrame({"e": event_id, "t": track_id, "o": outcome, "r": error})
    counted = frame["o"].value_counts()
    counts = {item: int(counted.get(item.value, 0)) for item in Outcome}
    table = pd.crosstab([frame["e"], frame["t"]], frame["o"]) if len(frame) else pd.DataFrame()
    tracks = tuple(
        TrackLine(str(event), str(track), {item: int(row.get(item.value, 0)) for item in Outcome})
        for (event, track), row in cast(Iterable[tuple[tuple[str, str], pd.Series]], table.iterrows())
    )
    # a duplicate's reason is its first copy's, already counted there (and none at all when that one succeeded);
    # an unchanged row needed no change, and its reason ("already CANCELED") is no failure
    done = frame["o"].isin([Outcome.SUCCEEDED.value, Outcome.DUPLICATE.value, Outcome.UNCHANGED.value])
    unsuccessful = frame[~done & (frame["r"] != "")]
    reasons = unsuccessful["r"].value_counts().head(TOP_REASONS)
    return Report(counts, tracks, tuple((str(reason), int(rows)) for reason, rows in reasons.items()))


# 4xx answers that a later try may not get: the token's (401) and the server's moment (408, 425, 429)
RETRYABLE_CLIENT_ERRORS = (401, 408, 425, 429)


def failures_to_fix(rows: RowResults) -> tuple[int, tuple[str, ...]]:
    """(the failed rows a retry may fix, the reasons of those it cannot, commonest first). A retry cannot fix a row
    whose event or track the API does not know, nor one whose request the API refused as such (a 4xx answer):
    the input must change first."""
    failed = rows.outcome.astype(str) == Outcome.FAILED.value
    status = rows.http_status
    refused = (status >= 400) & (status < 500) & ~np.isin(status, RETRYABLE_CLIENT_ERRORS)
    errors = rows.error.astype(str)
    unknown = np.char.startswith(errors, EVENT_NOT_FOUND) | np.char.startswith(errors, TRACK_NOT_FOUND)
    fix = failed & (refused | unknown)
    reasons, counts = np.unique(errors[fix], return_counts=True)
    commonest = [str(reason) for _, reason in sorted(zip((-counts).tolist(), reasons.tolist(), strict=True))]
    return int((failed & ~fix).sum()), tuple(commonest)


def report_results_file(results: ResultsFile) -> Report:
    loaded = results.loaded
    return build_report(loaded.event_id, loaded.track_id, results.outcome, results.error)


def extract_rows(results: ResultsFile, outcomes: Sequence[Outcome], out: Path) -> int:
    """Write the rows with one of these outcomes, input columns only, ready to run again; returns the count.

    Raises:
        OutputError: out cannot be written.
    """
    chosen = np.isin(results.outcome, [item.value for item in outcomes])
    loaded = results.loaded
    columns = [escape_formulas(column[chosen]) for column in loaded.values]
    # key cells in a form batcher accepts go out in their API form, which no spreadsheet runs as a formula and
    # every run reads back with the same meaning
    for field, position in loaded.field_columns.items():
        if field in ID_PATTERNS:
            canonical: Strings = getattr(loaded, field)[chosen]
            accepted = fullmatch(pa.chunked_array([pa.array(canonical, pa.string())]), ID_PATTERNS[field])
            columns[position] = np.where(accepted, canonical, columns[position])
    header = escape_formulas(np.array(loaded.header, dtype=object)).tolist()
    source = loaded.source  # the results' own separator and byte-order mark: German Excel opens it as it did those
    write_csv(
        out,
        header,
        [as_text(column) for column in columns],
        separator=source.separator,
        bom=source.bom,
        what="the rows",
    )
    return int(chosen.sum())
