"""The reads of a reading command (`verify`, `export`, and `run --verify`) on one client of the one session owner
(http/session.py), whose pace, quota, retries and token every read shares; a stop of the client (401 beyond
refresh, 403, quota, a base URL that is not the API) is raised as its error. Also the page progress bar the
commands show in a terminal.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn, TypeVar

from batcher.flows.options import ReadOptions
from batcher.http.session import Session, SessionStats
from batcher.models import WireStats
from batcher.remote.reads import Getter, getter
from batcher.settings import Settings

if TYPE_CHECKING:
    from tqdm import tqdm


T = TypeVar("T")
Work = Callable[[Getter, str], Awaitable[T]]  # (getter, base URL) -> the command's reads


def run_reads(
    options: ReadOptions, environ: Mapping[str, str], work: Work[T], *, session: Session | None = None
) -> tuple[T, SessionStats]:
    """Run work's reads on one client of session (`run --verify`: the run's), else of a session of its own.

    Raises:
        UsageError: no usable token, or the state folder cannot be used.
        RunStopped: the client stopped (401 that a refresh cannot mend, 403, quota, a base URL not the API's).
    """
    used = session if session is not None else Session(options.session, environ)
    wire = WireStats()
    try:
        result = asyncio.run(_reads(used, options.settings, wire, work))
    finally:
        used.close()
    return result, used.stats(wire)


async def _reads(session: Session, settings: Settings, wire: WireStats, work: Work[T]) -> T:
    async with session.client(settings, stats=wire) as client:
        result = await work(getter(client), settings.base_url)
    if client.stopped is not None:
        raise client.stopped
    return result


class PageBar:
    """A tqdm bar of the records listed, in a terminal: its total grows by each listing's total_records."""

    def __init__(self, *, shown: bool, unit: str = "reg") -> None:
        self.shown = shown and sys.stderr.isatty()
        self.unit = unit
        self.bar: tqdm[NoReturn] | None = None

    def __enter__(self) -> PageBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.close()

    def listing(self) -> Callable[[int, int | None], None]:
        """The page callback of one listing: its first page adds its total_records to the bar's total."""
        first = [True]

        def on_page(records: int, total_records: int | None) -> None:
            if not self.shown:
                return
            grow = max(total_records or 0, records) if first[0] else 0
            first[0] = False
            bar = self.bar
            if bar is None:
                from tqdm import tqdm  # noqa: PLC0415

                bar = self.bar = tqdm(total=grow, unit=self.unit, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
            elif grow:
                bar.total = (bar.total or 0) + grow
                bar.refresh()
            bar.update(records)

        return on_page
