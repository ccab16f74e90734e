"""The pace: one slowdown per congestion event, recovery by time, and one pace per API key across clients.

The schedule is driven by a clock of the test's own (plain numbers), never by the real clock; Pace, which waits
in the running loop, runs on a loop whose clock is the test's (VirtualLoop), as aiolimiter's tests control the
loop's time.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import selectors
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from batcher.http.pace_record import MAX_AHEAD_S, PaceRecord
from batcher.http.pacing import MAX_SLOWDOWN, RECOVERY_S, Pace, PaceSchedule
from batcher.http.quota import QuotaLedger
from batcher.plan.chunker import plan_batches
from batcher.sandbox import app as sandbox
from batcher.settings import Settings
from tests.conftest import PaceStarts, StartSandbox, an_interval_apart
from tests.remote.test_sender import groups_of, registrations, send

INTERVAL = 0.25  # 4 requests a second


def test_429s_within_one_retry_after_window_are_one_congestion_event() -> None:
    schedule = PaceSchedule(INTERVAL)
    assert schedule.throttled(now=1.0, sent_at=0.9, wait_s=2.0)
    assert not schedule.throttled(now=1.1, sent_at=1.0, wait_s=2.0)  # within the window
    assert not schedule.throttled(now=3.4, sent_at=1.05, wait_s=2.0)  # in flight when the event began, answered late
    assert (schedule.events, schedule.slowdown) == (1, 2.0)
    assert schedule.not_before == pytest.approx(5.4)


def test_a_429_after_the_window_is_a_new_event_down_to_the_floor() -> None:
    schedule = PaceSchedule(INTERVAL)
    now = 0.0
    for slowdown in (2.0, 4.0, 8.0, MAX_SLOWDOWN):
        assert schedule.throttled(now=now, sent_at=now, wait_s=1.0)  # the first request after the pause: 429 again
        assert schedule.slowdown == slowdown
        now = schedule.not_before


def test_the_pace_is_back_to_full_within_the_recovery_time_without_a_429() -> None:
    schedule = PaceSchedule(INTERVAL)
    schedule.throttled(now=10.0, sent_at=9.9, wait_s=2.0)
    assert schedule.factor(12.0) == 2.0  # at the end of the pause: half the pace
    assert 1.0 < schedule.factor(12.0 + RECOVERY_S / 2) < 2.0
    assert schedule.factor(12.0 + RECOVERY_S) == 1.0  # no answer needed, time alone
    schedule.started(20.0)
    assert schedule.next_start(20.0) == 20.0 + INTERVAL


def simulate(requests: int, throttled_arrivals: set[int], retry_after_s: float) -> tuple[float, float]:
    """(elapsed, ideal) of sending `requests` on a simulated clock with answers at once; the API answers its
    arrivals in throttled_arrivals (1-based) 429 with retry_after_s. ideal: N requests at the pace plus the pause."""
    schedule = PaceSchedule(INTERVAL)
    now, arrivals, done, first = 0.0, 0, 0, None
    while done < requests:
        now = max(now, schedule.next_start(now))
        schedule.started(now)
        first = now if first is None else first
        arrivals += 1
        if arrivals in throttled_arrivals:
            schedule.throttled(now=now, sent_at=now, wait_s=retry_after_s)
        else:
            done += 1
    ideal = (arrivals - 1) * INTERVAL + schedule.waited_s
    return now - (first or 0.0), ideal


def test_one_429_burst_costs_its_pause_and_little_more() -> None:
    # the night: 75 requests, the API's 4th, 5th and 6th answered 429 with Retry-After: 2
    elapsed, ideal = simulate(75, {4, 5, 6}, 2.0)
    assert ideal / elapsed >= 0.9  # before: halved per 429, back one step per 20 answers: 3.2x the ideal


def test_a_request_that_left_late_pushes_the_next_start_back() -> None:
    """Found by the bench: the first PUT after the reads left 0.15 s after its start, the next one on time, and the
    API then saw 5 arrivals within one second (a 429). The next start counts from when a request really left."""
    schedule = PaceSchedule(INTERVAL)
    schedule.started(10.0)
    assert schedule.next_start(10.1) == pytest.approx(10.25)
    schedule.went_out(10.15)  # the request given the start at 10.0 left only now
    assert schedule.next_start(10.2) == pytest.approx(10.4)
    schedule.went_out(10.05)  # an earlier report never pulls the next start forward
    assert schedule.next_start(10.2) == pytest.approx(10.4)


def test_the_pace_record_gives_one_start_per_interval_to_every_client(tmp_path: Path) -> None:
    one, other = PaceRecord(tmp_path), PaceRecord(tmp_path)
    assert one.claim(1000.0, INTERVAL) == 0.0
    assert other.claim(1000.1, INTERVAL) == pytest.approx(0.15)
    assert other.claim(1000.25, INTERVAL) == 0.0
    one.pause_until(1000.3, 1002.3)  # a 429 in one process pauses the other
    assert other.claim(1001.0, INTERVAL) == pytest.approx(1.3)
    one.close()
    other.close()


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xff" * 8])
def test_a_broken_or_far_ahead_pace_record_is_not_waited_for(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "pace.bin").write_bytes(content)
    record = PaceRecord(tmp_path)
    assert record.claim(5000.0, INTERVAL) == 0.0
    record.pause_until(5000.0, 5000.0 + 10 * MAX_AHEAD_S)
    assert record.claim(5001.0, INTERVAL) == 0.0
    record.close()


def test_an_unwritable_state_folder_leaves_the_pace_to_the_client(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    record = PaceRecord(blocked / "state")
    assert record.claim(1.0, INTERVAL) == 0.0
    record.pause_until(1.0, 3.0)
    assert not os.path.exists(blocked / "state")


async def test_two_clients_on_one_key_share_one_pace(
    start_sandbox: StartSandbox, settings: Settings, tmp_path: Path, pace_starts: PaceStarts
) -> None:
    """Back to back, each at the full rate: every request start, of either client, is one interval after the one
    before (before: the second client started at once, and a strict window answered 429). The starts are the
    record's own, so this holds however loaded the machine is; the bench's back-to-back case counts the 429s."""
    rate = 20
    groups = groups_of(30)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), registrations(groups))
    paced = replace(settings, base_url=box.url, rate_per_s=rate, concurrency=4)
    batches = plan_batches(groups, batch_size=1)
    for part in (batches[:15], batches[15:]):
        ledger = QuotaLedger(tmp_path / "state", 10_000)
        await send(part, paced, quota=ledger)
        ledger.close()
    assert len(box.state.puts) == len(pace_starts) == 30
    assert an_interval_apart(pace_starts)


class _SkippingSelector(selectors.DefaultSelector):
    """Never sleeps: when nothing is ready, the loop's clock moves on to the next timer instead."""

    def __init__(self, loop: VirtualLoop) -> None:
        super().__init__()
        self.loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and timeout is None:
            raise RuntimeError("nothing scheduled and nothing ready: the test would wait forever")
        if not ready and timeout:
            self.loop.now += timeout
        return ready


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop whose time() moves only to the next timer: waits of the pace cost no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        super().__init__(_SkippingSelector(self))

    def time(self) -> float:
        return self.now


def on_virtual_clock(main: Callable[[VirtualLoop], Awaitable[None]]) -> None:
    loop = VirtualLoop()
    try:
        loop.run_until_complete(main(loop))
    finally:
        loop.close()


async def take(pace: Pace, count: int, starts: list[float]) -> None:
    for _ in range(count):
        start = await pace.slot()
        assert start is not None
        starts.append(start)


def busiest_second(starts: list[float]) -> int:
    return max(sum(1 for t in starts if start <= t < start + 1.0) for start in starts)


def test_concurrent_callers_get_starts_an_interval_apart_and_never_more_than_the_rate_in_a_second() -> None:
    rate = 20
    interval = Settings(rate_per_s=rate).pacing_interval_s
    starts: list[float] = []

    async def main(loop: VirtualLoop) -> None:
        pace = Pace(interval, asyncio.Event())
        await asyncio.gather(*(take(pace, 10, starts) for _ in range(4)))  # --concurrency 4

    on_virtual_clock(main)
    assert len(starts) == 40
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(interval)
    assert busiest_second(starts) <= rate
    assert (len(starts) - 1) / (starts[-1] - starts[0]) >= 0.97 * rate  # and no slower than the pace


def test_a_429_pauses_every_caller_for_its_retry_after_then_the_pace_climbs_back() -> None:
    interval = Settings(rate_per_s=4).pacing_interval_s
    starts: list[float] = []
    throttled_at: list[float] = []

    async def main(loop: VirtualLoop) -> None:
        pace = Pace(interval, asyncio.Event())
        await take(pace, 5, starts)
        throttled_at.append(loop.time())
        assert pace.throttled(sent_at=starts[-1], wait_s=2.0)  # a new congestion event
        await asyncio.gather(take(pace, 5, starts), take(pace, 5, starts))

    on_virtual_clock(main)
    after = starts[5:]
    assert after[0] == pytest.approx(throttled_at[0] + 2.0)  # nothing before the Retry-After
    assert after[1] - after[0] == pytest.approx(2 * interval)  # half the pace at the end of the pause
    gaps = [later - earlier for earlier, later in itertools.pairwise(after)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 2 * interval  # climbing back by time


def test_two_clients_sharing_a_pace_record_take_turns_on_a_virtual_clock(tmp_path: Path) -> None:
    interval = Settings(rate_per_s=4).pacing_interval_s
    starts: list[float] = []

    async def main(loop: VirtualLoop) -> None:
        records = [PaceRecord(tmp_path), PaceRecord(tmp_path)]
        paces = [Pace(interval, asyncio.Event(), shared=record, wall=loop.time) for record in records]
        await asyncio.gather(*(take(pace, 8, starts) for pace in paces))
        for record in records:
            record.close()

    on_virtual_clock(main)
    starts.sort()
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert len(starts) == 16 and min(gaps) >= interval * 0.999  # one key, one pace: 4 a second for both together
