"""The resolve stage: people-shaped rows (an email, or no track) get their track and registration from reads.

`resolve` reads, through the run's one client, the default track of each event that needs it (one request per
event) and, per track with email rows, its whole list or one search per email, whichever is cheaper within
`1 + min(pages - 1, rows)` (resolve_reads.py). `merge` is pure: it puts the resolved rows into the groups, with
duplicates and conflicts as the row rules make them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from batcher.defaults import EMAIL_COLUMN
from batcher.errors import UsageError
from batcher.input.columnar import Flags, Strings
from batcher.input.meaning import printable
from batcher.input.rows import LoadedInput
from batcher.input.rules import CONFLICT_REASON
from batcher.models import Outcome, RowGroup, TrackRead
from batcher.plan.planning import Plan
from batcher.remote.reads import DefaultTrack, Getter, getter, read_default_track
from batcher.remote.resolve_reads import TrackEmails, TrackKey, read_emails, resolution_bound
from batcher.results.format import RowResults
from batcher.support.words import plural

if TYPE_CHECKING:
    from batcher.http.client import ApiClient

__all__ = ["Resolution", "email_mismatches", "merge", "resolution_bound", "resolve", "resolve_plan"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """Per input row, what resolving found; and the reads it made."""

    track_id: Strings  # the row's track: as given, or the event's default ("" where unknown or not resolved)
    registration_id: Strings  # as given, or found by the email ("" where not found)
    outcome: Strings  # "" (resolved, or nothing to resolve), failed, or invalid
    reason: Strings  # why, where outcome is set
    default_tracks: Mapping[str, DefaultTrack]  # per event read: the track chosen (for the plan), or the failure
    tracks: Mapping[TrackKey, TrackEmails]
    requests: int
    note: Strings | None = None  # per row resolved, what it went to, for the results ("" elsewhere)
    asked: Flags | None = None  # the rows resolve was asked to resolve (None: every row of needs_resolution)

    @property
    def decided(self) -> tuple[Strings, Strings]:
        """The failed rows as reconcile's decided=(outcome, reason) (invalid ones go into invalid_reason)."""
        failed = self.outcome == Outcome.FAILED.value
        return np.where(failed, self.outcome, "").astype(object), np.where(failed, self.reason, "").astype(object)

    def show(self, rows: RowResults) -> None:
        """Say in the results' error column, of the rows with nothing else to say, what each resolved row went to."""
        if self.note is None:
            return
        quiet = (rows.error == "") & (self.note != "")
        rows.error[quiet] = self.note[quiet]

    def known(self, groups: Sequence[RowGroup]) -> dict[TrackKey, TrackRead]:
        """The reads the snapshot may reuse: tracks read whole, or whose every registration in groups was seen."""
        wanted: dict[TrackKey, set[str]] = defaultdict(set)
        for group in groups:
            wanted[(group.event_id, group.track_id)].update(group.registration_ids)
        return {
            key: track.read
            for key, track in self.tracks.items()
            if not track.read.failure and (track.complete or wanted.get(key, set()) <= track.read.found.keys())
        }


def no_match(event_id: str, track_id: str) -> str:
    return f"no registration with this email in track {track_id} of event {event_id}"


def shared(count: int, track_id: str) -> str:
    return f"{plural(count, 'registration')} in track {track_id} share this email; give registration_id"


async def resolve(get: Getter, base_url: str, loaded: LoadedInput, waiting: Flags | None = None) -> Resolution:
    """Resolve the rows of waiting (the plan's, cut to --limit; None: every row of loaded.needs_resolution not
    carried over from an earlier results file); the other rows are left as they are.

    Raises:
        RunStopped: from the client: no further request can succeed.
    """
    n = loaded.row_count
    track = np.asarray(loaded.track_id, dtype=object).copy()
    registration = np.asarray(loaded.registration_id, dtype=object).copy()
    outcome = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)
    needs = loaded.needs_resolution
    if waiting is None and needs is not None:
        waiting = needs & ~loaded.carried_over  # rows an earlier results file says succeeded: kept as is
    if waiting is None or not waiting.any():
        return Resolution(track, registration, outcome, reason, {}, {}, 0, asked=waiting)
    rows = np.flatnonzero(waiting)
    emails = loaded.email_address if loaded.email_address is not None else np.full(n, "", dtype=object)

    without_track = sorted({str(loaded.event_id[row]) for row in rows if not track[row]})
    defaults = await asyncio.gather(*(read_default_track(get, base_url, event) for event in without_track))
    default_of = {default.event_id: default for default in defaults}
    for row in rows:
        if not track[row]:
            default = default_of[str(loaded.event_id[row])]
            track[row] = default.track_id
            if default.failure:
                outcome[row], reason[row] = Outcome.FAILED.value, default.failure

    wanted: dict[TrackKey, set[str]] = defaultdict(set)
    for row in rows:
        if not outcome[row] and emails[row]:
            wanted[(str(loaded.event_id[row]), str(track[row]))].add(str(emails[row]))
    keys = sorted(wanted)
    found = await asyncio.gather(*(read_emails(get, base_url, key, wanted[key], default_of) for key in keys))
    tracks = dict(zip(keys, found, strict=True))
    for row in rows:
        if outcome[row] or not emails[row]:
            continue  # failed already, or a registration_id that only needed its event's default track
        emails_read = tracks[(str(loaded.event_id[row]), str(track[row]))]
        decided = _match(emails_read, str(emails[row]), str(registration[row]))
        if isinstance(decided, tuple):
            outcome[row], reason[row] = decided
        else:
            registration[row] = decided
    requests = len(defaults) + sum(track_read.read.requests for track_read in found)
    note = np.full(n, "", dtype=object)
    for row in rows:
        if not outcome[row]:
            chosen = "" if loaded.track_id[row] else ", the event's default"
            found_by = f"by email: registration {registration[row]} in " if emails[row] else ""
            note[row] = f"{found_by}track {track[row]}{chosen}"
    return Resolution(track, registration, outcome, reason, default_of, tracks, requests, note, waiting)


def _match(track: TrackEmails, email: str, given: str) -> str | tuple[str, str]:
    """The registration an email row resolves to, or (outcome, reason)."""
    if track.read.failure:
        return Outcome.FAILED.value, track.read.failure
    holders = track.by_email.get(email, ())
    if not holders:
        return Outcome.FAILED.value, no_match(track.event_id, track.track_id)
    if given:
        if given in holders:
            return given
        if len(holders) == 1:
            return (
                Outcome.INVALID.value,
                f"the email belongs to registration {holders[0]}, not to this registration_id",
            )
        return (
            Outcome.INVALID.value,
            f"registration_id is not one of the {plural(len(holders), 'registration')} with this email",
        )
    if len(holders) > 1:
        return Outcome.FAILED.value, shared(len(holders), track.track_id)
    return holders[0]


def merge(loaded: LoadedInput, resolution: Resolution, groups: Sequence[RowGroup] | None = None) -> LoadedInput:
    """The input with its resolved rows in the groups (pure); groups: those to merge into (None: loaded's).

    A resolved row (one of resolution.asked) takes its track and registration into loaded.track_id and
    loaded.registration_id (the cells as written stay untouched); a row resolved invalid gets its reason. A
    registration reached by two rows is a duplicate of the first, or, asked to take two statuses, a conflict of every
    row, as the row rules say.
    """
    needs = resolution.asked if resolution.asked is not None else loaded.needs_resolution
    if needs is None or not needs.any():
        return loaded
    track = np.where(needs, resolution.track_id, loaded.track_id).astype(object)
    registration = np.where(needs, resolution.registration_id, loaded.registration_id).astype(object)
    invalid_reason = loaded.invalid_reason.copy()
    invalid = needs & (resolution.outcome == Outcome.INVALID.value)
    invalid_reason[invalid] = resolution.reason[invalid]
    duplicate_of = loaded.duplicate_of.copy()
    resolved = np.flatnonzero(needs & (resolution.outcome == "") & ~loaded.carried_over)
    base = loaded.groups if groups is None else tuple(groups)

    # every row that reaches a resolved registration: the resolved rows, and the grouped rows of their tracks
    reaching: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for row in resolved.tolist():
        reaching[(str(loaded.event_id[row]), str(track[row]), str(registration[row]))].append(row)
    touched = {(event, track_id) for event, track_id, _ in reaching}
    for group in base:
        if (group.event_id, group.track_id) in touched:
            for registration_id, row in zip(group.registration_ids, group.rows, strict=True):
                key = (group.event_id, group.track_id, registration_id)
                if key in reaching:
                    reaching[key].append(row)
    dropped: set[int] = set()  # grouped rows that become duplicates or conflicts
    sent: list[int] = []  # resolved rows to add to the groups
    for row_list in reaching.values():
        rows = sorted(row_list)
        if len({str(loaded.registration_status[row]) for row in rows}) > 1:
            invalid_reason[rows] = CONFLICT_REASON
            dropped.update(rows)
            continue
        duplicate_of[rows[1:]] = rows[0]
        dropped.update(rows[1:])
        if needs[rows[0]]:
            sent.append(rows[0])
    merged = _merged_groups(loaded, base, dropped, sent, track, registration)
    return replace(
        loaded,
        track_id=track,
        registration_id=registration,
        invalid_reason=invalid_reason,
        duplicate_of=duplicate_of,
        groups=merged,
    )


def _merged_groups(
    loaded: LoadedInput,
    base: Sequence[RowGroup],
    dropped: set[int],
    sent: list[int],
    track: Strings,
    registration: Strings,
) -> tuple[RowGroup, ...]:
    """The loaded groups without the dropped rows, plus the sent rows in their (event, track, status) group."""
    members: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
    for group in base:
        key = (group.event_id, group.track_id, group.registration_status)
        kept = [(row, rid) for rid, row in zip(group.registration_ids, group.rows, strict=True) if row not in dropped]
        members.setdefault(key, []).extend(kept)
    for row in sent:
        key = (str(loaded.event_id[row]), str(track[row]), str(loaded.registration_status[row]))
        members.setdefault(key, []).append((row, str(registration[row])))
    groups: list[RowGroup] = []
    for (event_id, track_id, status), pairs in members.items():
        if pairs:
            pairs.sort()
            ids = tuple(rid for _, rid in pairs)
            groups.append(RowGroup(event_id, track_id, status, ids, tuple(row for row, _ in pairs)))
    return tuple(groups)


def email_mismatches(
    loaded: LoadedInput, groups: Sequence[RowGroup], reads: Mapping[TrackKey, TrackRead]
) -> tuple[tuple[RowGroup, ...], Strings]:
    """Rows with an ID and an email whose registration, as read, holds another email (pure).

    For the rows grouped as usual (an ID and a track): run it on the snapshot's reads. Returns the groups without
    those rows, and per row the reason they are invalid ("" elsewhere). A registration the reads did not find is
    left to the PUT.
    """
    reason = np.full(loaded.row_count, "", dtype=object)
    position = loaded.field_columns.get(EMAIL_COLUMN)
    if position is None:
        return tuple(groups), reason
    emails = loaded.values[position]
    kept: list[RowGroup] = []
    for group in groups:
        read = reads.get((group.event_id, group.track_id))
        found = {} if read is None else read.found
        pairs = []
        for registration_id, row in zip(group.registration_ids, group.rows, strict=True):
            record = found.get(registration_id)
            email = str(emails[row]).strip().lower()
            held = "" if record is None else record.email_address.strip().lower()
            # no email as read (a before-image from the journal keeps statuses only): nothing to hold against it
            if email and held and held != email:
                reason[row] = (
                    f'registration_id and email_address disagree: the registration\'s email is "{printable(held)}"'
                )
            else:
                pairs.append((registration_id, row))
        if pairs:
            ids, rows = zip(*pairs, strict=True)
            kept.append(replace(group, registration_ids=tuple(ids), rows=tuple(rows)))
    return tuple(kept), reason


MOST = 0.5  # more than this share of the rows with an email disagreeing: the column is not the registrants'


def check_email_column(loaded: LoadedInput, groups: Sequence[RowGroup], mismatch: Strings) -> None:
    """Refuse, before any PUT, an email column most of whose rows disagree with the registrations as read: it holds
    someone else's address (a requester's, say), and every row would fail invalid.

    Raises:
        UsageError: most rows with an email disagree.
    """
    position = loaded.field_columns.get(EMAIL_COLUMN)
    wrong = int(np.count_nonzero(mismatch != ""))
    if position is None or not wrong:
        return
    emails = loaded.values[position]
    compared = sum(1 for group in groups for row in group.rows if str(emails[row]).strip())
    if wrong <= MOST * compared:
        return
    raise UsageError(
        f'{loaded.path}: the column "{printable(loaded.header[position])}" disagrees with the registrations as read on '
        f"{wrong:,} of {compared:,} rows, so it does not hold the registrants' emails; nothing was sent. If the "
        "registration IDs are right, run again with --column email_address= (no email column: the check is off)."
    )


async def resolve_plan(plan: Plan, client: ApiClient, base_url: str) -> tuple[Plan, Resolution]:
    """The hook of a run: resolve the plan's waiting rows on the run's client, and put them into its groups.

    The plan's groups (already cut down by --resume and --limit) are the groups merged into; the waiting rows were
    cut to --limit with them, so nothing is cut again. Resolved rows are not checked against an earlier run's
    journal (a PUT is idempotent).

    Raises:
        RunStopped: from the client.
    """
    resolution = await resolve(getter(client), base_url, plan.loaded, plan.waiting)
    merged = merge(plan.loaded, resolution, plan.groups)
    if merged is plan.loaded:
        return plan, resolution
    return replace(plan, loaded=merged, groups=merged.groups, waiting=None), resolution
