"""What the pages watch: a version that grows at each change, told from any thread, awaited by the event streams."""

from __future__ import annotations

import asyncio


class Watched:
    """A thing whose every change wakes the pages showing it (they render it again)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.version = 0
        self._changed = asyncio.Event()

    def changed(self) -> None:
        """Wake the watching pages (from any thread)."""
        self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, seen: int, timeout_s: float) -> bool:
        """Wait until version passes seen (True) or timeout_s passes (False)."""
        event = self._changed
        if self.version != seen:
            return True
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True
