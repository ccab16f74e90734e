"""Shows a run's progress: a tqdm bar in a terminal, else a plain log line every so many seconds."""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Never, TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from batcher.support.logs import NOTICE, get_logger
from batcher.support.words import number, plural


class Progress:
    """Counts registrations done and requests sent (reads too); draws them as a bar or as periodic lines.

    With the plan's likely request count (likely_requests) the bar counts requests, so the read phase moves it
    too, and the time left is the likely requests not yet sent at the pace (interval_s); without it, registrations.
    """

    def __init__(
        self, total: int, *, bar: bool, line_every_s: float, likely_requests: int = 0, interval_s: float = 0.0
    ) -> None:
        self.total = total
        self.done = 0
        self.requests = 0
        self.reads = 0
        self.likely_requests = likely_requests
        self.interval_s = interval_s
        self.line_every_s = line_every_s
        self.started = time.monotonic()
        self.last_line = self.started
        self.bar: tqdm[Never] | None = None
        self.redirect: AbstractContextManager[None] | None = None
        if bar:  # while the bar is drawn, log lines are written above it, never after it on its line
            self.redirect = logging_redirect_tqdm(loggers=[get_logger()])
            self.redirect.__enter__()
            by_requests = likely_requests > 0
            self.bar = tqdm(
                total=likely_requests if by_requests else total,
                unit="req" if by_requests else "reg",
                file=sys.stderr,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.redirect is not None:
            self.redirect.__exit__(kind, error, trace)

    def advance(self, rows: int, requests: int) -> None:
        """rows more registrations settled, with requests more requests sent (a read page: 0 rows, 1 request)."""
        self.done += rows
        self.requests += requests
        if not rows:
            self.reads += requests
        if self.bar is not None:
            if self.likely_requests:
                self.bar.update(requests)
                self.bar.set_postfix_str(self.phase(), refresh=False)
            else:
                self.bar.update(rows)
            return
        now = time.monotonic()
        if now - self.last_line >= self.line_every_s:
            self.last_line = now
            self.log_line(now)

    def phase(self) -> str:
        if not self.done:
            return f"reading: {plural(self.reads, 'page')}"
        return f"{self.done:,} of {self.total:,} registrations"

    def seconds_left(self, now: float) -> float | None:
        """The time left: the likely requests not yet sent at the pace; else from the registrations' rate."""
        if self.likely_requests and self.interval_s:
            return max(0, self.likely_requests - self.requests) * self.interval_s
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        return (self.total - self.done) / rate if rate > 0 else None

    def log_line(self, now: float) -> None:
        left = self.seconds_left(now)
        eta = "unknown" if left is None else f"{left:.0f} s" if left < 120 else f"{left / 60:.1f} min"
        reading = f" ({plural(self.reads, 'list page')} read)" if self.reads else ""
        get_logger().log(
            NOTICE,
            f"progress: {number(self.done)} of {plural(self.total, 'registration')}, {plural(self.requests, 'request')}"
            f"{reading}, "
            f"about {eta} left",
            extra={"done": self.done, "total": self.total, "requests": self.requests, "reads": self.reads},
        )


def print_between_bars(text: str, out: TextIO) -> None:
    """Print a line of its own while a bar may be drawn: the bars are cleared, the line printed, the bars drawn again
    below it (without this, the first line printed after a bar was drawn ends that bar's line)."""
    with tqdm.external_write_mode(file=out):
        print(text, file=out, flush=True)
