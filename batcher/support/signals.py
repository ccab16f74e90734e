"""SIGINT and SIGTERM during a send: the first stops new requests and lets those in flight finish; a second one
abandons them too (their rows stay pending: a PUT is idempotent, so --resume may resend them). And a stop that is
not a signal (StopButton): a front-end without a terminal (the page) presses it, and the send hears it the same."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
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


class StopButton:
    """Pressed from any thread; heard by the send running in its own loop (execute listens while it sends)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []
        self.presses = 0

    @property
    def pressed(self) -> bool:
        return self.presses > 0

    def press(self) -> None:
        """Stop as Ctrl-C does (a second press: as a second Ctrl-C)."""
        with self._lock:
            self.presses += 1
            listeners = list(self._listeners)
        for loop, handler in listeners:
            with contextlib.suppress(RuntimeError):  # that loop has just closed: its send is over
                loop.call_soon_threadsafe(handler)

    @contextmanager
    def listening(self, handler: Callable[[], None]) -> Iterator[None]:
        """Call handler in the running loop at each press, those made before listening included."""
        loop = asyncio.get_running_loop()
        entry = (loop, handler)
        with self._lock:
            self._listeners.append(entry)
            earlier = self.presses
        for _ in range(earlier):  # pressed while the run was still planning or reading
            loop.call_soon(handler)
        try:
            yield
        finally:
            with self._lock:
                self._listeners.remove(entry)
