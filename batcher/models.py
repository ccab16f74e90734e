"""Plain values passed between the pipeline stages: batches, results and outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

KNOWN_STATUSES = ("REGISTERED", "PENDING", "CANCELED", "EXPIRED", "IN_PROGRESS", "FAILED")
# The columns a results file adds after the input's own; a file whose header ends with them is a results file.
RESULT_COLUMNS = ("outcome", "http_status", "error", "attempts", "batch")


class Outcome(StrEnum):
    """What happened to one input row; the value is the word written to the results CSV."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    PENDING = "pending"


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
    """The final answer for one batch."""

    batch: int
    http_status: int | None  # None: never got an answer
    failed_ids: frozenset[str] = field(default_factory=frozenset)  # from a 207 body; empty on 200
    attempts: int = 1
    error: str = ""  # user-readable, never contains the token
    applied: bool = True  # False: the batch was not applied and its rows stay pending

    @property
    def succeeded_all(self) -> bool:
        return self.applied and self.http_status in (200, 207) and not self.failed_ids and not self.error
