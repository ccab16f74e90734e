"""What a run will likely spend, and at most: the figures of the plan, the prompt, the quota check and the progress.

Likely: each track read as list pages at the API's usual page size (LIKELY_PAGE_SIZE), as if it held about the
registrations the file names (an export of the event does), plus the PUTs. At most: the reader's bound per track
(1 + min(pages - 1, rows), which before any page is read is 1 + rows), plus the PUTs. Rows that name people by email
(or have no track) are resolved first: one request per event for its default track, then the track's list; their
PUTs are counted at the batch size. Pure: nothing here sends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from batcher.defaults import DEFAULT_MAX_PAGE_SIZE
from batcher.input.rows import LoadedInput
from batcher.models import RowGroup
from batcher.remote.reads import read_bound

LIKELY_PAGE_SIZE = DEFAULT_MAX_PAGE_SIZE  # the spec's example page, and what the API serves
MUCH = 2.0  # the bound is named beside the likely figure when it is more than this many times it


@dataclass(frozen=True, slots=True)
class PeopleGroup:
    """Rows named by email (or without a track) of one event, track (or its default) and target: a plan line."""

    event_id: str
    track_id: str  # "" : the event's default track, read first
    registration_status: str
    rows: int
    puts: int  # at most, once resolved


@dataclass(frozen=True, slots=True)
class Estimate:
    """The requests a run will likely make, and at most; PUTs are at most (rows found at their target are not sent)."""

    reads: int  # likely reads (the snapshot and the resolving of people by email)
    reads_bound: int
    puts: int
    people: tuple[PeopleGroup, ...] = ()
    page_size: int = LIKELY_PAGE_SIZE  # the list page the likely reads assume

    @property
    def likely(self) -> int:
        return self.reads + self.puts

    @property
    def bound(self) -> int:
        return self.reads_bound + self.puts

    @property
    def bound_differs(self) -> bool:
        """True when the bound is worth naming: much more than the likely figure."""
        return self.bound > MUCH * max(self.likely, 1)

    def seconds(self, interval_s: float, *, bound: bool = False) -> float:
        """The time the requests take at the pace (the likely figure unless bound)."""
        return max(0, (self.bound if bound else self.likely) - 1) * interval_s


def likely_track_reads(rows: int) -> int:
    """The requests reading `rows` registrations of one track likely takes: its list pages at the usual size."""
    if rows <= 1:
        return rows
    return min(read_bound(rows), math.ceil(rows / LIKELY_PAGE_SIZE))


def estimate(
    groups: Sequence[RowGroup], puts: int, loaded: LoadedInput | None, *, batch_size: int, reads: bool
) -> Estimate:
    """The estimate of a plan: its groups (the rows to send), its PUTs, and the rows still to resolve in loaded."""
    per_track: dict[tuple[str, str], int] = {}
    for group in groups:
        per_track[(group.event_id, group.track_id)] = per_track.get((group.event_id, group.track_id), 0) + len(
            group.registration_ids
        )
    likely = sum(likely_track_reads(rows) for rows in per_track.values()) if reads else 0
    bound = sum(read_bound(rows) for rows in per_track.values()) if reads else 0
    people = people_groups(loaded, batch_size=batch_size) if loaded is not None else ()
    if people:
        events = {person.event_id for person in people if not person.track_id}  # one request each: the default track
        tracks: dict[tuple[str, str], int] = {}
        for person in people:
            tracks[(person.event_id, person.track_id)] = tracks.get((person.event_id, person.track_id), 0) + person.rows
        likely += len(events) + sum(likely_track_reads(rows) for rows in tracks.values())
        bound += len(events) + sum(read_bound(rows) for rows in tracks.values())
        puts += sum(person.puts for person in people)
    return Estimate(likely, bound, puts, people)


def people_groups(loaded: LoadedInput, *, batch_size: int) -> tuple[PeopleGroup, ...]:
    """The rows waiting to be resolved, per event, track as given ("" for the default) and target status."""
    needs = loaded.needs_resolution
    if needs is None:
        return ()
    rows = np.flatnonzero(needs & ~loaded.carried_over)
    counts: dict[tuple[str, str, str], int] = {}
    for row in rows.tolist():
        key = (str(loaded.event_id[row]), str(loaded.track_id[row]), str(loaded.registration_status[row]))
        counts[key] = counts.get(key, 0) + 1
    return tuple(
        PeopleGroup(event, track, status, count, math.ceil(count / batch_size))
        for (event, track, status), count in counts.items()
    )
