"""When the next request may start: a capacity-1 aiolimiter behind a not-before time that 429s push back."""

from __future__ import annotations

import asyncio
import contextlib

from aiolimiter import AsyncLimiter

_testing = False  # see set_testing
MAX_SLOWDOWN = 8.0  # after 429s the pace drops to at most 1/8 of --rate
RECOVER_AFTER_ANSWERS = 20  # answers without a 429 before the pace doubles back


class Pace:
    """Request starts paced by a capacity-1 aiolimiter, behind a shared not-before time.

    A 429 moves not_before (nothing is sent to the API before it) and halves the pace; each
    RECOVER_AFTER_ANSWERS answers without a 429 double it back, up to the configured rate.
    """

    def __init__(self, interval_s: float, stop: asyncio.Event) -> None:
        self.interval_s = interval_s
        self.stop = stop
        self.factor = 1.0
        self.limiter = AsyncLimiter(1, interval_s)
        self.not_before = 0.0
        self.last_start = 0.0
        self.calm = 0
        self.waited_s = 0.0  # total time 429s pushed the run back

    async def slot(self) -> bool:
        """Wait for the next request start; False if the run stopped meanwhile."""
        loop = asyncio.get_running_loop()
        while not self.stop.is_set():
            delay = self.not_before - loop.time()
            if delay > 0:
                await sleep_unless_stopped(delay, self.stop)
                continue
            await self.limiter.acquire()
            if loop.time() >= self.not_before:
                self.last_start = loop.time()
                return not self.stop.is_set()
        return False

    def throttled(self, wait_s: float) -> None:
        now = asyncio.get_running_loop().time()
        resume = now + wait_s
        self.waited_s += max(0.0, resume - max(self.not_before, now))
        self.not_before = max(self.not_before, resume)
        self.calm = 0
        self._set_factor(min(MAX_SLOWDOWN, self.factor * 2))

    def answered(self) -> None:
        if self.factor == 1.0:
            return
        self.calm += 1
        if self.calm >= RECOVER_AFTER_ANSWERS:
            self.calm = 0
            self._set_factor(max(1.0, self.factor / 2))

    def _set_factor(self, factor: float) -> None:
        if factor == self.factor:
            return
        self.factor = factor
        interval = self.interval_s * factor
        self.limiter = AsyncLimiter(1, interval)
        # a fresh limiter grants at once: keep the spacing from the last request
        self.not_before = max(self.not_before, self.last_start + interval)


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
