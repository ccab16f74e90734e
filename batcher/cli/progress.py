"""Shows a run's progress: a tqdm bar in a terminal, else a plain log line every so many seconds."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from tqdm import tqdm

from batcher.support.logs import NOTICE, get_logger


class Progress:
    """Counts registrations done; draws them as a bar or as periodic lines."""

    def __init__(self, total: int, *, bar: bool, line_every_s: float) -> None:
        self.total = total
        self.done = 0
        self.requests = 0
        self.line_every_s = line_every_s
        self.started = time.monotonic()
        self.last_line = self.started
        self.bar = tqdm(total=total, unit="reg", file=sys.stderr, dynamic_ncols=True, smoothing=0.1) if bar else None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.close()

    def advance(self, rows: int, requests: int) -> None:
        """rows more registrations settled, with requests more requests sent."""
        self.done += rows
        self.requests += requests
        if self.bar is not None:
            self.bar.update(rows)
            return
        now = time.monotonic()
        if now - self.last_line >= self.line_every_s:
            self.last_line = now
            self.log_line(now)

    def log_line(self, now: float) -> None:
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = f"{left / 60:.1f} min" if left != float("inf") else "unknown"
        get_logger().log(
            NOTICE,
            f"progress: {self.done} of {self.total} registrations, {self.requests} requests, "
            f"{rate:.0f} registrations/s, about {eta} left",
            extra={"done": self.done, "total": self.total, "requests": self.requests},
        )
