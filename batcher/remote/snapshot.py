"""The before-image of a run: the current status of every row's registration, and what that means for the row.

`take_snapshot` reads (one track at a time per task, all tracks at once, paced by the client); `settle` is
pure: it sorts each row into send, unchanged, skipped or failed, and `transitions` counts from -> to.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from batcher.models import Outcome, RowGroup, TrackRead
from batcher.remote.reads import Getter, PageCallback, read_bound, read_track

Strings = npt.NDArray[np.object_]
TrackKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the reads found, per input row."""

    previous_status: Strings  # "" where nothing was read or the registration was not found
    read_failure: Strings  # why the row's track could not be read; "" when it was
    found: npt.NDArray[np.bool_]  # the read found the registration
    requests: int


@dataclass(frozen=True, slots=True)
class Settled:
    """Rows the snapshot decided, and the groups left to send."""

    groups: tuple[RowGroup, ...]
    outcome: Strings  # per row: "" (to send or not in a group), or unchanged / skipped / failed
    reason: Strings  # why, for the rows decided here


@dataclass(frozen=True, slots=True)
class Transition:
    """One line of the from -> to table."""

    previous_status: str  # "" when the read did not find the registration
    target_status: str
    rows: int
    sent: bool  # False: already had the target status, so nothing was sent


def tracks_of(groups: Sequence[RowGroup]) -> dict[TrackKey, list[RowGroup]]:
    """The groups by (event, track): one track's rows are read together whatever their target."""
    tracks: dict[TrackKey, list[RowGroup]] = {}
    for group in groups:
        tracks.setdefault((group.event_id, group.track_id), []).append(group)
    return tracks


def snapshot_bound(groups: Sequence[RowGroup]) -> int:
    """The most read requests a snapshot of these groups can take (the plan's upper bound)."""
    return sum(read_bound(len(_ids(track))) for track in tracks_of(groups).values())


ReadCallback = Callable[[TrackRead, Sequence[str]], None]  # a track's read, and the ids it was asked about


async def take_snapshot(
    get: Getter,
    base_url: str,
    groups: Sequence[RowGroup],
    row_count: int,
    *,
    known: Mapping[TrackKey, TrackRead] | None = None,
    on_track: PageCallback | None = None,
    on_read: ReadCallback | None = None,
) -> tuple[Snapshot, list[TrackRead]]:
    """Read the current status of every registration in groups; tracks in known are not read again.

    on_read is called as each track's read ends (the journal records it: a kill then loses no finished read).
    Returns the snapshot and the reads made now.

    Raises:
        RunStopped: from the client: no further request can succeed.
    """
    tracks = tracks_of(groups)
    earlier = dict(known or {})

    async def one(event_id: str, track_id: str) -> TrackRead:
        wanted = _ids(tracks[(event_id, track_id)])
        read = await read_track(get, base_url, event_id, track_id, wanted, on_page=on_track)
        if on_read is not None:
            on_read(read, wanted)
        return read

    made = await asyncio.gather(
        *(one(event_id, track_id) for event_id, track_id in tracks if (event_id, track_id) not in earlier)
    )
    reads = {**earlier, **{(read.event_id, read.track_id): read for read in made}}
    snapshot = image(groups, reads, row_count)
    return replace(snapshot, requests=sum(read.requests for read in made)), list(made)


def image(groups: Sequence[RowGroup], reads: Mapping[TrackKey, TrackRead], row_count: int) -> Snapshot:
    """The per-row before-image of groups from the reads of their tracks (a track not in reads: nothing known)."""
    previous = np.full(row_count, "", dtype=object)
    failure = np.full(row_count, "", dtype=object)
    found = np.zeros(row_count, dtype=np.bool_)
    for key, track_groups in tracks_of(groups).items():
        read = reads.get(key)
        if read is None:
            continue
        for group in track_groups:
            rows = np.asarray(group.rows, dtype=np.int64)
            if read.failure:
                failure[rows] = read.failure
                continue
            records = [read.found.get(registration_id) for registration_id in group.registration_ids]
            previous[rows] = [record.registration_status if record else "" for record in records]
            found[rows] = [record is not None for record in records]
    return Snapshot(previous, failure, found, 0)


def settle(
    groups: Sequence[RowGroup],
    snapshot: Snapshot,
    *,
    if_status: frozenset[str] | None = None,
    expected_status: Strings | None = None,
    force: bool = False,
) -> Settled:
    """Sort each grouped row by its current status: send it, or leave it unchanged, skipped or failed.

    expected_status (undo): per row, the status the registration must still have; "" for any.
    """
    row_count = len(snapshot.previous_status)
    outcome = np.full(row_count, "", dtype=object)
    reason = np.full(row_count, "", dtype=object)
    kept: list[RowGroup] = []
    for group in groups:
        keep_ids: list[str] = []
        keep_rows: list[int] = []
        for registration_id, row in zip(group.registration_ids, group.rows, strict=True):
            decided = _decide(row, group.registration_status, snapshot, if_status, expected_status, force=force)
            if decided is None:
                keep_ids.append(registration_id)
                keep_rows.append(row)
            else:
                outcome[row], reason[row] = decided
        if keep_ids:
            kept.append(replace(group, registration_ids=tuple(keep_ids), rows=tuple(keep_rows)))
    return Settled(tuple(kept), outcome, reason)


def _decide(
    row: int,
    target: str,
    snapshot: Snapshot,
    if_status: frozenset[str] | None,
    expected_status: Strings | None,
    *,
    force: bool,
) -> tuple[str, str] | None:
    failure = str(snapshot.read_failure[row])
    if failure:
        return Outcome.FAILED.value, failure
    now = str(snapshot.previous_status[row])
    found = bool(snapshot.found[row])
    if found and now == target:
        return Outcome.UNCHANGED.value, f"already {now}; not sent"
    if expected_status is not None and not force:
        expected = str(expected_status[row])
        if expected and now != expected:
            seen = f"now {now}" if found else "not found by the read"
            return Outcome.FAILED.value, f"changed since the run ({seen}); not undone; --force undoes it anyway"
    if if_status is not None and (not found or now not in if_status):
        seen = f"now {now}" if found else "not found by the read"
        return Outcome.SKIPPED.value, f"{seen}; --if-status {','.join(sorted(if_status))}"
    return None


def transitions(target: Strings, previous: Strings, outcome: Strings, sent: npt.NDArray[np.bool_]) -> list[Transition]:
    """The from -> to table of the rows sent and of those left unchanged, largest first."""
    counts: Counter[tuple[str, str, bool]] = Counter()
    unchanged = outcome == Outcome.UNCHANGED.value
    for before, after, was_sent in zip(
        previous[sent | unchanged].tolist(),
        target[sent | unchanged].tolist(),
        sent[sent | unchanged].tolist(),
        strict=True,
    ):
        counts[(str(before), str(after), bool(was_sent))] += 1
    return [
        Transition(before, after, rows, was_sent)
        for (before, after, was_sent), rows in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def _ids(groups: Sequence[RowGroup]) -> list[str]:
    return [registration_id for group in groups for registration_id in group.registration_ids]


@dataclass(frozen=True, slots=True)
class Preview:
    """What the reads found, as the person at the terminal sees it before the PUTs: the from -> to table and more."""

    transitions: tuple[Transition, ...]
    skipped: int  # rows whose current status --if-status does not name
    read_failed: int  # rows failed by the reads (event or track not found, or unreadable)
    not_found: int  # rows the read did not find: sent anyway (the API has the last word)
    reads: int  # read requests made by this run
    disagree: int = 0  # rows whose input states a current status the API contradicts
    disagree_example: tuple[int, str, str] | None = None  # (row number, the input says, the API says)
    puts: int = 0  # the PUT requests the rows to send take (set once they are batched)
    earlier: int = 0  # rows an earlier attempt of this (resumed) run changed: succeeded, not sent again

    @property
    def changes(self) -> int:
        return sum(line.rows for line in self.transitions if line.sent)

    def as_dicts(self) -> list[dict[str, object]]:
        return [
            {"from": line.previous_status or None, "to": line.target_status, "rows": line.rows, "sent": line.sent}
            for line in self.transitions
        ]


def preview(
    target: Strings,
    snapshot: Snapshot,
    settled: Settled,
    *,
    stated: Strings | None = None,
    row_number: npt.NDArray[np.int64] | None = None,
) -> Preview:
    """The from -> to table of the rows settled, and the counts the table leaves out."""
    sent = np.zeros(len(target), dtype=np.bool_)
    for group in settled.groups:
        sent[np.asarray(group.rows, dtype=np.int64)] = True
    table = transitions(target, snapshot.previous_status, settled.outcome, sent)
    disagree, example = 0, None
    if stated is not None:
        known = snapshot.found & (stated != "")
        differs = np.flatnonzero(known & (stated != snapshot.previous_status))
        disagree = len(differs)
        if disagree:
            row = int(differs[0])
            number = int(row_number[row]) if row_number is not None else row + 1
            example = (number, str(stated[row]), str(snapshot.previous_status[row]))
    return Preview(
        transitions=tuple(table),
        skipped=int(np.count_nonzero(settled.outcome == Outcome.SKIPPED.value)),
        read_failed=int(np.count_nonzero(settled.outcome == Outcome.FAILED.value)),
        not_found=int(np.count_nonzero(sent & ~snapshot.found)),
        reads=snapshot.requests,
        disagree=disagree,
        disagree_example=example,
    )
