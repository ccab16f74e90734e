"""Sorting rows by the status read before the change: send, unchanged, skipped, failed; and the from -> to table."""

from __future__ import annotations

import numpy as np

from batcher.models import Outcome, RowGroup
from batcher.remote.snapshot import Snapshot, Transition, settle, snapshot_bound, transitions

EVENT = "07216444-4e3b-41ea-a3b8-5a418fce41f4"


def _snapshot(previous: list[str], *, found: list[bool] | None = None, failure: list[str] | None = None) -> Snapshot:
    return Snapshot(
        previous_status=np.array(previous, dtype=object),
        read_failure=np.array(failure or [""] * len(previous), dtype=object),
        found=np.array(found if found is not None else [bool(status) for status in previous]),
        requests=1,
    )


GROUP = RowGroup(EVENT, "t1", "CANCELED", ("r0", "r1", "r2", "r3"), (0, 1, 2, 3))


def test_rows_already_at_the_target_are_unchanged_and_not_sent() -> None:
    settled = settle([GROUP], _snapshot(["REGISTERED", "CANCELED", "", "PENDING"]))
    assert settled.groups[0].registration_ids == ("r0", "r2", "r3")  # a registration not found is still sent
    assert settled.outcome.tolist() == ["", Outcome.UNCHANGED.value, "", ""]
    assert settled.reason[1] == "already CANCELED; not sent"


def test_if_status_skips_every_other_current_status() -> None:
    settled = settle([GROUP], _snapshot(["REGISTERED", "CANCELED", "", "PENDING"]), if_status=frozenset({"REGISTERED"}))
    assert settled.groups[0].registration_ids == ("r0",)
    assert settled.outcome.tolist() == ["", "unchanged", "skipped", "skipped"]
    assert settled.reason[3] == "now PENDING; --if-status REGISTERED"
    assert settled.reason[2] == "not found by the read; --if-status REGISTERED"


def test_a_track_that_could_not_be_read_fails_its_rows_without_sending() -> None:
    settled = settle([GROUP], _snapshot([""] * 4, failure=["event not found"] * 4))
    assert settled.groups == ()
    assert set(settled.outcome.tolist()) == {"failed"}
    assert settled.reason[0] == "event not found"


def test_undo_refuses_rows_changed_since_unless_forced() -> None:
    undo = RowGroup(EVENT, "t1", "REGISTERED", ("r0", "r1"), (0, 1))
    expected = np.array(["CANCELED", "CANCELED"], dtype=object)
    snapshot = _snapshot(["CANCELED", "PENDING"])
    settled = settle([undo], snapshot, expected_status=expected)
    assert settled.groups[0].registration_ids == ("r0",)
    assert settled.reason[1] == "changed since the run (now PENDING); not undone; --force undoes it anyway"
    assert settle([undo], snapshot, expected_status=expected, force=True).groups[0].registration_ids == ("r0", "r1")


def test_transitions_count_from_and_to_largest_first() -> None:
    target = np.array(["CANCELED"] * 5, dtype=object)
    previous = np.array(["REGISTERED", "REGISTERED", "CANCELED", "PENDING", ""], dtype=object)
    outcome = np.array(["", "", "unchanged", "", ""], dtype=object)
    sent = np.array([True, True, False, True, True])
    assert transitions(target, previous, outcome, sent) == [
        Transition("REGISTERED", "CANCELED", 2, sent=True),
        Transition("", "CANCELED", 1, sent=True),
        Transition("CANCELED", "CANCELED", 1, sent=False),
        Transition("PENDING", "CANCELED", 1, sent=True),
    ]


def test_the_plan_bound_reads_each_track_once() -> None:
    other = RowGroup(EVENT, "t1", "REGISTERED", ("r9",), (4,))
    lone = RowGroup(EVENT, "t2", "CANCELED", ("r8",), (5,))
    assert snapshot_bound([GROUP, other, lone]) == (1 + 5) + 1
