"""Signed out: who the page works as (profile and account, never a token), and the login of `batcher login` on
the page itself (the device flow's link and code, then the page goes on), through the login flow's hooks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from batcher.errors import BatcherError, UsageError
from batcher.flows.login import (
    LoginHooks,
    LoginPrompt,
    credentials_source,
    login_flow,
    login_options,
    profiles_flow,
)
from batcher.flows.render import login_lines
from batcher.http.profiles import check_profile_name, chosen_profile
from batcher.http.session import state_root
from batcher.settings import DEFAULT_TOKEN_URL
from batcher.web.watch import Watched

if TYPE_CHECKING:
    from batcher.web.setup import PageSetup

NOT_SET = "not set"  # credentials_source's word for "no token anywhere"


@dataclass(frozen=True, slots=True)
class Account:
    """Who the page works as: the profile, and where its tokens come from (never a token's value)."""

    profile: str
    what: str
    signed_in: bool


def account_of(setup: PageSetup) -> Account:
    """The profile and its tokens' source, as --print-config says it.

    Raises:
        UsageError: not a profile name.
    """
    values = setup.values
    profile = chosen_profile(str(values["profile"]) if values.get("profile") else None, setup.environ)
    token_file = Path(str(values["token_file"])) if values.get("token_file") else None
    what, source = credentials_source(
        setup.environ, token_file=token_file, token_file_source="--token-file", state_root=_root(setup), profile=profile
    )
    return Account(profile, what, source != NOT_SET)


def profiles_of(setup: PageSetup) -> list[str]:
    """The profiles the page may switch to, as `batcher profiles` lists them (`default` first), and its own."""
    # a --sandbox page counts in a state folder of its own; the profiles it offers are the user's (STATE/ui's STATE)
    names = [info.name for info in profiles_flow(setup.folder.parent if setup.sandbox else _root(setup))]
    current = account_of(setup).profile
    return names if current in names else [*names, current]


def chosen_switch(setup: PageSetup, name: str) -> str:
    """The profile the switch form names, once it is a profile name the page lists.

    Raises:
        UsageError: not a profile name, or no such profile in the state folder.
    """
    check_profile_name(name)
    if name not in profiles_of(setup):
        raise UsageError(
            f"there is no profile {name!r} in this state folder: 'batcher login --profile {name}' makes it"
        )
    return name


def _root(setup: PageSetup) -> Path:
    values = setup.values
    return state_root(Path(str(values["state_dir"])) if values.get("state_dir") else None, setup.environ)


class SignIn(Watched):
    """The page's one login at a time: waiting for the approval, then done (or failed)."""

    def __init__(self) -> None:
        super().__init__()
        self.phase = ""  # "", waiting, done, failed
        self.prompt: LoginPrompt | None = None
        self.lines: list[str] = []
        self.error = ""
        self.version = 0
        self.task: asyncio.Future[None] | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self, setup: PageSetup, client_id: str) -> None:
        """Log the profile in by the device flow, in a thread; the page shows the code meanwhile.

        Raises:
            UsageError: no client ID, or a token URL that may not carry tokens.
        """
        values = setup.values
        account = account_of(setup)
        options = login_options(
            profile=account.profile,
            state_root=_root(setup),
            client_id=client_id.strip() or None,
            token_url=str(values.get("token_url") or DEFAULT_TOKEN_URL),
            device_url=None,
            open_browser=False,
        )

        def shown(prompt: LoginPrompt) -> None:
            self.prompt, self.phase = prompt, "waiting"
            self.changed()

        def log_in() -> None:
            try:
                self.lines = login_lines(login_flow(options, LoginHooks(show_code=shown)))
                self.phase = "done"
            except BatcherError as exc:
                self.error, self.phase = str(exc), "failed"
            self.changed()

        self.phase, self.prompt, self.lines, self.error = "waiting", None, [], ""
        self.task = self.loop.run_in_executor(None, log_in)
