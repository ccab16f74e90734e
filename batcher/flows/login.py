"""The `login`, `logout`, `login --status` and `profiles` flows: a profile's login by the device flow, and its end.

The person is told what to do through LoginHooks (the command line prints, the page shows), never by print().
Nothing is saved unless the whole login succeeded and every value passed its check; waits go through the hooks'
sleep, which the project's testing switch turns off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from batcher.defaults import DEVICE_PATH, SANDBOX_CLIENT_ID, TOKEN_PATH
from batcher.errors import LoginError, UsageError
from batcher.http.profiles import (
    DEFAULT_PROFILE,
    ROTATED_TOKENS_NAME,
    ProfileInfo,
    SavedLogin,
    check_folder_writable,
    check_secret_value,
    forget_login,
    list_profiles,
    login_lock,
    profile_folder,
    read_login,
    save_login,
    tokens_lock,
)
from batcher.settings import DEFAULT_TIMEOUT_S, check_auth_url

if TYPE_CHECKING:
    from batcher.http.device import DeviceClient, DeviceCode, Grant

SANDBOX_AUTO_APPROVE_AFTER = 3  # `login --sandbox` approves by itself after this many polls (no one may click)
PORTAL_URL = "https://app.constantcontact.com/pages/dma/portal/"
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LoginOptions:
    """What `batcher login` was told, typed."""

    profile: str
    state_root: Path
    client_id: str
    token_url: str
    device_url: str
    open_browser: bool = True
    sandbox: bool = False  # an in-process sandbox's login: rehearsed, nothing saved
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class LoginPrompt:
    """What the person must do: open the page and enter the code before it expires."""

    verification_uri: str
    user_code: str
    verification_uri_complete: str
    expires_in_s: int


async def _pause(seconds: float) -> None:
    from batcher.http.pacing import is_testing  # noqa: PLC0415 - the project's one testing switch

    await asyncio.sleep(0 if is_testing() else seconds)


@dataclass(frozen=True, slots=True)
class LoginHooks:
    """What the login asks of its front-end."""

    show_code: Callable[[LoginPrompt], None]
    open_browser: Callable[[str], bool] = lambda url: False  # True when a browser was opened
    waiting: Callable[[int], None] = lambda interval_s: None  # about to wait interval_s before the next poll
    sleep: Sleep = _pause


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A finished login."""

    profile: str
    client_id: str
    expires_at: datetime
    has_refresh_token: bool
    saved_to: Path | None  # None: a sandbox rehearsal, nothing saved
    browser_opened: bool = False


def login_options(
    *,
    profile: str,
    state_root: Path,
    client_id: str | None,
    token_url: str,
    device_url: str | None,
    open_browser: bool,
    sandbox: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> LoginOptions:
    """The typed options of `batcher login`.

    Raises:
        UsageError: no client ID, one with characters no client ID has, or a URL that is not https.
    """
    if sandbox:
        client_id = client_id or SANDBOX_CLIENT_ID
    if not client_id:
        raise UsageError(
            "no client ID: pass --client-id KEY (or set CTCT_CLIENT_ID, or client-id in the config file) with the "
            f"API key of your application in Constant Contact's developer portal ({PORTAL_URL}); docs/login.md "
            "says how to register one"
        )
    check_secret_value(client_id, "--client-id")
    if not sandbox:
        check_auth_url(token_url, "--token-url")
        device_url = device_url or device_url_of(token_url)
        check_auth_url(device_url, "--device-url")
    return LoginOptions(profile, state_root, client_id, token_url, device_url or "", open_browser, sandbox, timeout_s)


def device_url_of(token_url: str) -> str:
    """The device endpoint beside a token endpoint: {auth}/device/authorize."""
    from batcher.http.device import sibling_url  # noqa: PLC0415 - aiohttp only once logging in

    return sibling_url(token_url, "device/authorize")


def login_flow(options: LoginOptions, hooks: LoginHooks) -> LoginResult:
    """Log a profile in by the device flow and save its tokens (mode 0600); a sandbox login saves nothing.

    Raises:
        UsageError: the profile's folder cannot be written (before any request), or another login of it runs.
        LoginError: refused, denied, expired, or the authorization server failed; nothing was saved.
        KeyboardInterrupt: Ctrl-C while waiting; nothing was saved.
    """
    if options.sandbox:
        grant, opened = asyncio.run(_sandbox_login(options, hooks))
        expires_at = datetime.now(UTC) + timedelta(seconds=grant.expires_in_s)
        return LoginResult(options.profile, options.client_id, expires_at, bool(grant.refresh_token), None, opened)
    folder = profile_folder(options.state_root, options.profile)
    check_folder_writable(folder)
    with login_lock(folder, options.profile):
        grant, opened = asyncio.run(_login(options, hooks, options.token_url, options.device_url))
        login = SavedLogin(
            client_id=options.client_id,
            access_token=grant.access_token,
            refresh_token=grant.refresh_token,
            expires_at=datetime.now(UTC) + timedelta(seconds=grant.expires_in_s),
            token_url=options.token_url,
        )
        try:
            login.checked()
        except UsageError as exc:
            raise LoginError(f"the authorization server's answer was refused: {exc}") from None
        with tokens_lock(folder):
            path = save_login(folder, login)
            (folder / ROTATED_TOKENS_NAME).unlink(missing_ok=True)  # an older account's rotated pair
    return LoginResult(options.profile, options.client_id, login.expires_at, bool(login.refresh_token), path, opened)


async def _sandbox_login(options: LoginOptions, hooks: LoginHooks) -> tuple[Grant, bool]:
    from batcher.sandbox import app as sandbox  # noqa: PLC0415 - only a sandbox login serves

    scenario = sandbox.Scenario(rate_limit_per_s=None, auto_approve_after=SANDBOX_AUTO_APPROVE_AFTER)
    async with sandbox.running(sandbox.make_app(scenario)) as url:
        origin = url.removesuffix("/v3")
        return await _login(options, hooks, origin + TOKEN_PATH, origin + DEVICE_PATH)


async def _login(options: LoginOptions, hooks: LoginHooks, token_url: str, device_url: str) -> tuple[Grant, bool]:
    from batcher.http.device import DeviceClient  # noqa: PLC0415 - aiohttp only once logging in

    async with DeviceClient(token_url, device_url, options.client_id, timeout_s=options.timeout_s) as client:
        code = await client.start()
        hooks.show_code(
            LoginPrompt(code.verification_uri, code.user_code, code.verification_uri_complete, code.expires_in_s)
        )
        opened = options.open_browser and hooks.open_browser(code.verification_uri_complete or code.verification_uri)
        return await _poll_until_decided(client, code, hooks), opened


async def _poll_until_decided(client: DeviceClient, code: DeviceCode, hooks: LoginHooks) -> Grant:
    """Poll the token endpoint no faster than the interval, 5 s slower after each slow_down (RFC 8628 3.5)."""
    from batcher.http.device import SLOW_DOWN_STEP_S, PollVerdict  # noqa: PLC0415

    interval_s = code.interval_s
    waited_s = 0
    while True:
        if waited_s >= code.expires_in_s:
            raise LoginError("the code expired before it was approved; run batcher login again")
        hooks.waiting(interval_s)
        await hooks.sleep(interval_s)
        waited_s += interval_s
        poll = await client.poll(code.device_code)
        if poll.grant is not None:
            return poll.grant
        if poll.verdict is PollVerdict.SLOW_DOWN:
            interval_s += SLOW_DOWN_STEP_S


@dataclass(frozen=True, slots=True)
class StatusResult:
    """`batcher login --status`: a profile's login, never a token's value."""

    profile: str
    folder: Path
    login: SavedLogin | None
    rotated_tokens: bool  # a saved successor of an environment refresh token is kept there too


def status_flow(state_root: Path, profile: str) -> StatusResult:
    """What the profile holds.

    Raises:
        UsageError: the login file is there but unreadable.
    """
    folder = profile_folder(state_root, profile)
    return StatusResult(profile, folder, read_login(folder), (folder / ROTATED_TOKENS_NAME).exists())


@dataclass(frozen=True, slots=True)
class LogoutResult:
    """`batcher logout`: what was forgotten here, and what the server said to the revocation."""

    profile: str
    removed: tuple[Path, ...]
    revoked: bool  # the server revoked the tokens
    revoke_problem: str = ""  # why not, said but not fatal


def logout_flow(state_root: Path, profile: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> LogoutResult:
    """Revoke the profile's tokens where the server can (a failure is said, not fatal), then forget them.

    Raises:
        OutputError: a saved file cannot be removed.
    """
    folder = profile_folder(state_root, profile)
    try:
        login = read_login(folder)
    except UsageError:
        login = None  # an unreadable login is forgotten all the same
    revoked, problem = False, ""
    if login is not None:
        problem = asyncio.run(_revoke(login, timeout_s))
        revoked = not problem
    removed: list[Path] = []
    if folder.is_dir():
        with tokens_lock(folder):
            removed = forget_login(folder)
    return LogoutResult(profile, tuple(removed), revoked, problem)


async def _revoke(login: SavedLogin, timeout_s: float) -> str:
    from batcher.http.device import DeviceClient, sibling_url  # noqa: PLC0415

    revoke_url = sibling_url(login.token_url, "revoke")
    async with DeviceClient(login.token_url, "", login.client_id, timeout_s=timeout_s) as client:
        problems = []
        if login.refresh_token:
            problems.append(await client.revoke(revoke_url, login.refresh_token, "refresh_token"))
        problems.append(await client.revoke(revoke_url, login.access_token, "access_token"))
    return next((problem for problem in problems if problem), "")


def profiles_flow(state_root: Path) -> list[ProfileInfo]:
    """Every profile under the state folder, with its login if any."""
    return list_profiles(state_root)


def credentials_source(
    environ: Mapping[str, str], *, token_file: Path | None, token_file_source: str, state_root: Path, profile: str
) -> tuple[str, str]:
    """Where a command's tokens come from, as --print-config says it (flag, environment, config file, profile):
    (what, its source); never a token's value."""
    if token_file is not None:
        return f"the token file {token_file}", token_file_source
    if environ.get("CTCT_ACCESS_TOKEN"):
        return "the access token in CTCT_ACCESS_TOKEN", "env CTCT_ACCESS_TOKEN"
    if environ.get("CTCT_REFRESH_TOKEN") and environ.get("CTCT_CLIENT_ID"):
        return "the refresh token in CTCT_REFRESH_TOKEN", "env CTCT_REFRESH_TOKEN"
    try:
        login = read_login(profile_folder(state_root, profile))
    except UsageError as exc:
        return f"none usable: {exc}", f"profile {profile}"
    if login is None:
        named = "" if profile == DEFAULT_PROFILE else f" --profile {profile}"
        return f"none: run 'batcher login{named}', or set CTCT_ACCESS_TOKEN", "not set"
    refresh = "a refresh token held" if login.refresh_token else "no refresh token"
    when = login.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"the login of client ID {login.client_id} (access token expires {when}, {refresh})", f"profile {profile}"
