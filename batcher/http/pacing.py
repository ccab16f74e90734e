"""When the next request may start: evenly spaced starts, paused by 429s, slowed once per congestion event and
back to full pace by time.

PaceSchedule is pure: it decides from the times it is given, so tests drive it with a clock of their own. Pace waits
for it in the running loop, and for the PaceRecord (pace_record.py) shared by every process using one state folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Protocol

_testing = False  # see set_testing
SLOWDOWN_PER_EVENT = 2.0  # a congestion event halves the pace
MAX_SLOWDOWN = 8.0  # after 429s the pace drops to at most 1/8 of --rate
RECOVERY_S = 3.0  # after a congestion event's pause the pace climbs back to full in this many seconds without a 429


class SharedPace(Protocol):
    """The next free request start of every process on one API key, in wall-clock seconds (time.time())."""

    def claim(self, now: float, interval_s: float) -> float:
        """Take the next start if it is free at now (returns 0.0), else return how long to wait for it."""
        ...

    def pause_until(self, now: float, resume: float) -> None:
        """Nobody on this key starts a request before resume (a 429's Retry-After)."""
        ...


class PaceSchedule:
    """The spacing of request starts, in the seconds of one clock.

    A 429 sets not_before (nothing starts before it). 429s that arrive before the pause of the last congestion event
    ends, or answer requests sent before it ended (in flight when it began), belong to that event: only the first of
    an event slows the pace (SLOWDOWN_PER_EVENT, at most MAX_SLOWDOWN). From the end of the pause, the rate climbs
    linearly back to full in RECOVERY_S seconds, whether or not requests were sent meanwhile.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.not_before = -math.inf
        self.last_start = -math.inf
        self.slowdown = 1.0  # the factor on interval_s at the end of the last event's pause
        self.event_resume = -math.inf  # when the last congestion event's pause ended (or ends)
        self.events = 0  # congestion events so far
        self.waited_s = 0.0  # total time 429s pushed the run back

    def factor(self, now: float) -> float:
        """How many times interval_s the spacing of starts is at now (1.0: full pace)."""
        if self.slowdown == 1.0 or now >= self.event_resume + RECOVERY_S:
            return 1.0
        if now <= self.event_resume:
            return self.slowdown
        low = 1.0 / self.slowdown
        rate = low + (1.0 - low) * (now - self.event_resume) / RECOVERY_S
        return 1.0 / rate

    def next_start(self, now: float) -> float:
        """The earliest time the next request may start, as things stand at now."""
        return max(now, self.not_before, self.last_start + self.interval_s * self.factor(now))

    def started(self, now: float) -> None:
        self.last_start = now

    def went_out(self, now: float) -> None:
        """A request left at now: a request that left later than its start (a busy loop, a new connection) pushes
        the next start back, so that no second holds more starts than the rate however late one of them left."""
        self.last_start = max(self.last_start, now)

    def throttled(self, now: float, sent_at: float, wait_s: float) -> bool:
        """A 429 for a request started at sent_at came at now, asking for wait_s; True if it began a new event."""
        resume = now + max(0.0, wait_s)
        self.waited_s += max(0.0, resume - max(self.not_before, now))
        self.not_before = max(self.not_before, resume)
        if sent_at < self.event_resume or now < self.event_resume:
            self.event_resume = max(self.event_resume, resume)  # the same event: its pause may grow, not its slowdown
            return False
        self.slowdown = min(MAX_SLOWDOWN, self.factor(now) * SLOWDOWN_PER_EVENT)
        self.event_resume = resume
        self.events += 1
        return True


class Pace:
    """PaceSchedule in the running loop: slot() waits for the next start, for this client and the shared record."""

    def __init__(
        self,
        interval_s: float,
        stop: asyncio.Event,
        *,
        shared: SharedPace | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.schedule = PaceSchedule(interval_s)
        self.stop = stop
        self.shared = shared
        self.wall = wall
        self.turn = asyncio.Lock()  # one caller at a time waits for the next start

    @property
    def waited_s(self) -> float:
        return self.schedule.waited_s

    def rate_factor(self) -> float:
        """The pace now, as a fraction of the full pace."""
        return 1.0 / self.schedule.factor(asyncio.get_running_loop().time())

    async def slot(self) -> float | None:
        """Wait for the next request start; its loop time, or None if the run stopped meanwhile."""
        loop = asyncio.get_running_loop()
        async with self.turn:
            while not self.stop.is_set():
                now = loop.time()
                delay = self.schedule.next_start(now) - now
                if delay <= 0 and self.shared is not None:
                    delay = self.shared.claim(self.wall(), self.schedule.interval_s * self.schedule.factor(now))
                if delay > 0:
                    await sleep_unless_stopped(delay, self.stop)
                    continue
                self.schedule.started(now)
                return now
        return None

    def went_out(self) -> None:
        """The request given the last start has just been written to the wire (its headers sent)."""
        now = asyncio.get_running_loop().time()
        self.schedule.went_out(now)
        if self.shared is not None:
            wall = self.wall()
            self.shared.pause_until(wall, wall + self.schedule.interval_s * self.schedule.factor(now))

    def throttled(self, sent_at: float, wait_s: float) -> bool:
        """A 429 for the request started at sent_at (loop time); True if it began a new congestion event."""
        now = asyncio.get_running_loop().time()
        if self.shared is not None and wait_s > 0:
            wall = self.wall()
            self.shared.pause_until(wall, wall + wait_s)
        return self.schedule.throttled(now, sent_at, wait_s)


async def sleep_unless_stopped(delay_s: float, stop: asyncio.Event) -> None:
    """Sleep delay_s seconds, or less if the run stops."""
    if delay_s <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay_s)


def set_testing(testing: bool) -> None:
    """Turn every backoff, throttle and token-endpoint wait off (tests), or back on; as stamina's set_testing."""
    global _testing  # noqa: PLW0603 (one process-wide switch, like stamina's)
    _testing = testing


def is_testing() -> bool:
    return _testing
