"""The one owner of what talking to the API needs, for every command (run, plan, undo, verify, export, and the
reads of `run --verify`): the state folder, the credentials, the daily quota ledger, and the ApiClient built on
them. The commands' flows open one Session and ask it for their client; none loads a token or a ledger itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from batcher.http.auth import Credentials, load_credentials
from batcher.http.profiles import DEFAULT_PROFILE, profile_folder
from batcher.http.quota import DEFAULT_DAILY_QUOTA, QuotaLedger, default_state_dir
from batcher.models import WireStats
from batcher.settings import Settings

if TYPE_CHECKING:  # asyncio and the client (aiohttp) cost start-up; `batcher --help` builds SessionOptions' class
    import asyncio

    from batcher.http.client import ApiClient


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """How a command reaches the API: the settings, the token's sources, the daily quota and the state folder."""

    settings: Settings
    daily_quota: int | None = DEFAULT_DAILY_QUOTA
    state_dir: Path | None = None  # None: quota.default_state_dir of the environment
    token_file: Path | None = None
    token_url: str | None = None  # None: the environment's CTCT_TOKEN_URL, else auth's default
    profile: str = DEFAULT_PROFILE  # --profile: its own folder under the state folder (a saved login, its own ledger)


def state_root(state_dir: Path | None, environ: Mapping[str, str]) -> Path:
    """--state-dir when given, else the environment's (quota.default_state_dir): where every profile's folder is."""
    return state_dir if state_dir is not None else default_state_dir(environ)


def state_folder(state_dir: Path | None, profile: str, environ: Mapping[str, str]) -> Path:
    """A profile's folder under the state root: its quota ledger, saved tokens, pace and run history."""
    return profile_folder(state_root(state_dir, environ), profile)


@dataclass(frozen=True, slots=True)
class SessionStats:
    """What a session spent: requests on the wire, today's quota left, things to say once (a saved token)."""

    requests: int
    quota_left: int | None
    daily_quota: int
    notices: tuple[str, ...] = ()


class Session:
    """The state folder, the credentials (unless credentials=False), the quota ledger (unless ledger=False);
    use as `with Session(...) as session:` so the ledger gives back what it reserved.

    Raises (on creation):
        UsageError: no usable token, or the state folder cannot be used.
    """

    def __init__(
        self, options: SessionOptions, environ: Mapping[str, str], *, credentials: bool = True, ledger: bool = True
    ) -> None:
        self.options = options
        self.state_dir = state_folder(options.state_dir, options.profile, environ)
        self.credentials: Credentials | None = None
        if credentials:
            self.credentials = load_credentials(
                environ,
                token_file=options.token_file,
                state_dir=self.state_dir,
                token_url=options.token_url,
                profile=options.profile,
            )
        self.ledger = QuotaLedger(self.state_dir, options.daily_quota or 0) if ledger else None
        self._said: set[str] = set()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Give back the requests the ledger reserved but did not send (a session may be closed more than once)."""
        if self.ledger is not None:
            self.ledger.close()

    def client(
        self,
        settings: Settings | None = None,
        credentials: Credentials | None = None,
        *,
        stop: asyncio.Event | None = None,
        stats: WireStats | None = None,
    ) -> ApiClient:
        """The ApiClient of this session (use it as `async with`): its settings and credentials unless others are
        given (an in-process sandbox's), its quota ledger, its request count in stats."""
        from batcher.http.client import ApiClient  # noqa: PLC0415 - aiohttp only once a request is made: `plan` never does

        token = credentials or self.credentials
        if token is None:
            raise ValueError("credentials are needed to talk to the real API")
        return ApiClient(settings or self.options.settings, token, stop=stop, quota=self.ledger, stats=stats)

    def notices(self) -> tuple[str, ...]:
        """What to tell the user once (a rotated token was saved), each only the first time it is asked."""
        found = self.credentials.saved_notice if self.credentials is not None else ""
        if not found or found in self._said:
            return ()
        self._said.add(found)
        return (found,)

    def stats(self, wire: WireStats) -> SessionStats:
        """What a command's reads on this session spent, and what it has to tell once."""
        ledger = self.ledger
        left = ledger.remaining_today() if ledger is not None else None
        return SessionStats(wire.requests, left, ledger.daily_quota if ledger is not None else 0, self.notices())
