"""SIGINT and SIGTERM during a send: the first stops new requests and lets those in flight finish; a second one
abandons them too (their rows stay pending: a PUT is idempotent, so --resume may resend them)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Interrupts:
    """The handler of both signals for one task: counts them, sets stop, cancels the task at the second."""

    def __init__(self, stop: asyncio.Event, task: asyncio.Future[None]) -> None:
        self.stop = stop
        self.task = task
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        self.stop.set()
        if self.count > 1:
            self.task.cancel()

    async def finish(self) -> None:
        """Wait for the task; its cancellation by a second signal is not an error."""
        try:
            await self.task
        except asyncio.CancelledError:
            if not self.task.cancelled():
                raise


@contextmanager
def signals_set(handler: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call handler in the running loop while inside (nothing is set off the main thread)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(number, handler)
            installed.append(number)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            pass
    try:
        yield
    finally:
        for number in installed:
            loop.remove_signal_handler(number)
