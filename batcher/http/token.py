"""The OAuth token endpoint: one refresh of the access token at a time for every caller of the client, retried a
few times a second apart; its answer is judged by auth.Credentials.accept_refresh."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from batcher.errors import AuthError
from batcher.http import api
from batcher.http.auth import Credentials
from batcher.http.pacing import is_testing, sleep_unless_stopped
from batcher.http.profiles import TOKENS_LOCK_NAME
from batcher.http.transport import MAX_RESPONSE_BYTES, BodyTooLarge, read_body
from batcher.support import hints, redaction
from batcher.support.files import release_lock, try_lock
from batcher.support.logs import get_logger

TOKEN_ENDPOINT_ATTEMPTS = 3
TOKEN_ENDPOINT_SPACING_S = 1.0  # the token endpoint allows about one call per second
TOKENS_LOCK_POLL_S = 0.05  # while another process refreshes the same tokens

log = get_logger()


class TokenEndpoint:
    """Refreshes the credentials' access token, once for all callers that saw it rejected."""

    def __init__(self, credentials: Credentials, timeout_s: float, stop: asyncio.Event) -> None:
        self.credentials = credentials
        self.timeout_s = timeout_s
        self.stop = stop
        self.lock = asyncio.Lock()

    async def refresh(self, session: aiohttp.ClientSession, generation: int) -> AuthError | None:
        """None when the token of that generation is refreshed (here or by another caller meanwhile); else the
        error that stops the run."""
        async with self.lock, self._tokens_lock() as held:
            if self.credentials.generation != generation:
                return None  # another caller refreshed it meanwhile
            if not held:
                return AuthError("the run stopped while another process was refreshing the tokens")
            if self.credentials.adopt_saved():
                log.info("the access token was refreshed by another process; using the tokens it saved")
                return None
            last = ""
            for attempt in range(TOKEN_ENDPOINT_ATTEMPTS):
                if attempt and not is_testing():
                    await sleep_unless_stopped(TOKEN_ENDPOINT_SPACING_S, self.stop)
                outcome = await self._call(session)
                if outcome is None or isinstance(outcome, AuthError):
                    return outcome
                last = outcome
            return AuthError(
                f"the token endpoint {self.credentials.token_url} did not answer ({last}); {hints.rerun()} later"
            )

    @asynccontextmanager
    async def _tokens_lock(self) -> AsyncIterator[bool]:
        """The token lock of the credentials' folder, shared with other processes (one refresh of a profile's
        tokens at a time), waited for without blocking the loop; yields False if the run stopped first."""
        folder = self.credentials.lock_folder
        if folder is None:
            yield True
            return
        with contextlib.suppress(OSError):  # else try_lock says why, in one line
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        waiting = False
        while (descriptor := try_lock(folder / TOKENS_LOCK_NAME)) is None:
            if not waiting:
                log.info("another process is refreshing the tokens of this profile; waiting for it")
                waiting = True
            if self.stop.is_set():
                yield False
                return
            await sleep_unless_stopped(TOKENS_LOCK_POLL_S, self.stop)
        try:
            yield True
        finally:
            release_lock(descriptor)

    async def _call(self, session: aiohttp.ClientSession) -> AuthError | str | None:
        """None when the token was refreshed, an AuthError when refused, a text when worth retrying."""
        call = self.credentials.refresh_request()  # not counted: the token endpoint is not the API's rate or quota
        try:
            async with session.post(
                call.url,
                data=call.form,
                headers=call.headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as response:
                if 300 <= response.status < 400:
                    location = redaction.redact(response.headers.get("Location", "nowhere"))[:200]
                    return AuthError(
                        f"the token endpoint {call.url} answered with a redirect to {location}; batcher does not "
                        "follow redirects (check CTCT_TOKEN_URL)"
                    )
                body = await read_body(response)
                if response.status >= 500 or response.status == 429:
                    return f"HTTP {response.status}"
                try:
                    self.credentials.accept_refresh(response.status, body)
                except AuthError as exc:
                    return exc
                log.info("the access token was refreshed")
                return None
        except BodyTooLarge:
            return f"an answer larger than {MAX_RESPONSE_BYTES} bytes"
        except TimeoutError:
            return f"no answer within {self.timeout_s:g} s"
        except aiohttp.ClientConnectorCertificateError as exc:  # no retry can mend a certificate
            failure = api.certificate_failure(call.url, str(exc.certificate_error))
            return AuthError(f"the token endpoint: {failure.error}; batcher stops rather than send it a token")
        except aiohttp.ClientError as exc:
            return redaction.redact(str(exc) or type(exc).__name__)
