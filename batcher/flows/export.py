"""The `export` flow: every registration of the events asked for (each one's default track, or the tracks given),
filtered, as one CSV that `batcher run` takes as input and the sandbox takes as its registrations.

Filters go to the API where it takes them; the rest are sifted from the records. No printing: the result is
rendered by render.py.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from batcher.errors import EXIT_OK, RunStopped, UsageError
from batcher.flows.options import ReadOptions
from batcher.flows.session import run_reads
from batcher.http.session import SessionStats
from batcher.input.rules import TRACK_PATTERN, UUID_PATTERN
from batcher.models import EVENT_NOT_FOUND, KNOWN_STATUSES, Record, status_words
from batcher.remote.reads import Getter, PageCallback, list_track, not_read_hint, read_default_track
from batcher.remote.records import FILTERABLE_STATUSES, ListFilters
from batcher.results.export_file import (
    EXPORT_COLUMNS,
    check_out_path,
    csv_text,
    export_row,
    rows_as_columns,
    write_csv_text,
)

STDOUT = "-"
# the list's payment_status filter (spec/ctct-v3-events-read.openapi.yaml); payment status spells CANCELLED
PAYMENT_STATUSES = ("PENDING", "PAID", "REFUNDED", "CANCELLED", "FAILED", "CHARGED_BACK")
UUID = re.compile(UUID_PATTERN)
TRACK = re.compile(TRACK_PATTERN)
MAX_SHOWN = 60


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What `export` was told, checked."""

    events: tuple[str, ...]  # API form (lower case)
    read: ReadOptions
    tracks: tuple[str, ...] = ()  # empty: each event's default track
    statuses: tuple[str, ...] = ()  # empty: every status
    payment_status: str | None = None
    search: str | None = None
    out: Path | None = None  # None: standard output

    @property
    def filters(self) -> ListFilters:
        return ListFilters(None, self.payment_status, self.search)


def export_options(
    events: Sequence[str],
    read: ReadOptions,
    *,
    tracks: Sequence[str] | None = None,
    status: str | None = None,
    payment_status: str | None = None,
    search: str | None = None,
    out: str | None = None,
) -> ExportOptions:
    """ExportOptions from the words typed.

    Raises:
        UsageError: an event is not a UUID, a track not a track key, a status not a status.
    """
    bad = [event for event in events if not UUID.fullmatch(event.strip())]
    if bad:
        raise UsageError(f"event ID {_cut(bad[0])} is not a UUID (e.g. 07216444-4e3b-41ea-a3b8-5a418fce41f4)")
    bad = [track for track in tracks or () if not TRACK.fullmatch(track.strip())]
    if bad:
        raise UsageError(f"--track {_cut(bad[0])} is not a track key: it may hold only letters and digits")
    payment = payment_status.strip().upper() if payment_status else None
    if payment == "CANCELED":
        payment = "CANCELLED"  # payment status spells it with two Ls
    if payment is not None and payment not in PAYMENT_STATUSES:
        raise UsageError(f"--payment-status takes one of {', '.join(PAYMENT_STATUSES)} (got {_cut(payment)})")
    default = STDOUT if out == STDOUT else f"{events[0].strip().lower()}.export.csv" if events else ""
    target = out if out is not None else default
    return ExportOptions(
        events=tuple(dict.fromkeys(event.strip().lower() for event in events)),
        read=read,
        tracks=tuple(dict.fromkeys(track.strip() for track in tracks or ())),
        statuses=statuses(status),
        payment_status=payment,
        search=search if search else None,
        out=None if target == STDOUT else Path(target),
    )


def statuses(text: str | None) -> tuple[str, ...]:
    """--status S[,S...] as registration statuses, in the order given ("Cancelled" is CANCELED).

    Raises:
        UsageError: a word is not a registration status.
    """
    if not text:
        return ()
    words = status_words(text)
    unknown = [word for word in words if word not in KNOWN_STATUSES]
    if unknown or not words:
        raise UsageError(f"--status takes statuses from {', '.join(KNOWN_STATUSES)}, comma-separated (got {text!r})")
    return tuple(dict.fromkeys(words))


@dataclass(frozen=True, slots=True)
class TrackRows:
    """One exported track: its rows by status."""

    event_id: str
    track_id: str
    default: bool  # the event's default track (no --track given)
    statuses: Mapping[str, int]
    requests: int  # the list requests it took (the default track's event GET aside)

    @property
    def rows(self) -> int:
        return sum(self.statuses.values())


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an export wrote and read."""

    options: ExportOptions
    tracks: tuple[TrackRows, ...]
    session: SessionStats
    text: str = ""  # the CSV, when it goes to standard output
    exit_code: int = EXIT_OK

    @property
    def rows(self) -> int:
        return sum(track.rows for track in self.tracks)

    @property
    def statuses(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for track in self.tracks:
            total.update(track.statuses)
        return total


def export_flow(
    options: ExportOptions,
    environ: Mapping[str, str],
    *,
    on_listing: Callable[[], PageCallback] | None = None,
) -> ExportResult:
    """List the registrations, sift them, write the CSV (or keep its text for standard output).

    on_listing gives each listing its page callback (the progress bar).

    Raises:
        UsageError: an unknown event or track (no file is written), an output path that cannot be written.
        RunStopped: 401/403/quota, a base URL that is not the API, a read that failed after its retries.
        OutputError: the file cannot be written.
    """
    if options.out is not None:
        check_out_path(options.out)

    async def work(get: Getter, base_url: str) -> list[tuple[str, str, bool, list[Record], int]]:
        return await _read(get, base_url, options, on_listing)

    listed, session = run_reads(options.read, environ, work)
    rows = [export_row(event_id, track_id, record) for event_id, track_id, _, found, _ in listed for record in found]
    text = csv_text(EXPORT_COLUMNS, rows_as_columns(rows, len(EXPORT_COLUMNS)))
    if options.out is not None:
        write_csv_text(options.out, text, what="the export")
        text = ""
    tracks = tuple(
        TrackRows(event_id, track_id, default, Counter(record.registration_status for record in found), requests)
        for event_id, track_id, default, found, requests in listed
    )
    return ExportResult(options, tracks, session, text)


async def _read(
    get: Getter, base_url: str, options: ExportOptions, on_listing: Callable[[], PageCallback] | None
) -> list[tuple[str, str, bool, list[Record], int]]:
    """(event, track, default, records, requests) per track, in the order asked."""
    if options.tracks:
        pairs = [(event_id, track_id, False) for event_id in options.events for track_id in options.tracks]
    else:
        found = await asyncio.gather(*(read_default_track(get, base_url, event_id) for event_id in options.events))
        for default in found:
            if default.failure:
                missing = default.failure == EVENT_NOT_FOUND
                raise _group_error(default.event_id, "", default.failure, group_missing=missing)
        pairs = [(default.event_id, default.track_id, True) for default in found]
    listed = await asyncio.gather(
        *(_track(get, base_url, options, event_id, track_id, on_listing) for event_id, track_id, _ in pairs)
    )
    return [
        (event_id, track_id, default, records, requests)
        for (event_id, track_id, default), (records, requests) in zip(pairs, listed, strict=True)
    ]


async def _track(
    get: Getter,
    base_url: str,
    options: ExportOptions,
    event_id: str,
    track_id: str,
    on_listing: Callable[[], PageCallback] | None,
) -> tuple[list[Record], int]:
    """The track's records that pass the filters, and the requests it took.

    Several statuses the API can filter by are listed once each: at most one request more per status than one
    whole listing, and none spent on the statuses not asked for. A status it cannot filter by (IN_PROGRESS,
    FAILED) makes one whole listing, sifted.
    """
    wanted = options.statuses
    per_status = bool(wanted) and all(status in FILTERABLE_STATUSES for status in wanted)
    filters = [
        ListFilters(status, options.payment_status, options.search) for status in (wanted if per_status else (None,))
    ]
    records: list[Record] = []
    requests = 0
    for chosen in filters:
        listing = await list_track(
            get, base_url, event_id, track_id, chosen, on_page=on_listing() if on_listing is not None else None
        )
        requests += listing.requests
        if listing.failure:
            raise _group_error(event_id, track_id, listing.failure, group_missing=listing.group_missing)
        records.extend(record for record in listing.records if not wanted or record.registration_status in wanted)
    return records, requests


def _group_error(event_id: str, track_id: str, failure: str, *, group_missing: bool) -> UsageError | RunStopped:
    if group_missing and failure == EVENT_NOT_FOUND:
        return UsageError(f"event {event_id} was not found; check the event ID")
    if group_missing:
        return UsageError(
            f"track {track_id} was not found in event {event_id}; leave out --track to read the event's default track"
        )
    where = f"event {event_id} track {track_id}" if track_id else f"event {event_id}"
    reason = failure.removesuffix(f"; {not_read_hint()}")
    return RunStopped(f"{where}: {reason}; nothing was written, run the same export again later")


def _cut(text: str) -> str:
    return repr(text[:MAX_SHOWN] + ("..." if len(text) > MAX_SHOWN else ""))
