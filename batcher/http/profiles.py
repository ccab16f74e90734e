"""Profiles: one folder of state per Constant Contact account, and the login saved in it.

The profile `default` is the state folder itself (where the quota ledger and rotated tokens have always lived);
any other profile NAME is the folder `profiles/NAME` under it. A profile's login (login.json, mode 0600) holds
the client ID, the access and refresh tokens, when the access token expires, and the token URL that issued them.
Every value is checked before it is written; a refresh of the tokens holds the profile's token lock, so two
processes never spend one rotating refresh token twice.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from batcher.errors import OutputError, UsageError
from batcher.settings import check_auth_url
from batcher.support import redaction
from batcher.support.files import exclusive_lock, why_unwritable, write_text_atomically

DEFAULT_PROFILE = "default"
ENV_PROFILE = "BATCHER_PROFILE"
PROFILES_FOLDER = "profiles"
LOGIN_NAME = "login.json"
ROTATED_TOKENS_NAME = "tokens.json"  # auth's saved successor of an environment refresh token
TOKENS_LOCK_NAME = "tokens.lock"  # held while the tokens are refreshed and saved
LOGIN_LOCK_NAME = "login.lock"  # held by a `batcher login` from its first request to its save
MAX_PROFILE_CHARS = 64
MAX_VALUE_CHARS = 8192
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]+")
# visible ASCII: OAuth tokens (RFC 6749 appendix A) and client IDs are in it; a space, a line break or a control
# character would break (or add to) the Authorization header
TOKEN_CHARACTERS = re.compile(r"[\x21-\x7e]+")


def check_profile_name(name: str) -> str:
    """name if it may name a profile (letters, digits, '-', '_').

    Raises:
        UsageError: any other character, or too long.
    """
    if not _PROFILE_NAME.fullmatch(name) or len(name) > MAX_PROFILE_CHARS:
        shown = name.encode("unicode_escape").decode("ascii")[:80]
        raise UsageError(
            f"--profile {shown!r} is not a profile name: use letters, digits, '-' and '_' "
            f"(at most {MAX_PROFILE_CHARS}), e.g. --profile agency-client-2"
        )
    return name


def check_secret_value(value: str, what: str) -> str:
    """value if it may be a token or a client ID: printable ASCII without spaces, quotes or control characters.

    Raises:
        UsageError: empty, too long, or any other character (the value itself is never repeated).
    """
    if not value:
        raise UsageError(f"{what} is empty")
    if len(value) > MAX_VALUE_CHARS or not TOKEN_CHARACTERS.fullmatch(value):
        raise UsageError(
            f"{what} holds a character a token never has (a control character, a space, a line break or non-ASCII); "
            "refused, nothing saved"
        )
    return value


def profile_folder(state_root: Path, profile: str) -> Path:
    """The folder of a profile's state: the state folder itself for `default`, else profiles/NAME under it."""
    check_profile_name(profile)
    return state_root if profile == DEFAULT_PROFILE else state_root / PROFILES_FOLDER / profile


def chosen_profile(given: str | None, environ: Mapping[str, str]) -> str:
    """--profile, else BATCHER_PROFILE, else `default`; checked.

    Raises:
        UsageError: not a profile name.
    """
    return check_profile_name(given or environ.get(ENV_PROFILE) or DEFAULT_PROFILE)


def check_folder_writable(folder: Path) -> None:
    """Make the profile's folder (mode 0700) and check that a login can be saved in it, before any request.

    Raises:
        UsageError: the folder cannot be made or written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UsageError(
            f"{folder}: cannot make the state folder ({exc.strerror or exc}); choose another with --state-dir"
        ) from None
    problem = why_unwritable(folder / LOGIN_NAME, example=LOGIN_NAME)
    if problem:
        raise UsageError(f"{folder / LOGIN_NAME} {problem}; choose another state folder with --state-dir")


@dataclass(frozen=True, slots=True)
class SavedLogin:
    """A profile's login; its repr never shows a token."""

    client_id: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime  # when the access token stops working (UTC)
    token_url: str

    def checked(self) -> SavedLogin:
        """self, once every value is one that may be saved.

        Raises:
            UsageError: a value has a character no token has, or the token URL breaks the https rule.
        """
        check_secret_value(self.client_id, "the client ID")
        check_secret_value(self.access_token, "the access token the server sent")
        if self.refresh_token:
            check_secret_value(self.refresh_token, "the refresh token the server sent")
        check_auth_url(self.token_url, "the token URL")
        return self

    def expires_in_s(self, now: datetime | None = None) -> float:
        """Seconds until the access token expires (negative once it has)."""
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()


def read_login(folder: Path) -> SavedLogin | None:
    """The login saved in a profile's folder; None when there is none.

    Raises:
        UsageError: the file is there but unreadable or not a login batcher wrote.
    """
    path = folder / LOGIN_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a readable login ({type(exc).__name__}); run batcher login again") from None
    try:
        login = SavedLogin(
            client_id=str(data["client_id"]),
            access_token=str(data["access_token"]),
            refresh_token=str(data.get("refresh_token") or ""),
            expires_at=datetime.fromisoformat(str(data["expires_at"])).astimezone(UTC),
            token_url=str(data["token_url"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UsageError(f"{path}: not a login batcher wrote; run batcher login again") from None
    redaction.add(login.access_token, login.refresh_token)
    return login


def save_login(folder: Path, login: SavedLogin) -> Path:
    """Write the login atomically with mode 0600, after checking every value; returns its path.

    Raises:
        UsageError: a value may not be saved (nothing is written).
        OutputError: the file cannot be written.
    """
    login.checked()
    redaction.add(login.access_token, login.refresh_token)
    path = folder / LOGIN_NAME
    record = {
        "client_id": login.client_id,
        "access_token": login.access_token,
        "refresh_token": login.refresh_token,
        "expires_at": login.expires_at.astimezone(UTC).isoformat(timespec="seconds"),
        "token_url": login.token_url,
    }
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_text_atomically(path, json.dumps(record, indent=1), what="the login")
    return path


def forget_login(folder: Path) -> list[Path]:
    """Delete the profile's saved login and rotated tokens; returns the files removed.

    Raises:
        OutputError: a file is there but cannot be removed.
    """
    removed = []
    for name in (LOGIN_NAME, ROTATED_TOKENS_NAME):
        path = folder / name
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise OutputError(f"{path}: cannot remove it ({exc.strerror or exc})") from None
        removed.append(path)
    return removed


@contextmanager
def tokens_lock(folder: Path) -> Iterator[None]:
    """Hold the profile's token lock (waiting for it): one refresh and save of its tokens at a time.

    Raises:
        UsageError: the lock file cannot be made.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with exclusive_lock(folder / TOKENS_LOCK_NAME, wait=True):
        yield


@contextmanager
def login_lock(folder: Path, profile: str) -> Iterator[None]:
    """Hold the profile's login lock for a whole `batcher login`; a second one at once is refused.

    Raises:
        UsageError: another login of this profile is running, or the lock file cannot be made.
    """
    busy = f"another batcher login for the profile {profile!r} is running; finish or stop it first"
    with exclusive_lock(folder / LOGIN_LOCK_NAME, wait=False, busy_message=busy):
        yield


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    """One profile as `batcher profiles` lists it."""

    name: str
    folder: Path
    login: SavedLogin | None
    problem: str = ""  # the login file is there but unreadable


def list_profiles(state_root: Path) -> list[ProfileInfo]:
    """Every profile under the state folder (`default` first, then by name), with its login if any."""
    names = [DEFAULT_PROFILE]
    extra = state_root / PROFILES_FOLDER
    if extra.is_dir():
        names += sorted(
            entry.name for entry in extra.iterdir() if entry.is_dir() and _PROFILE_NAME.fullmatch(entry.name)
        )
    found = []
    for name in names:
        folder = profile_folder(state_root, name)
        try:
            found.append(ProfileInfo(name, folder, read_login(folder)))
        except UsageError as exc:
            found.append(ProfileInfo(name, folder, None, problem=str(exc)))
    return found


def profile_exists(state_root: Path, profile: str) -> bool:
    """True for `default` and for any profile whose folder exists."""
    return profile == DEFAULT_PROFILE or profile_folder(state_root, profile).is_dir()


def file_mode(path: Path) -> int:
    """The permission bits of a file (for the tests and the status line)."""
    return os.stat(path).st_mode & 0o777
