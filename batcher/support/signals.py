"""A stop that is not a signal: a front-end without a terminal (the page) presses it, and a running send hears it
as it hears Ctrl-C: the first press sends no new request, a second abandons those in flight."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


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
