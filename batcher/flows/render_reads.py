"""The texts of the commands besides run and plan: report, verify, export and the run history (render.py holds
run's and plan's, and the helpers both use)."""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from batcher.defaults import PROG
from batcher.flows.render import MAX_TRACK_LINES
from batcher.results.history import SANDBOX_API
from batcher.support.words import plural

if TYPE_CHECKING:
    from batcher.flows.export import ExportResult
    from batcher.flows.verify import VerifyResult
    from batcher.http.session import SessionStats
    from batcher.results.history import RunRecord


def extracted_lines(count: int, outcomes: str, out: Path, needs_status: bool, status: str = "") -> list[str]:
    """What `report --out` wrote, and the command that runs it as printed."""
    command = f"{PROG} run {shlex.quote(str(out))}"
    if not count:
        return [f"no row is {outcomes.replace(',', ' or ')}: nothing to run again ({out} holds only the header)"]
    if status:
        return [f"{plural(count, 'row')} ({outcomes}) written to {out}; run them with: {command} --status {status}"]
    if not needs_status:
        return [f"{plural(count, 'row')} ({outcomes}) written to {out}; run them with: {command}"]
    return [
        f"{plural(count, 'row')} ({outcomes}) written to {out}; run them with: {command} --status STATUS "
        "(give the status the first run was given, or --status-column HEADER for a column of per-row targets)"
    ]


def _session_line(session: SessionStats) -> str:
    left = (
        f"; daily quota: {plural(session.quota_left, 'request')} left today (UTC)"
        if session.quota_left is not None
        else ""
    )
    return f"{PROG}: {plural(session.requests, 'request')}{left}"


def verify_lines(result: VerifyResult) -> list[str]:
    """The summary of `verify` (stderr): the counts, the first rows that did not verify, the file, the cost."""
    counts = result.counts
    checked = sum(counts.values())
    lines = [f"{PROG}: note: {notice}" for notice in result.session.notices]
    lines.append(
        f"{PROG}: verified {plural(checked, 'row')} (outcome succeeded or unchanged): {counts['yes']} yes, "
        f"{counts['no']} no, {counts['missing']} missing"
        + (f", {counts['unknown']} unknown (no run record says which registration)" if counts.get("unknown") else "")
        + (f"; {plural(result.not_checked, 'other row')} not checked" if result.not_checked else "")
    )
    for item in result.mismatches:
        now = f"is {item.current_status}" if item.current_status else "was not found"
        if not item.registration_id:
            lines.append(f"  row {item.row_number}: its registration is not known (no run record); not checked")
            continue
        lines.append(f"  row {item.row_number}: registration {item.registration_id} {now}, not {item.target_status}")
    shown = len(result.mismatches)
    wrong = counts["no"] + counts["missing"] + counts.get("unknown", 0)
    if wrong > shown:
        lines.append(f"  ... and {wrong - shown} more (all in the verification file)")
    lines.append(f"{PROG}: verification: {result.options.out_path}")
    lines.append(_session_line(result.session))
    return lines


def runs_lines(runs: Sequence[RunRecord]) -> list[str]:
    """`batcher runs`: one line per run of the history, oldest first (stdout)."""
    if not runs:
        return ["no run in the run history yet"]
    lines = [f"{'run':22}  {'started':24}  {'command':7}  {'exit':>4}  {'state':8}  counts / input / API"]
    for run in runs:
        counts = ", ".join(f"{count} {word}" for word, count in run.counts.items() if count) or "-"
        state = _state_word(run)
        code = "" if run.exit_code is None else str(run.exit_code)
        what = f"undo of {run.undoes}" if run.undoes else Path(run.input).name
        lines.append(
            f"{run.run_id:22}  {run.started:24}  {run.command:7}  {code:>4}  {state:8}  {counts} / {what} / {run.api}"
        )
    return lines


def _state_word(run: RunRecord) -> str:
    """finished, open (--resume continues it), running (or killed), or rehearsal (--sandbox: nothing to undo)."""
    if not run.ended:
        return "running"
    if run.api == SANDBOX_API:
        return "rehearsal"
    return "finished" if run.finished else "open"


def run_lines_of(run: RunRecord) -> list[str]:
    """`batcher runs RUN_ID`: one run of the history, field by field (stdout)."""
    state = "finished" if run.finished else "running, or killed" if not run.ended else "not finished (--resume)"
    if run.api == SANDBOX_API and run.ended:
        state = "rehearsal (--sandbox): nothing at the API was read or changed; nothing to undo"
    counts = ", ".join(f"{count} {word}" for word, count in run.counts.items() if count) or "-"
    files = [run.journal, run.results_copy, run.verify_copy]
    return [
        f"run       {run.run_id} ({run.command}{f' of {run.undoes}' if run.undoes else ''})",
        f"started   {run.started}",
        f"ended     {run.ended or '-'}",
        f"state     {state}; exit code {'-' if run.exit_code is None else run.exit_code}; attempts {run.attempts}",
        f"counts    {counts}",
        f"input     {run.input} (sha256 {run.input_sha256[:16] or '-'})",
        f"target    {run.target or '-'}{'; ' + ' '.join(run.flags) if run.flags else ''}",
        f"api       {run.api}{f' ({run.client})' if run.client else ''}",
        f"results   {run.results}",
        *(f"kept      {path}" for path in files if path.exists()),
    ]


def export_lines(result: ExportResult) -> list[str]:
    """The summary of `export` (stderr): rows per event/track and per status, where they went, the cost."""
    lines = [f"{PROG}: note: {notice}" for notice in result.session.notices]
    lines.append(f"  {'event_id':36}  {'track_id':10}  {'rows':>7}")
    for track in result.tracks[:MAX_TRACK_LINES]:
        default = " (default track)" if track.default else ""
        statuses = ", ".join(f"{count} {status}" for status, count in Counter(track.statuses).most_common())
        lines.append(f"  {track.event_id:36}  {track.track_id[:10]:10}  {track.rows:>7}{default}  {statuses}".rstrip())
    if len(result.tracks) > MAX_TRACK_LINES:
        lines.append(f"  ... and {len(result.tracks) - MAX_TRACK_LINES} more event/track pairs")
    statuses = ", ".join(f"{count} {status}" for status, count in result.statuses.most_common())
    out = result.options.out
    where = str(out) if out is not None else "standard output"
    lines.append(
        f"{PROG}: exported {plural(result.rows, 'registration')} to {where}" + (f": {statuses}" if statuses else "")
    )
    events = result.options.events
    if out is not None and len(events) > 1 and out.name == f"{events[0]}.export.csv":
        lines.append(f"{PROG}: note: the file is named after the first of the {plural(len(events), 'event')}")
    lines.append(_session_line(result.session))
    return lines
