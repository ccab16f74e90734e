"""The access token, its refresh, and where a rotated refresh token is kept.

Nothing here logs, formats or repeats a token; every token it ever holds is added to the redaction
registry. The HTTP exchange itself happens in client.py; this module builds the refresh request, reads
its answer and saves the new pair durably before use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from batcher.errors import AuthError, OutputError, UsageError
from batcher.http.api import parse_json
from batcher.http.profiles import DEFAULT_PROFILE, SavedLogin, read_login, save_login
from batcher.settings import DEFAULT_TOKEN_URL, ENV_TOKEN_URL, check_auth_url
from batcher.support import hints, redaction
from batcher.support.files import write_text_atomically
from batcher.support.text import printable

ENV_ACCESS_TOKEN = "CTCT_ACCESS_TOKEN"
ENV_REFRESH_TOKEN = "CTCT_REFRESH_TOKEN"
ENV_CLIENT_ID = "CTCT_CLIENT_ID"
ENV_CLIENT_SECRET = "CTCT_CLIENT_SECRET"
SAVED_TOKENS_NAME = "tokens.json"
REDACTED = redaction.REDACTED
EARLY_REFRESH_S = 300.0  # a known expiry this close: refresh before the next request rather than meet a 401
DEFAULT_ACCESS_LIFETIME_S = 86_400  # API.md: access tokens last 24 hours (when an answer gives no expires_in)
TOKEN_KEYS = ("access_token", "refresh_token")
TOKEN_CHARACTERS = re.compile(r"[\x21-\x7e]+")  # visible ASCII: OAuth tokens (RFC 6749 appendix A) are in it


@dataclass(frozen=True, slots=True)
class RefreshRequest:
    """The form POST that trades a refresh token for a new access token."""

    url: str
    form: dict[str, str]
    headers: dict[str, str]


def check_token(token: str, what: str) -> None:
    """Refuse a token holding a character no token has (a line break, a space, a control character): as a header it
    would break every request, or add a header of its own.

    Raises:
        AuthError: the token is refused; it is never repeated.
    """
    if token and not TOKEN_CHARACTERS.fullmatch(token):
        raise AuthError(
            f"{what} holds characters a token cannot have (a line break, a space or a control character); "
            f"batcher neither uses nor saves it. Get a new token (or fix the token file), then {hints.rerun()}."
        )


class Credentials:
    """Holds the tokens; its repr never shows them.

    generation counts refreshes, so that concurrent 401s cause one refresh, not one each.
    """

    __slots__ = (
        "_access_token",
        "_client_id",
        "_client_secret",
        "_refresh_token",
        "_replaces",
        "early_margin_s",
        "expires_at",
        "generation",
        "hides_login",
        "login_folder",
        "relogin",
        "save_to",
        "saved_notice",
        "token_url",
    )

    def __init__(
        self,
        access_token: str,
        *,
        refresh_token: str = "",
        client_id: str = "",
        client_secret: str = "",
        token_url: str = DEFAULT_TOKEN_URL,
        save_to: Path | None = None,
        replaces: str = "",
        expires_at: datetime | None = None,
        login_folder: Path | None = None,
        relogin: str = "",
        hides_login: bool = False,
    ) -> None:
        if not access_token.strip() and not (refresh_token and client_id):
            raise UsageError(f"the access token is empty; set {ENV_ACCESS_TOKEN} to a valid token")
        self._access_token = access_token.strip()
        self._refresh_token = refresh_token.strip()
        check_token(self._access_token, f"the access token{_from(save_to)}")
        check_token(self._refresh_token, f"the refresh token{_from(save_to)}")
        self._client_id = client_id.strip()
        self._client_secret = client_secret.strip()
        self._replaces = replaces
        redaction.add(self._access_token, self._refresh_token)
        redaction.add_client(self._client_id, self._client_secret)
        self.token_url = token_url
        self.save_to = save_to  # where a refreshed pair is written before it is used
        self.generation = 0
        self.saved_notice = ""  # said once to the user when a rotated token was saved
        self.expires_at = expires_at  # when the access token stops working, if known (a profile's login)
        self.early_margin_s = EARLY_REFRESH_S  # refresh this long before expires_at
        self.login_folder = login_folder  # a profile's folder: refreshes save the login there, under its lock
        self.relogin = relogin  # the command that logs the profile in again, for a login's tokens
        self.hides_login = hides_login  # tokens from the environment, while the profile holds a login they hide

    def __repr__(self) -> str:
        return f"Credentials(access_token={REDACTED}, refresh={'yes' if self.can_refresh else 'no'})"

    @property
    def can_refresh(self) -> bool:
        return bool(self._refresh_token and self._client_id)

    @property
    def has_access_token(self) -> bool:
        return bool(self._access_token)

    @property
    def lock_folder(self) -> Path | None:
        """The folder whose token lock a refresh holds, so that processes sharing the tokens refresh one at a time."""
        if self.login_folder is not None:
            return self.login_folder
        if self.save_to is not None and self._replaces:
            return self.save_to.parent  # an environment refresh token whose successor is saved in the state folder
        return None

    def expires_soon(self, now: datetime | None = None, *, margin_s: float | None = None) -> bool:
        """True when the access token can be refreshed and is known to expire within margin_s (by default
        early_margin_s: refresh it before use; 0: it has expired)."""
        if self.expires_at is None or not self.can_refresh:
            return False
        margin = self.early_margin_s if margin_s is None else margin_s
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds() < margin

    def adopt_saved(self) -> bool:
        """Take the tokens another process saved since these were read (it refreshed them); True if taken.

        Called under the token lock, before a refresh: a rotating refresh token this process holds may already
        have been spent by the other process, and the saved pair is its successor.
        """
        access, refresh, expires_at = self._saved_pair()
        if not access or access == self._access_token:
            return False
        redaction.add(access, refresh)
        self._access_token = access
        self._refresh_token = refresh or self._refresh_token
        self.expires_at = expires_at
        self.generation += 1
        return True

    def _saved_pair(self) -> tuple[str, str, datetime | None]:
        if self.login_folder is not None:
            try:
                login = read_login(self.login_folder)
            except UsageError:
                return "", "", None
            return (login.access_token, login.refresh_token, login.expires_at) if login else ("", "", None)
        if self.save_to is not None and self._replaces and self.save_to.exists():
            try:
                saved = _read_token_file(self.save_to)
            except UsageError:
                return "", "", None
            if saved.get("replaces") == self._replaces:
                return saved.get("access_token", ""), saved.get("refresh_token", ""), None
        return "", "", None

    def authorization(self) -> dict[str, str]:
        """The Authorization header to send."""
        return {"Authorization": f"Bearer {self._access_token}"}

    def redact(self, text: str) -> str:
        """Text with every secret the process has held masked (the one registry: redaction)."""
        return redaction.redact(text)

    def refresh_request(self) -> RefreshRequest:
        """The token endpoint call, as API.md describes it."""
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token, "client_id": self._client_id}
        headers = {"Accept": "application/json"}
        if self._client_secret:
            pair = f"{self._client_id}:{self._client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return RefreshRequest(self.token_url, form, headers)

    def accept_refresh(self, status: int, body: bytes) -> None:
        """Take the token endpoint's answer: save the new pair durably, then use it.

        Raises:
            AuthError: the endpoint refused (invalid_grant and the like) or answered nonsense.
        """
        try:
            data = parse_json(body) if body.strip() else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        access = data.get("access_token")
        if status != 200 or not isinstance(access, str) or not access:
            error = data.get("error") if isinstance(data.get("error"), str) else f"HTTP {status}"
            if self.relogin:
                renew = f"Log in again ({self.relogin})"
            elif self.save_to is not None and not self._replaces:  # the pair came from a token file
                renew = f"Put a new refresh_token (or access_token) in {self.save_to}"
            else:
                renew = f"Set a new {ENV_REFRESH_TOKEN} (or a new token file)"
            raise AuthError(
                f"the token endpoint refused to refresh the access token ({self.redact(printable(str(error))[:200])}). "
                f"{renew}, then {hints.rerun()}."
            )
        refresh = data.get("refresh_token")
        # known as secrets before anything can echo them, even if saving fails below
        redaction.add(access, refresh if isinstance(refresh, str) else "")
        check_token(access, f"the access token from the token endpoint {self.token_url}")
        if isinstance(refresh, str):
            check_token(refresh, f"the refresh token from the token endpoint {self.token_url}")
        new_refresh = refresh if isinstance(refresh, str) and refresh else self._refresh_token
        rotated = new_refresh != self._refresh_token
        lifetime = data.get("expires_in")
        expires_at = None
        if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
            expires_at = datetime.now(UTC) + timedelta(seconds=float(lifetime))
            # a server that hands out short-lived tokens gets a margin to match, not a refresh before every request
            self.early_margin_s = min(EARLY_REFRESH_S, float(lifetime) / 4)
        if self.login_folder is not None:
            self._save_login(access, new_refresh, expires_at)
        elif self.save_to is not None and (rotated or self.save_to.exists()):
            # a rotated refresh token is the only valid one: it must be on disk before anything relies on it
            save_tokens(self.save_to, access, new_refresh, replaces=self._replaces)
            if rotated and self._replaces:
                self.saved_notice = (
                    f"the refresh token rotated; the new pair is saved in {self.save_to} (mode 0600) and later "
                    f"runs use it while {ENV_REFRESH_TOKEN} still holds the old value"
                )
        self._access_token = access
        self._refresh_token = new_refresh
        self.expires_at = expires_at
        self.generation += 1

    def _save_login(self, access: str, refresh: str, expires_at: datetime | None) -> None:
        if self.login_folder is None:
            return
        login = SavedLogin(
            client_id=self._client_id,
            access_token=access,
            refresh_token=refresh,
            expires_at=expires_at or datetime.now(UTC) + timedelta(seconds=DEFAULT_ACCESS_LIFETIME_S),
            token_url=self.token_url,
        )
        try:
            save_login(self.login_folder, login)
        except UsageError as exc:
            raise AuthError(f"the token endpoint's answer was refused: {exc}; run batcher login again") from exc
        except OutputError as exc:
            raise AuthError(f"{exc}; the refreshed tokens would be lost, so the run stops") from exc


def _from(path: Path | None) -> str:
    return f" in {path}" if path is not None else ""


def fingerprint(secret: str) -> str:
    """A one-way tag for a token, safe to store beside it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def save_tokens(path: Path, access_token: str, refresh_token: str, *, replaces: str = "") -> None:
    """Write a token pair atomically with mode 0600, keeping every other key the file already had.

    Raises:
        AuthError: the file cannot be written; the new refresh token would be lost, so the run stops.
    """
    record: dict[str, object] = {}
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(existing, dict):
            record.update(existing)  # client_id and the like stay; only the tokens change
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    record.update(dict(zip(TOKEN_KEYS, (access_token, refresh_token), strict=True)))
    if replaces:
        record["replaces"] = replaces
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_text_atomically(path, json.dumps(record), what="the refreshed tokens")
    except (OSError, OutputError) as exc:
        cause = exc.__cause__ if isinstance(exc, OutputError) else exc
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        raise AuthError(f"{path}: cannot save the refreshed tokens ({reason}); the run stops") from exc


def _read_token_file(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such token file") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UsageError(
            f'{path}: not a readable token file; it must be JSON like {{"access_token": "...", '
            f'"refresh_token": "..."}} ({type(exc).__name__})'
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a token file holds a JSON object with access_token and refresh_token")
    return {key: value for key, value in data.items() if isinstance(key, str) and isinstance(value, str)}


def load_credentials(
    environ: Mapping[str, str],
    *,
    token_file: Path | None,
    state_dir: Path,
    token_url: str | None = None,
    profile: str = DEFAULT_PROFILE,
) -> Credentials:
    """Credentials from --token-file, else the environment (preferring a saved rotated pair), else the profile's login.

    state_dir is the profile's folder. token_url (--token-url or the config's token-url) wins over CTCT_TOKEN_URL,
    which wins over the login's own token URL, then the default.

    Raises:
        UsageError: no usable token is configured, or the token URL is not https (nor http to a loopback address).
    """
    client_id = environ.get(ENV_CLIENT_ID, "")
    client_secret = environ.get(ENV_CLIENT_SECRET, "")
    chosen_url = token_url or environ.get(ENV_TOKEN_URL) or ""
    if chosen_url:
        check_auth_url(chosen_url, "--token-url" if token_url else ENV_TOKEN_URL)
    if token_file is not None:
        stored = _read_token_file(token_file)
        if not stored.get("access_token") and not stored.get("refresh_token"):
            raise UsageError(f"{token_file}: holds neither access_token nor refresh_token")
        return Credentials(
            stored.get("access_token", ""),
            refresh_token=stored.get("refresh_token", ""),
            client_id=stored.get("client_id", client_id),
            client_secret=client_secret,
            token_url=chosen_url or DEFAULT_TOKEN_URL,
            save_to=token_file,
        )
    access = environ.get(ENV_ACCESS_TOKEN, "")
    refresh = environ.get(ENV_REFRESH_TOKEN, "")
    if not access.strip() and not (refresh.strip() and client_id.strip()):
        named = "" if profile == DEFAULT_PROFILE else f" --profile {profile}"
        login = read_login(state_dir)
        if login is not None:
            return Credentials(
                login.access_token,
                refresh_token=login.refresh_token,
                client_id=login.client_id,
                client_secret=client_secret,
                token_url=chosen_url or login.token_url,
                expires_at=login.expires_at,
                login_folder=state_dir,
                relogin=f"batcher login{named}",
            )
        raise UsageError(
            f"no access token: run 'batcher login{named}' once (see docs/login.md), or set {ENV_ACCESS_TOKEN} "
            f"(export {ENV_ACCESS_TOKEN}=...), or give --token-file"
            + hints.offer("--sandbox", ", or rehearse with --sandbox")
        )
    saved_path = state_dir / SAVED_TOKENS_NAME
    replaces = fingerprint(refresh) if refresh else ""
    if refresh and saved_path.exists():
        saved = _read_token_file(saved_path)
        if saved.get("replaces") == replaces and saved.get("refresh_token"):
            # the environment still holds a refresh token that rotated away: use its saved successor
            access, refresh = saved.get("access_token", ""), saved["refresh_token"]
    return Credentials(
        access,
        refresh_token=refresh,
        client_id=client_id,
        client_secret=client_secret,
        token_url=chosen_url or DEFAULT_TOKEN_URL,
        save_to=saved_path if refresh else None,
        replaces=replaces,
        hides_login=_holds_login(state_dir),
    )


def _holds_login(state_dir: Path) -> bool:
    """Whether the profile's folder holds a login (one that cannot be read counts as none)."""
    try:
        return read_login(state_dir) is not None
    except UsageError:
        return False
