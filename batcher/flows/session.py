"""One reading command's session with the API (`verify`, `export`): its credentials, daily quota, one ApiClient.

Built as the run builds its own: `auth.load_credentials`, the quota ledger of the state folder, one client whose
pace, quota, retries and token every read shares; a stop of the client (401 beyond refresh, 403, quota, a base
URL that is not the API) is raised as its error. Also the page progress bar the commands show in a terminal.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn, TypeVar

from batcher.flows.options import ReadOptions
from batcher.models import WireStats
from batcher.remote.reads import Getter

if TYPE_CHECKING:
    from tqdm import tqdm

    from batcher.http.auth import Credentials
    from batcher.http.quota import QuotaLedger

T = TypeVar("T")
Work = Callable[[Getter, str], Awaitable[T]]  # (getter, base URL) -> the command's reads


@dataclass(frozen=True, slots=True)
class SessionStats:
    """What a session spent: requests on the wire, today's quota left, things to say once (a saved token)."""

    requests: int
    quota_left: int | None
    daily_quota: int
    notices: tuple[str, ...] = ()


def run_reads(options: ReadOptions, environ: Mapping[str, str], work: Work[T]) -> tuple[T, SessionStats]:
    """Load the credentials, open the ledger and one client, and run work's reads on it.

    Raises:
        UsageError: no usable token, or the state folder cannot be used.
        RunStopped: the client stopped (401 that a refresh cannot mend, 403, quota, a base URL not the API's).
    """
    from batcher.http.auth import load_credentials  # noqa: PLC0415 - as the run flow loads them
    from batcher.http.profiles import profile_folder  # noqa: PLC0415
    from batcher.http.quota import QuotaLedger, default_state_dir  # noqa: PLC0415

    state_dir = profile_folder(options.state_dir or default_state_dir(environ), options.profile)
    credentials = load_credentials(
        environ,
        token_file=options.token_file,
        state_dir=state_dir,
        token_url=options.token_url,
        profile=options.profile,
    )
    ledger = QuotaLedger(state_dir, options.daily_quota or 0)
    stats = WireStats()
    try:
        result = asyncio.run(_session(options, credentials, ledger, stats, work))
    finally:
        ledger.close()
    notices = (credentials.saved_notice,) if credentials.saved_notice else ()
    return result, SessionStats(stats.requests, ledger.remaining_today(), ledger.daily_quota, notices)


async def _session(
    options: ReadOptions, credentials: Credentials, ledger: QuotaLedger, stats: WireStats, work: Work[T]
) -> T:
    from batcher.http.client import ApiClient  # noqa: PLC0415 - aiohttp only once reading
    from batcher.remote.reads import getter  # noqa: PLC0415

    async with ApiClient(options.settings, credentials, quota=ledger, stats=stats) as client:
        result = await work(getter(client), options.settings.base_url)
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
