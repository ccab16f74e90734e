"""The OAuth token endpoint: one refresh of the access token at a time for every caller of the client, retried a
few times a second apart; its answer is judged by auth.Credentials.accept_refresh."""

from __future__ import annotations

import asyncio

import aiohttp

from batcher.errors import AuthError
from batcher.http.auth import Credentials
from batcher.http.pacing import is_testing, sleep_unless_stopped
from batcher.http.transport import MAX_RESPONSE_BYTES, BodyTooLarge, read_body
from batcher.support import redaction
from batcher.support.logs import get_logger

TOKEN_ENDPOINT_ATTEMPTS = 3
TOKEN_ENDPOINT_SPACING_S = 1.0  # the token endpoint allows about one call per second

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
        async with self.lock:
            if self.credentials.generation != generation:
                return None  # another caller refreshed it meanwhile
            last = ""
            for attempt in range(TOKEN_ENDPOINT_ATTEMPTS):
                if attempt and not is_testing():
                    await sleep_unless_stopped(TOKEN_ENDPOINT_SPACING_S, self.stop)
                outcome = await self._call(session)
                if outcome is None or isinstance(outcome, AuthError):
                    return outcome
                last = outcome
            return AuthError(
                f"the token endpoint {self.credentials.token_url} did not answer ({last}); "
                "try again later with --resume"
            )

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
        except aiohttp.ClientError as exc:
            return redaction.redact(str(exc) or type(exc).__name__)
