"""The `verify` flow: read back every row a results file marks succeeded or unchanged, and check that its
registration has its target_status now; write the results plus current_status and verified.

`verify_results` is the core (reads through any getter, so `run --verify` can call it on the run's own client);
`verify_flow` is the command around it. No printing: render.py turns the result into text.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from batcher.errors import EXIT_OK, EXIT_SOME_FAILED, RunStopped
from batcher.flows.options import ReadOptions
from batcher.flows.session import run_reads
from batcher.http.session import Session, SessionStats
from batcher.input.columnar import Strings
from batcher.input.earlier import RESULT_COLUMNS, VERIFY_COLUMNS
from batcher.models import Outcome, TrackRead
from batcher.remote.reads import Getter, PageCallback, not_read_hint, read_track
from batcher.results import history
from batcher.results.export_file import check_out_path, csv_text, write_csv_text
from batcher.results.format import output_format
from batcher.results.journal import read_resolved
from batcher.results.reader import ResultsFile, read_results_file
from batcher.support.files import check_distinct

if TYPE_CHECKING:
    from batcher.input.rows import LoadedInput
    from batcher.results.history import RunRecord

YES, NO, MISSING, UNKNOWN = "yes", "no", "missing", "unknown"  # unknown: no registration to read (no run record)
CHECKED_OUTCOMES = (Outcome.SUCCEEDED.value, Outcome.UNCHANGED.value)
MAX_SHOWN = 10
# any status will do: the rows' targets are read from the target_status column, the loader only needs one
_LOADER_STATUS = "REGISTERED"


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    """What `verify` was told."""

    results: Path
    read: ReadOptions
    out: Path | None = None  # None: default_verify_path(results)

    @property
    def out_path(self) -> Path:
        return self.out if self.out is not None else default_verify_path(self.results)


def default_verify_path(results: Path) -> Path:
    """Beside the results: X.results.csv -> X.results.verify.csv."""
    return results.with_name(results.stem + history.VERIFY_SUFFIX)


@dataclass(frozen=True, slots=True)
class Verification:
    """Per row of a results file: the status read back, and the verdict ("" for a row not checked)."""

    current_status: Strings  # "" where not read or not found
    verified: Strings  # yes / no / missing, "" for rows whose outcome is not succeeded or unchanged
    requests: int  # the read requests it took

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(str(value) for value in self.verified.tolist())
        return {word: counted[word] for word in (YES, NO, MISSING, UNKNOWN)}

    @property
    def checked(self) -> int:
        return sum(self.counts.values())

    @property
    def all_verified(self) -> bool:
        counts = self.counts
        return counts[NO] == 0 and counts[MISSING] == 0 and counts[UNKNOWN] == 0


def load_results(path: Path) -> ResultsFile:
    """A results file, read for verifying (each row's target is its target_status cell).

    Raises:
        InputError: unreadable, or not a batcher results file.
    """
    return read_results_file(path, default_status=_LOADER_STATUS)


def with_resolved(results: ResultsFile, resolved: Mapping[int, tuple[str, str, str]]) -> ResultsFile:
    """The results with each row named by email (or without a track) given the registration its run's journal says
    it went to."""
    if not resolved:
        return results
    loaded = results.loaded
    event, track, registration = (np.asarray(column, dtype=object).copy() for column in _keys(loaded))
    for row, (event_id, track_id, registration_id) in resolved.items():
        if 0 <= row < loaded.row_count and not registration[row]:
            event[row], track[row], registration[row] = event_id, track_id, registration_id
    return replace(results, loaded=replace(loaded, event_id=event, track_id=track, registration_id=registration))


def _keys(loaded: LoadedInput) -> tuple[Strings, Strings, Strings]:
    return loaded.event_id, loaded.track_id, loaded.registration_id


def to_check(results: ResultsFile) -> npt.NDArray[np.bool_]:
    """The rows verify must check: every row whose outcome says its registration is at its target now."""
    checked = np.isin(results.earlier.outcome, CHECKED_OUTCOMES) & (results.earlier.target_status != "")
    return np.asarray(checked, dtype=np.bool_)


def rows_to_check(results: ResultsFile) -> dict[tuple[str, str], list[int]]:
    """The rows to read back, by (event, track): outcome succeeded or unchanged, keys and target known (a row to
    check whose registration is not known is UNKNOWN: it fails the verification)."""
    loaded = results.loaded
    keyed = (loaded.event_id != "") & (loaded.track_id != "") & (loaded.registration_id != "")
    chosen = to_check(results) & keyed
    tracks: dict[tuple[str, str], list[int]] = {}
    for row in np.flatnonzero(chosen).tolist():
        tracks.setdefault((str(loaded.event_id[row]), str(loaded.track_id[row])), []).append(row)
    return tracks


async def verify_results(
    get: Getter, base_url: str, results: ResultsFile, *, on_listing: Callable[[], PageCallback] | None = None
) -> Verification:
    """Read back the rows to check (one read_track per track, within its bound) and judge each.

    yes: the registration has its target_status now; no: it has another (current_status says which); missing:
    the read did not find it, or its event or track is gone.

    Raises:
        RunStopped: the client stopped (401/403/quota), or a track could not be read after the retries.
    """
    loaded = results.loaded
    tracks = rows_to_check(results)
    reads: list[TrackRead] = await asyncio.gather(
        *(
            read_track(
                get,
                base_url,
                event_id,
                track_id,
                {str(loaded.registration_id[row]) for row in rows},
                on_page=on_listing() if on_listing else None,
            )
            for (event_id, track_id), rows in tracks.items()
        )
    )
    current = np.full(loaded.row_count, "", dtype=object)
    verified = np.where(to_check(results), UNKNOWN, "").astype(object)  # until read
    for read, rows in zip(reads, tracks.values(), strict=True):
        if read.failure and not read.group_missing:
            reason = read.failure.removesuffix(f"; {not_read_hint()}")
            raise RunStopped(
                f"event {read.event_id} track {read.track_id}: {reason}; nothing was written, run batcher verify "
                "again later"
            )
        for row in rows:
            record = read.found.get(str(loaded.registration_id[row]))
            if record is None:
                verified[row] = MISSING
                continue
            current[row] = record.registration_status
            verified[row] = YES if record.registration_status == results.earlier.target_status[row] else NO
    return Verification(current, verified, sum(read.requests for read in reads))


def write_verification(path: Path, results: ResultsFile, verification: Verification) -> None:
    """The results file's columns, as written, plus current_status and verified; in the results' own format.

    Raises:
        OutputError: path cannot be written.
    """
    loaded, earlier = results.loaded, results.earlier
    separator, bom = output_format(loaded.source)
    header = [*loaded.header, *RESULT_COLUMNS, *VERIFY_COLUMNS]
    earlier_columns = (
        earlier.outcome,
        earlier.previous_status,
        earlier.target_status,
        earlier.http_status,
        earlier.error,
        earlier.attempts,
        earlier.batch,
    )
    columns = [*loaded.values, *earlier_columns, verification.current_status, verification.verified]
    text = csv_text(header, [column.tolist() for column in columns], separator=separator)
    write_csv_text(path, text, bom=bom, what="the verification")


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A row that did not verify, to show."""

    row_number: int
    registration_id: str
    target_status: str
    current_status: str  # "" when missing


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What verify found and wrote."""

    options: VerifyOptions
    counts: Mapping[str, int]  # yes / no / missing
    not_checked: int  # rows whose outcome is neither succeeded nor unchanged
    mismatches: tuple[Mismatch, ...]  # the first few rows that did not verify
    session: SessionStats
    exit_code: int


def verify_flow(
    options: VerifyOptions,
    environ: Mapping[str, str],
    *,
    on_listing: Callable[[], PageCallback] | None = None,
    session: Session | None = None,
) -> VerifyResult:
    """Read the results file, read back its rows, write the verification CSV.

    Raises:
        InputError: the file is not a readable results file.
        UsageError: --out cannot be written, or is the results file.
        RunStopped: 401/403/quota, or a track could not be read.
        OutputError: the verification cannot be written.
    """
    from batcher.flows.record import history_folder  # noqa: PLC0415

    folder = session.state_dir if session is not None else history_folder(options.read, environ)
    options, run = verify_target(options, folder)
    out = options.out_path
    check_out_path(out)
    check_distinct([("the results file", options.results), ("--out", out)])
    resolved = read_resolved(run.journal) if run is not None and run.journal.exists() else {}
    results = with_resolved(load_results(options.results), resolved)

    async def work(get: Getter, base_url: str) -> Verification:
        return await verify_results(get, base_url, results, on_listing=on_listing)

    verification, stats = run_reads(options.read, environ, work, session=session)
    write_verification(out, results, verification)
    if run is not None:
        history.keep(run, out, history.VERIFY_FILE)
    loaded = results.loaded
    wrong = np.flatnonzero(np.isin(verification.verified, (NO, MISSING, UNKNOWN)))[:MAX_SHOWN].tolist()
    mismatches = tuple(
        Mismatch(
            int(loaded.row_number[row]),
            str(loaded.registration_id[row]),
            str(results.earlier.target_status[row]),
            str(verification.current_status[row]),
        )
        for row in wrong
    )
    return VerifyResult(
        options,
        verification.counts,
        loaded.row_count - verification.checked,
        mismatches,
        stats,
        EXIT_OK if verification.all_verified else EXIT_SOME_FAILED,
    )


def verify_target(options: VerifyOptions, state_dir: Path) -> tuple[VerifyOptions, RunRecord | None]:
    """verify RUN_ID or verify RESULTS: the options with the results file to read (for a run ID: its kept copy,
    and the verification beside the run's own results unless --out), and the run that wrote it.

    Raises:
        UsageError: a run ID the history does not hold.
    """
    from batcher.flows.record import beside, run_named  # noqa: PLC0415 - pyarrow only to read results

    run, named = run_named(options.results, state_dir)
    if run is None or not named:
        return options, run
    out = options.out if options.out is not None else beside(run, history.VERIFY_SUFFIX)
    return replace(options, results=run.results_copy, out=out), run
