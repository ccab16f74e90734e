"""Every text a person reads about a run: the plan, the end-of-run summary, the report, durations, plurals
(render_reads.py: the texts of report --out, verify, export and the run history).

Pure: values in, lines out. The command line prints them and the page (web/) shows them, both through the
redaction: one text for both front-ends.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from batcher.defaults import PROG
from batcher.errors import EXIT_OK, BatcherError, WrongBaseUrl
from batcher.models import Outcome
from batcher.support import hints
from batcher.support.words import plural

if TYPE_CHECKING:
    from batcher.flows.login import LoginResult
    from batcher.flows.summary import QuotaView, RunResult
    from batcher.plan.planning import Plan
    from batcher.remote.estimate import Estimate
    from batcher.remote.snapshot import Preview
    from batcher.results.report import Report
    from batcher.settings import Settings

MAX_INVALID_SHOWN = 10
MIN_REQUESTS_FOR_RATE = 20
MAX_TRACK_LINES = 20


def _earlier_lines(plan: Plan, prefix: str) -> list[str]:
    lines = []
    if plan.carried_over:
        lines.append(
            f"{prefix}{plural(plan.carried_over, 'row')} succeeded in the results file given as input: "
            "carried over as they are, not sent again (--only chooses the rows to send)"
        )
    resumed = plan.rows_applied_before
    if resumed:
        lines.append(f"{prefix}{_were(resumed)} applied by the earlier run and are not sent again")
    return lines


def _were(rows: int) -> str:
    return plural(rows, "row was", "rows were")


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"


def note_lines(plan: Plan) -> list[str]:
    """The loader's notes about the input, one line each."""
    return [f"{PROG}: note: {note}" for note in plan.loaded.notes]


def skipped(rows: int) -> str:
    return f"{plural(rows, 'row')} skipped by --only"


def plan_lines(plan: Plan, settings: Settings, quota: QuotaView | None, *, reads: bool = True) -> list[str]:
    """The plan: row counts, invalid rows, the per-group table, the request count, time and quota."""

    loaded = plan.loaded
    invalid, duplicate = plan.invalid_rows, plan.duplicate_rows
    valid = loaded.row_count - invalid - duplicate
    skip = f", {skipped(loaded.skipped_rows)}" if loaded.skipped_rows else ""
    counts = f"{valid} valid, {invalid} invalid, {duplicate} duplicate{skip}"
    lines = [f"{loaded.path}: {plural(loaded.row_count, 'row')}: {counts}"]
    shown = (loaded.invalid_reason != "").nonzero()[0][:MAX_INVALID_SHOWN].tolist()
    lines.extend(f"  row {loaded.row_number[index]}: {loaded.invalid_reason[index]}" for index in shown)
    if invalid > len(shown):
        more = plural(invalid - len(shown), "more invalid row")
        lines.append(f"  ... and {more} (all listed in the results file)")
    guess = plan_estimate(plan, settings, reads=reads)
    lines.extend(_group_lines(plan, settings, guess))
    lines.extend(_stated_lines(plan))
    lines.extend(_earlier_lines(plan, ""))
    if plan.held_back:
        left = plural(plan.held_back, "row is", "rows are")
        lines.append(f"--limit {plan.limit}: {left} left for a later run with --resume")
    people = sum(group.rows for group in guess.people)
    lines.append(
        f"this run: {plural(plan.sendable_rows + people, 'registration')} in {plural(guess.puts, 'request')} of up "
        f"to {settings.batch_size} IDs"
        + (" at most (rows the reads find already at their target are not sent)" if reads and guess.puts else "")
    )
    if people:
        lines.append(
            f"  {plural(people, 'row')} of them name people by email or have no track: their registrations are "
            "found by the reads first"
        )
    if guess.reads_bound:
        at_most = (
            f"; at most {guess.reads_bound:,} if the tracks hold far more registrations" if guess.bound_differs else ""
        )
        lines.append(
            f"reads first: about {plural(guess.reads, 'read request')} (list pages of {guess.page_size} records)"
            + at_most
            + (hints.offer("--no-snapshot", "; --no-snapshot sends without reading") if reads else "")
        )
    seconds = guess.seconds(settings.pacing_interval_s)
    lines.append(
        f"estimated time at {settings.rate_per_s:g} requests/s: about {duration(seconds)} for "
        f"{plural(guess.reads, 'read')} and {plural(guess.puts, 'PUT')}"
    )
    if quota is not None:
        lines.append(quota_line(guess, quota))
    return lines


def plan_estimate(plan: Plan, settings: Settings, *, reads: bool) -> Estimate:
    """The requests this plan will likely make, and at most."""
    from batcher.remote.estimate import estimate  # noqa: PLC0415 - light; kept beside its uses

    return estimate(plan.groups, plan.requests, plan.loaded, batch_size=settings.batch_size, reads=reads)


def quota_line(guess: Estimate, quota: QuotaView) -> str:
    """Whether today's quota covers the run, on the likely figure; the bound named where it differs much."""
    needed = f"about {plural(guess.likely, 'request')} needed"
    if guess.bound_differs:
        needed += f" (at most {guess.bound:,})"
    if quota.left_today < guess.likely:
        verdict = "does NOT cover it: the run would stop part-way"
    elif quota.left_today < guess.bound:
        verdict = "covers it, unless the tracks hold far more registrations than this file names"
    else:
        verdict = "covers it"
    return (
        f"daily quota: {needed}, {quota.left_today:,} of {quota.daily_quota:,} left today "
        f"(UTC, counted by batcher in {quota.folder}); {verdict}"
    )


def _group_lines(plan: Plan, settings: Settings, guess: Estimate) -> list[str]:
    """The table per event, track and target (people by email per event, under its default track or theirs)."""
    from batcher.plan.chunker import count_requests  # noqa: PLC0415 - light; kept beside its one use

    groups = plan.loaded.groups
    if not groups and not guess.people:
        return []
    lines = [f"{'event_id':36}  {'track_id':10}  {'status':11}  {'rows':>7}  {'requests':>8}"]
    per_status: dict[str, int] = {}
    tracks: set[tuple[str, str]] = set()
    for group in groups:
        requests = count_requests([group], batch_size=settings.batch_size)
        per_status[group.registration_status] = per_status.get(group.registration_status, 0) + len(group.rows)
        tracks.add((group.event_id, group.track_id))
        lines.append(
            f"{group.event_id:36}  {group.track_id:10}  {group.registration_status:11}  "
            f"{len(group.rows):>7}  {requests:>8}"
        )
    for person in guess.people:
        per_status[person.registration_status] = per_status.get(person.registration_status, 0) + person.rows
        tracks.add((person.event_id, person.track_id))
        track = person.track_id or "(default)"
        lines.append(
            f"{person.event_id:36}  {track:10}  {person.registration_status:11}  {person.rows:>7}  "
            f"{person.puts:>8}  by email: found by the reads first"
        )
    events = len({event for event, _ in tracks})
    targets = ", ".join(f"{rows:,} to {status}" for status, rows in per_status.items())
    lines.append(f"{plural(events, 'event')}, {plural(len(tracks), 'track')}; registrations: {targets}")
    return lines


def _stated_lines(plan: Plan) -> list[str]:
    """What the input says the registrations are now: read as the current status, never as the target."""
    loaded = plan.loaded
    if loaded.stated_status is None or not loaded.stated_column:
        return []
    valid = loaded.invalid_reason == ""
    counts = Counter(str(status) for status in loaded.stated_status[valid].tolist() if status)
    if not counts:
        return []
    said = ", ".join(f"{rows:,} {status}" for status, rows in counts.most_common())
    return [
        f'the column "{loaded.stated_column}" is read as the current status, not the target: it says {said} '
        "(the reads before sending check it against the API)"
    ]


def confirm_question(plan: Plan, settings: Settings, *, reads: bool = True) -> str:
    guess = plan_estimate(plan, settings, reads=reads)
    sends = f"{plural(guess.puts, 'request')} to {settings.base_url}? [y/N] "
    if not guess.reads_bound:
        return f"Send {sends}"
    at_most = f" (at most {guess.reads_bound:,})" if guess.bound_differs else ""
    return f"Read about {guess.reads:,}{at_most} and send up to {sends}"


def transition_text(preview: Preview) -> str:
    """The from -> to table on one line, e.g. 'REGISTERED → CANCELED 2,643 · already CANCELED 357 (not sent)'."""
    parts = []
    for line in preview.transitions:
        if not line.sent:
            parts.append(f"already {line.target_status} {line.rows:,} (not sent)")
        else:
            before = line.previous_status or "not found by the read"
            parts.append(f"{before} → {line.target_status} {line.rows:,}")
    if preview.earlier:
        parts.append(f"done earlier in this run {preview.earlier:,} (not sent again)")
    if preview.skipped:
        parts.append(f"skipped {preview.skipped:,} (--if-status; not sent)")
    if preview.read_failed:
        parts.append(f"failed {preview.read_failed:,} (see the results; not sent)")
    return " · ".join(parts) or "nothing to change"


def preview_lines(preview: Preview) -> list[str]:
    """What the reads found, said before the PUTs: the table, the rows not found, where the input disagrees."""
    lines = [f"{PROG}: read {plural(preview.reads, 'request')}; before sending: {transition_text(preview)}"]
    if preview.not_found:
        lines.append(
            f"{PROG}: {_were(preview.not_found)} not found by the read; they are sent anyway (the API has the "
            "last word: a 207 then marks them failed)"
        )
    if preview.disagree and preview.disagree_example is not None:
        row, said, now = preview.disagree_example
        lines.append(
            f"{PROG}: note: the input's status column disagrees with the API for {plural(preview.disagree, 'row')} "
            f"(row {row}: the file says {said}, the API says {now}); the API's status is the one used"
        )
    return lines


def error_word(error: BatcherError) -> str:
    """ "error: " before an error's text, nothing before a nothing-to-do (exit 0)."""
    return "error: " if error.exit_code != EXIT_OK else ""


def run_lines(result: RunResult) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) for a finished run or plan."""
    out: list[str] = []
    err: list[str] = [f"{PROG}: note: {notice}" for notice in result.notices]
    plan, summary = result.plan, result.summary
    if result.options.dry_run and plan is not None and result.error is None:
        out = plan_lines(plan, result.options.settings, result.quota, reads=result.options.snapshot)
    if result.declined:
        err.append(f"{PROG}: nothing sent")
    if summary is not None and plan is not None:
        err.extend(_summary_lines(result))
    if result.error is not None:
        err.append(f"{PROG}: {error_word(result.error)}{result.error}")
    if result.interrupted:
        err.append(f"{PROG}: interrupted")
    if result.summary_error:
        err.append(f"{PROG}: error: {result.summary_error}; the run's own exit code stands")
    return out, err


def _summary_lines(result: RunResult) -> list[str]:
    plan, summary = result.plan, result.summary
    assert plan is not None and summary is not None
    lines: list[str] = []
    lines.extend(_earlier_lines(plan, f"{PROG}: "))
    lines.extend(f"{PROG}: {line}" if not line.startswith(" ") else line for line in report_lines(summary.report))
    if summary.preview is not None:
        lines.append(f"{PROG}: from → to: {transition_text(summary.preview)}")
    if summary.resolution is not None:
        chosen = [track for track in summary.resolution.default_tracks.values() if track.track_id]
        lines.extend(f"{PROG}: event {track.event_id}: its default track {track.track_id} was used" for track in chosen)
    quota = result.quota
    left = plural(quota.left_today, "request") if quota is not None else ""
    quota_text = f"; daily quota: {left} left today (UTC)" if quota is not None else ""
    stats = summary.stats
    # over a handful of requests the rate says little (n requests span n-1 intervals)
    rate_text = f" ({stats.requests_per_s:.2f} requests/s)" if stats.requests >= MIN_REQUESTS_FOR_RATE else ""
    lines.append(f"{PROG}: {plural(stats.requests, 'request')} in {duration(summary.elapsed_s)}{rate_text}{quota_text}")
    lines.append(f"{PROG}: results: {summary.results_path}")
    if plan.loaded.skipped_rows:
        lines.append(f"{PROG}: {skipped(plan.loaded.skipped_rows)}; they are not in the results")
    if summary.stopped is not None:
        lines.append(f"{PROG}: error: {summary.stopped}")
    from batcher.results.report import failures_to_fix  # noqa: PLC0415 - pyarrow: only after a run

    retryable, to_fix = failures_to_fix(summary.rows)
    if result.resume_command:
        pending = summary.counts[Outcome.PENDING]
        what = [
            text
            for count, text in ((pending, "send the rows not yet sent"), (retryable, "retry the failed rows"))
            if count
        ]
        fix_first = "fix --base-url (it is not the API's), then " if isinstance(summary.stopped, WrongBaseUrl) else ""
        lines.append(f"{PROG}: {fix_first}to {' and '.join(what)}: {result.resume_command}")
    if to_fix:
        fixable = summary.counts[Outcome.FAILED] - retryable
        lines.append(
            f"{PROG}: {plural(fixable, 'failed row')} a retry cannot fix ({'; '.join(to_fix[:3])}): fix them in the "
            f"input, then run them again ('{PROG} report {summary.results_path} --only failed --out FILE' "
            "writes them)"
        )
    return lines


# --- verify and export (the commands that only read)


def report_lines(report: Report) -> list[str]:
    """Human lines: counts, the per-event/track table, the commonest reasons."""
    lines = [
        f"{plural(report.rows, 'row')}: " + ", ".join(f"{count} {item.value}" for item, count in report.counts.items())
    ]
    if report.tracks:
        lines.append(
            f"  {'event_id':36}  {'track_id':10}  {'succeeded':>9}  {'unchanged':>9}  {'skipped':>7}  {'failed':>6}  "
            f"{'invalid':>7}  {'pending':>7}"
        )
        for line in report.tracks[:MAX_TRACK_LINES]:
            c = line.counts
            lines.append(
                f"  {line.event_id[:36]:36}  {line.track_id[:10]:10}  {c[Outcome.SUCCEEDED]:>9}  "
                f"{c[Outcome.UNCHANGED]:>9}  {c[Outcome.SKIPPED]:>7}  "
                f"{c[Outcome.FAILED]:>6}  {c[Outcome.INVALID]:>7}  {c[Outcome.PENDING]:>7}"
            )
        if len(report.tracks) > MAX_TRACK_LINES:
            lines.append(f"  ... and {len(report.tracks) - MAX_TRACK_LINES} more event/track pairs")
    if report.top_reasons:
        lines.append("most common reasons rows did not succeed:")
        lines.extend(f"  {rows:>7}  {reason}" for reason, rows in report.top_reasons)
    return lines


# --- login (the command line and the page say the same)


def when(moment: datetime, now: datetime | None = None) -> str:
    """'2026-12-05 18:40 UTC (in 23 h 59 min)' or '... (expired 2 h ago)'."""
    left_s = (moment - (now or datetime.now(UTC))).total_seconds()
    hours, minutes = divmod(int(abs(left_s)) // 60, 60)
    span = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{stamp} (in {span})" if left_s > 0 else f"{stamp} (expired {span} ago)"


def login_lines(result: LoginResult) -> list[str]:
    """What a finished login says."""
    refresh = (
        "a refresh token is held, so batcher renews the access token by itself"
        if result.has_refresh_token
        else "no refresh token came (the app lacks offline_access): log in again when it expires"
    )
    if result.saved_to is None:
        return [
            f"Sandbox login approved for client ID {result.client_id}; {refresh}.",
            "Nothing was saved: the tokens were the in-process sandbox's. To log in for real: "
            "batcher login --client-id YOUR_API_KEY (docs/login.md).",
        ]
    return [
        f"Logged in: profile {result.profile!r}, client ID {result.client_id}.",
        f"The tokens are saved in {result.saved_to} (mode 0600); the access token expires {when(result.expires_at)}; "
        f"{refresh}.",
        "Next: batcher plan FILE.csv --status CANCELED, then batcher run FILE.csv --status CANCELED"
        + ("" if result.profile == "default" else f" (with --profile {result.profile})"),
    ]
