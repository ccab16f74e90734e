"""The end-of-run summary: rows per outcome, a per-event/track table and the commonest reasons.

Built column-wise from a run's rows or from an existing results file, so `run` and `report` say the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from batcher.errors import InputError
from batcher.loader import LoadedInput, Strings, load_input
from batcher.models import RESULT_COLUMNS, Outcome
from batcher.reconciler import write_csv_atomically

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
    # a duplicate's reason is its first copy's, already counted there (and none at all when that one succeeded)
    done = frame["o"].isin([Outcome.SUCCEEDED.value, Outcome.DUPLICATE.value])
    unsuccessful = frame[~done & (frame["r"] != "")]
    reasons = unsuccessful["r"].value_counts().head(TOP_REASONS)
    return Report(counts, tracks, tuple((str(reason), int(rows)) for reason, rows in reasons.items()))


@dataclass(frozen=True, slots=True)
class ResultsFile:
    """An existing results file, loaded: the user's columns plus the earlier outcome and error."""

    loaded: LoadedInput
    outcome: Strings
    error: Strings


def read_results_file(path: Path) -> ResultsFile:
    """Load a results file written by batcher.

    Raises:
        InputError: unreadable, or not a batcher results file.
    """
    loaded = load_input(path, default_status=None)
    if loaded.earlier is None:
        raise InputError(
            f"{path}: is not a batcher results file (its last columns are not {', '.join(RESULT_COLUMNS)})"
        )
    return ResultsFile(loaded, loaded.earlier[0], loaded.earlier[2])


def report_results_file(results: ResultsFile) -> Report:
    loaded = results.loaded
    return build_report(loaded.event_id, loaded.track_id, results.outcome, results.error)


def extract_rows(results: ResultsFile, outcomes: Sequence[Outcome], out: Path) -> int:
    """Write the rows with one of these outcomes, input columns only, ready to run again; returns the count.

    Raises:
        OutputError: out cannot be written.
    """
    import pandas as pd  # noqa: PLC0415 - see build_report

    chosen = np.isin(results.outcome, [item.value for item in outcomes])
    loaded = results.loaded
    frame = pd.DataFrame({position: column[chosen] for position, column in enumerate(loaded.values)})
    write_csv_atomically(out, frame, loaded.header)
    return int(chosen.sum())
