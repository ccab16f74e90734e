"""The OAuth 2.0 device authorization grant (RFC 8628) as Constant Contact's authorization server serves it.

Pure readers turn each answer into a value (a DeviceCode, a Poll verdict or a LoginError); DeviceClient sends
the two calls (device authorization, one token poll) and revocation. The waiting between polls is the login
flow's, not this module's. No token is ever put in a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from batcher.errors import LoginError
from batcher.http.transport import USER_AGENT, BodyTooLarge, read_body
from batcher.support import redaction

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "campaign_data offline_access"
SLOW_DOWN_STEP_S = 5  # RFC 8628 section 3.5: add 5 seconds to the interval after each slow_down
DEFAULT_INTERVAL_S = 5  # RFC 8628 section 3.2: when the server gives none
MAX_INTERVAL_S = 60
DEFAULT_EXPIRES_IN_S = 600
DEFAULT_ACCESS_LIFETIME_S = 86_400  # API.md: access tokens last 24 hours
BODY_SHOWN_CHARS = 200
MAX_SHOWN_CHARS = 2000  # a user code or verification URL longer than this is not one


def sibling_url(token_url: str, name: str) -> str:
    """The endpoint `name` beside the token endpoint: {auth}/device/authorize, {auth}/revoke."""
    parts = urlsplit(token_url)
    folder = parts.path.rsplit("/", 1)[0]
    return urlunsplit((parts.scheme, parts.netloc, f"{folder}/{name}", "", ""))


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """The device authorization's answer: what the person is shown, and the code batcher polls with."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in_s: int
    interval_s: int


class PollVerdict(StrEnum):
    """One token poll's answer (RFC 8628 section 3.5)."""

    GRANTED = "granted"
    PENDING = "authorization_pending"
    SLOW_DOWN = "slow_down"


@dataclass(frozen=True, slots=True)
class Grant:
    """The tokens of an approved login; repr hides them."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in_s: int


@dataclass(frozen=True, slots=True)
class Poll:
    """A token poll read: go on waiting (PENDING, SLOW_DOWN) or the grant."""

    verdict: PollVerdict
    grant: Grant | None = None


def _json(body: bytes) -> dict[str, object] | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _shown(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return redaction.redact(text)[:BODY_SHOWN_CHARS] or "an empty answer"


def _printable(text: str) -> bool:
    return text.isprintable() and " " not in text and len(text) <= MAX_SHOWN_CHARS


def _seconds(value: object, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return default
    return int(value)


def _refusal(url: str, status: int, data: dict[str, object] | None, body: bytes, client_id: str) -> LoginError:
    error = data.get("error") if data else None
    if error == "invalid_client":
        return LoginError(
            f"the authorization server does not know the client ID {client_id!r} (invalid_client); copy the API "
            "key of your application from Constant Contact's developer portal (see docs/login.md)"
        )
    if error in ("unauthorized_client", "unsupported_grant_type"):
        return LoginError(
            f"the application {client_id!r} may not use the device flow ({error}); turn on the device "
            "authorization flow for it in Constant Contact's developer portal (see docs/login.md)"
        )
    if error == "access_denied":
        return LoginError("the login was refused at the verification page (access_denied); nothing was saved")
    if error == "expired_token":
        return LoginError("the code expired before it was approved (expired_token); run batcher login again")
    if isinstance(error, str) and error:
        described = data.get("error_description") if data else None
        detail = f": {described}" if isinstance(described, str) and described else ""
        return LoginError(f"{url} refused the login ({redaction.redact(error + detail)[:BODY_SHOWN_CHARS]})")
    return LoginError(f"{url} answered HTTP {status} with {_shown(body)!r}, not an OAuth answer; nothing was saved")


def read_device_code(url: str, status: int, body: bytes, client_id: str) -> DeviceCode:
    """The device authorization's answer as a DeviceCode.

    Raises:
        LoginError: a refusal (unknown client, device flow off) or an answer that is not the RFC's.
    """
    data = _json(body)
    if status != 200 or data is None:
        raise _refusal(url, status, data, body, client_id)
    fields = {name: data.get(name) for name in ("device_code", "user_code", "verification_uri")}
    if not all(isinstance(value, str) and value for value in fields.values()):
        raise LoginError(f"{url} answered without a device_code, user_code and verification_uri; nothing was saved")
    redaction.add(str(fields["device_code"]))
    verification = str(fields["verification_uri"])
    complete = data.get("verification_uri_complete")
    for shown in (verification, complete):
        if isinstance(shown, str) and (urlsplit(shown).scheme not in ("http", "https") or not _printable(shown)):
            raise LoginError(f"{url} gave a verification URL that is not a web address; nothing was saved")
    if not _printable(str(fields["user_code"])):
        # it is shown to the person as it is: an escape sequence would rewrite their terminal
        raise LoginError(f"{url} gave a user code with characters no code has; nothing was saved")
    return DeviceCode(
        device_code=str(fields["device_code"]),
        user_code=str(fields["user_code"]),
        verification_uri=verification,
        verification_uri_complete=complete if isinstance(complete, str) else "",
        expires_in_s=_seconds(data.get("expires_in"), DEFAULT_EXPIRES_IN_S),
        interval_s=min(_seconds(data.get("interval"), DEFAULT_INTERVAL_S), MAX_INTERVAL_S),
    )


def read_poll(url: str, status: int, body: bytes, client_id: str) -> Poll:
    """One token poll's answer: pending, slow down, or the grant.

    Raises:
        LoginError: access_denied, expired_token, any other refusal, or an answer that is not OAuth's.
    """
    data = _json(body)
    if status == 200 and data is not None:
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise LoginError(f"{url} approved the login but sent no access_token; nothing was saved")
        refresh = data.get("refresh_token")
        refresh = refresh if isinstance(refresh, str) else ""
        redaction.add(access, refresh)
        grant = Grant(access, refresh, _seconds(data.get("expires_in"), DEFAULT_ACCESS_LIFETIME_S))
        return Poll(PollVerdict.GRANTED, grant)
    error = data.get("error") if data else None
    if status in (400, 401) and error == PollVerdict.PENDING.value:
        return Poll(PollVerdict.PENDING)
    if status in (400, 401, 429) and error == PollVerdict.SLOW_DOWN.value:
        return Poll(PollVerdict.SLOW_DOWN)
    raise _refusal(url, status, data, body, client_id)


class DeviceClient:
    """The device flow's HTTP calls; use as `async with DeviceClient(...) as client` inside the running loop."""

    def __init__(self, token_url: str, device_url: str, client_id: str, *, timeout_s: float) -> None:
        self.token_url = token_url
        self.device_url = device_url
        self.client_id = client_id
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> DeviceClient:
        self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def start(self) -> DeviceCode:
        """POST {auth}/device/authorize.

        Raises:
            LoginError: refused, unreadable, or the server did not answer.
        """
        status, body = await self._post(self.device_url, {"client_id": self.client_id, "scope": SCOPE})
        return read_device_code(self.device_url, status, body, self.client_id)

    async def poll(self, device_code: str) -> Poll:
        """POST {auth}/token with the device code, once.

        Raises:
            LoginError: denied, expired, refused, unreadable, or the server did not answer.
        """
        form = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": self.client_id}
        status, body = await self._post(self.token_url, form)
        return read_poll(self.token_url, status, body, self.client_id)

    async def revoke(self, revoke_url: str, token: str, hint: str) -> str:
        """POST {auth}/revoke (RFC 7009) for one token; "" when revoked, else why not (never raises)."""
        try:
            status, body = await self._post(
                revoke_url, {"token": token, "token_type_hint": hint, "client_id": self.client_id}
            )
        except LoginError as exc:
            return str(exc)
        return "" if status == 200 else f"{revoke_url} answered HTTP {status} ({_shown(body)})"

    async def _post(self, url: str, form: dict[str, str]) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("use the DeviceClient as `async with DeviceClient(...)`")
        try:
            async with self._session.post(url, data=form, allow_redirects=False, timeout=self.timeout) as response:
                return response.status, await read_body(response)
        except BodyTooLarge:
            raise LoginError(f"{url} answered with a body too large to be an OAuth answer; nothing was saved") from None
        except TimeoutError:
            raise LoginError(
                f"{url} did not answer within {self.timeout.total:g} s; try again later, nothing was saved"
            ) from None
        except aiohttp.ClientError as exc:
            reason = redaction.redact(str(exc) or type(exc).__name__)[:BODY_SHOWN_CHARS]
            raise LoginError(
                f"cannot reach {url} ({reason}); check the URL and the network, nothing was saved"
            ) from None
