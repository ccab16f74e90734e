"""Plain values passed between the pipeline stages: batches, results and outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# (event_id, track_id, registration_id, registration_status), in the API's canonical form
RegistrationKey = tuple[str, str, str, str]

KNOWN_STATUSES = ("REGISTERED", "PENDING", "CANCELED", "EXPIRED", "IN_PROGRESS", "FAILED")
# spellings a person writes for a known status (the input's cells, the sandbox's registrations file)
STATUS_ALIASES = {"CANCELLED": "CANCELED"}


def canonical_status(word: str) -> str:
    """A status as the API spells it: trimmed, upper case, an alias (CANCELLED) in its known spelling."""
    word = word.strip().upper()
    return STATUS_ALIASES.get(word, word)


def status_words(text: str) -> list[str]:
    """The statuses of a comma-separated list, each as the API spells it (empty items left out)."""
    return [canonical_status(word) for word in text.split(",") if word.strip()]


# the reasons of rows whose event or track the API does not know: a retry cannot fix them, the input must change
EVENT_NOT_FOUND = "event not found"
TRACK_NOT_FOUND = "track not found in this event"


class Outcome(StrEnum):
    """What happened to one input row; the value is the word written to the results CSV."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    PENDING = "pending"
    UNCHANGED = "unchanged"  # the registration already had the target status: not sent
    SKIPPED = "skipped"  # its current status is not one --if-status names: not sent


@dataclass(frozen=True, slots=True)
class QueryFlags:
    """The endpoint's optional query flags; None means "not given, do not send"."""

    increase_count: bool | None = None
    increase_item_count: bool | None = None
    return_items_to_inventory: bool | None = None


@dataclass(frozen=True, slots=True)
class RowGroup:
    """Rows that can share requests: one event, one track, one target status."""

    event_id: str
    track_id: str
    registration_status: str
    registration_ids: tuple[str, ...]  # in input order, API-canonical form
    rows: tuple[int, ...]  # 0-based input row index of each id


@dataclass(frozen=True, slots=True)
class Batch:
    """One PUT request's worth of registrations."""

    number: int  # 1-based, written to the results CSV
    group: int  # 0-based index of the RowGroup it came from
    event_id: str
    track_id: str
    registration_status: str
    registration_ids: tuple[str, ...]  # at most settings.batch_size, in input order
    rows: tuple[int, ...]  # input row index of each id


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The final answer for one batch.

    Every id of the batch succeeded unless it is in failed_ids (listed in a 207), in id_errors
    (failed on its own after the batch was split), in unsent_ids (never applied: the run stopped),
    or error is set (the whole batch failed). A split batch's http_status is what the server answered
    for the ids it applied; each failed id carries its own status in id_errors.
    """

    batch: int
    http_status: int | None  # None: never got an answer
    failed_ids: frozenset[str] = field(default_factory=frozenset)  # from a 207 body; empty on 200
    attempts: int = 1  # requests sent for this batch, retries and split halves included
    error: str = ""  # the whole batch failed; user-readable, never contains the token
    id_errors: Mapping[str, tuple[int | None, str]] = field(default_factory=dict)  # id -> (status, error)
    unsent_ids: frozenset[str] = field(default_factory=frozenset)
    duration_s: float = 0.0  # from the first request's start to the final answer
    group_failed: bool = False  # the event or track is unknown: no batch of this group can succeed


@dataclass(slots=True)
class WireStats:
    """Every request that went on the wire in a run, finished batches or not (the one mutable value here)."""

    requests: int = 0
    first_at: float | None = None  # loop time at which the first request was sent
    last_at: float | None = None  # loop time at which the latest request was sent

    def count(self, now: float) -> None:
        self.requests += 1
        if self.first_at is None:
            self.first_at = now
        self.last_at = now

    @property
    def requests_per_s(self) -> float:
        """n requests span n-1 intervals: the rate over first to last start, which never exceeds the pace."""
        if self.requests < 2 or self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return 0.0
        return (self.requests - 1) / (self.last_at - self.first_at)


# the fields of a registration as a read returns it (remote/records.py parses them; export writes them)
RECORD_FIELDS = (
    "registration_id",
    "registration_status",
    "first_name",
    "last_name",
    "email_address",
    "payment_status",
    "registration_time",
    "tickets",
    "total",
)


@dataclass(frozen=True, slots=True)
class Record:
    """One registration as a read returned it; every field as text, empty when absent."""

    registration_id: str
    registration_status: str
    first_name: str = ""
    last_name: str = ""
    email_address: str = ""
    payment_status: str = ""
    registration_time: str = ""
    tickets: str = ""
    total: str = ""


@dataclass(frozen=True, slots=True)
class TrackRead:
    """What the reads found of one track's registrations."""

    event_id: str
    track_id: str
    found: Mapping[str, Record]  # registration_id -> its record, for the ids asked about that exist
    requests: int
    failure: str = ""  # the track's rows cannot be read: event or track not found, or the reads failed
    group_missing: bool = False  # the event or the track does not exist (a 404)
