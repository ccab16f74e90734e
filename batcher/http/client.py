"""The one HTTP owner of a run: session, pace, quota gate, token refresh, retries and the request count.

Reads and writes both go through ApiClient.call, so they share the per-second pace, the daily quota,
the token and its single-flight refresh. Knows nothing of batches, CSV files or printing.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from batcher.errors import AuthError, BatcherError, QuotaError, RunStopped
from batcher.http import api
from batcher.http.api import Answer, Verdict
from batcher.http.auth import Credentials
from batcher.http.pacing import Pace, sleep_unless_stopped
from batcher.models import WireStats
from batcher.settings import PACING_MARGIN, Settings
from batcher.support import redaction
from batcher.support.logs import get_logger

MAX_RESPONSE_BYTES = 1 << 20
READ_CHUNK_BYTES = 64 * 1024
USER_AGENT = "batcher/0.1 (bulk registration status updates)"
TOKEN_ENDPOINT_ATTEMPTS = 3
MAX_REFRESHES_PER_CALL = 3
TOKEN_ENDPOINT_SPACING_S = 1.0  # the token endpoint allows about one call per second
THROTTLE_FLOOR_S = 1.0  # each 429 in a row counts at least this much against --max-throttle-wait
MIN_THROTTLES_IN_A_ROW = 3

log = get_logger()
_testing = False


def set_testing(testing: bool) -> None:
    """Turn every backoff, throttle and token-endpoint wait off (tests), or back on; as stamina's set_testing."""
    global _testing  # noqa: PLW0603 (one process-wide switch, like stamina's)
    _testing = testing


def is_testing() -> bool:
    return _testing


class QuotaGate(Protocol):
    """Counts each request against the daily quota; False means none may be sent today."""

    daily_quota: int

    def take(self) -> bool: ...


class BodyTooLarge(Exception):
    """An answer's body is past MAX_RESPONSE_BYTES."""


@dataclass(frozen=True, slots=True)
class Reply:
    """The final answer to one call, and how many requests it took; answer is None if the run stopped."""

    answer: Answer | None
    attempts: int


async def read_body(response: aiohttp.ClientResponse, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """The whole body, however many pieces it arrives in, up to limit bytes.

    Raises:
        BodyTooLarge: the body (by Content-Length or as read) is longer than limit.
    """
    if response.content_length is not None and response.content_length > limit:
        raise BodyTooLarge
    parts: list[bytes] = []
    size = 0
    while chunk := await response.content.read(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)


class ApiClient:
    """One run's connection to the API; use as `async with ApiClient(...) as client` inside the running loop.

    stopped holds the error that stopped the run (401 beyond refresh, 403, quota, a wrong base URL, a
    halt from the caller); stop is set with it, and every later call returns at once.
    """

    def __init__(
        self,
        settings: Settings,
        credentials: Credentials,
        *,
        stop: asyncio.Event | None = None,
        quota: QuotaGate | None = None,
        stats: WireStats | None = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.stop = stop if stop is not None else asyncio.Event()
        self.quota = quota
        self.stats = stats if stats is not None else WireStats()
        self.stopped: RunStopped | None = None
        self.pace = Pace(settings.pacing_interval_s, self.stop)
        self.in_flight = asyncio.Semaphore(settings.concurrency)
        self.refresh_lock = asyncio.Lock()
        self.accepted_generations: set[int] = set()
        self.throttles_in_a_row = 0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        connector = aiohttp.TCPConnector(limit=self.settings.concurrency + 1)
        self._session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": USER_AGENT}, raise_for_status=False
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the ApiClient as `async with ApiClient(...)`")
        return self._session

    def halt(self, error: RunStopped) -> None:
        """Stop the run: the first error given is the one reported."""
        if self.stopped is None:
            self.stopped = error
        self.stop.set()

    async def call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        label: str = "request",
        log_fields: Mapping[str, object] | None = None,
    ) -> Reply:
        """Send one request until it has a final answer (any verdict but RETRY, THROTTLED, REFRESH).

        Retries 5xx, timeouts, dropped connections and unreadable answers up to settings.max_retries
        times after the first attempt, waiting uniform(0, min(backoff_max_s, backoff_initial_s * 2**n))
        seconds before retry n+1 (exponential backoff with full jitter), or a usable Retry-After.
        429 throttled waits (Retry-After, else backoff) without using up retries, until --max-throttle-wait
        is spent; 401 refreshes the token (once for all callers) and resends, unless the token was already a
        refreshed one that never got a request through. A STOP_RUN answer halts the run (answer None).
        label names the request in log lines ("batch 12"); log_fields are added to them (e.g. {"batch": 12}).
        """
        if not self.credentials.has_access_token and not await self.refresh(self.credentials.generation):
            return Reply(None, 0)
        attempts = 0
        refreshes = 0
        while True:
            # only a request on the wire holds a place: a call waiting out its backoff lets others go
            async with self.in_flight:
                if not await self.pace.slot() or not self._take_quota():
                    return Reply(None, attempts)
                generation = self.credentials.generation
                attempts += 1
                self.stats.count(asyncio.get_running_loop().time())
                answer = await self._request_once(method, url, params or {}, body)
            verdict = answer.verdict
            if verdict is Verdict.THROTTLED:
                self._throttled(answer)
                continue
            self.throttles_in_a_row = 0
            self.pace.answered()
            if verdict is Verdict.REFRESH:
                refreshes += 1
                if self._is_hopeless(generation, refreshes):
                    self.halt(_rejected_token(answer, refreshed=generation > 0))
                    return Reply(None, attempts)
                if not await self.refresh(generation):
                    return Reply(None, attempts)
                continue
            if verdict is Verdict.STOP_RUN:
                self.halt(api.stop_error(answer, reading=method == "GET"))
                return Reply(None, attempts)
            if verdict is not Verdict.RETRY:
                self.accepted_generations.add(generation)
                return Reply(answer, attempts)
            if attempts > self.settings.max_retries:
                error = f"gave up after {attempts} attempts: {answer.error}"
                return Reply(Answer(Verdict.FAIL_BATCH, answer.http_status, error), attempts)
            delay_s = self.backoff_s(attempts, answer.wait_s)
            fields = {**(log_fields or {}), "attempts": attempts}
            log.info("%s: %s; resending in %.1f s", label, answer.error, delay_s, extra=fields)
            await sleep_unless_stopped(delay_s, self.stop)

    def backoff_s(self, attempts: int, retry_after_s: float | None) -> float:
        """Retry-After when usable (capped at backoff_max_s), else full-jitter exponential backoff."""
        if _testing:
            return 0.0
        if retry_after_s is not None:
            return min(retry_after_s, self.settings.backoff_max_s)
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_initial_s * 2 ** (attempts - 1))
        return random.uniform(0, ceiling)

    def _is_hopeless(self, generation: int, refreshes: int) -> bool:
        """True when a 401 on this token cannot be mended by a refresh."""
        if generation != self.credentials.generation:
            return False  # another caller already refreshed it: just resend
        if not self.credentials.can_refresh:
            return True
        # a refreshed token rejected before any request got through with it is not a token that expired
        return (generation > 0 and generation not in self.accepted_generations) or refreshes > MAX_REFRESHES_PER_CALL

    def _throttled(self, answer: Answer) -> None:
        """Push every caller back and slow the pace; stop once 429s cost more than the allowed wait."""
        self.throttles_in_a_row += 1
        if _testing:
            wait_s = 0.0
        elif answer.wait_s is not None:
            wait_s = answer.wait_s
        else:
            ceiling = min(self.settings.backoff_max_s, self.settings.backoff_initial_s * 2**self.throttles_in_a_row)
            wait_s = random.uniform(ceiling / 2, ceiling)
        self.pace.throttled(wait_s)
        log.warning(
            "429 too many requests: pausing %.1f s and slowing to %.2f requests/s",
            wait_s,
            self.settings.rate_per_s * PACING_MARGIN / self.pace.factor,
        )
        # a wait of nothing must still bring the stop: 429s in a row count at least THROTTLE_FLOOR_S each
        allowed = max(MIN_THROTTLES_IN_A_ROW, math.ceil(self.settings.max_throttle_wait_s / THROTTLE_FLOOR_S))
        if self.pace.waited_s > self.settings.max_throttle_wait_s or self.throttles_in_a_row > allowed:
            self.halt(
                RunStopped(
                    f"the API kept answering 429 (too many requests): {self.throttles_in_a_row} in a row, "
                    f"{self.pace.waited_s:.0f} s of waiting, more than --max-throttle-wait "
                    f"{self.settings.max_throttle_wait_s:g} allows. Another program may be using the same API key; "
                    "re-run with --resume later, or with a lower --rate."
                )
            )

    def _take_quota(self) -> bool:
        if self.quota is None:
            return True
        try:
            allowed = self.quota.take()
        except BatcherError as exc:
            self.halt(exc if isinstance(exc, RunStopped) else RunStopped(str(exc)))
            return False
        if not allowed:
            self.halt(
                QuotaError(
                    f"batcher has counted {self.quota.daily_quota} requests today (UTC) for this API key, the "
                    "--daily-quota; the API's daily count resets at 00:00 UTC. Re-run with --resume after that."
                )
            )
        return allowed

    async def refresh(self, generation: int) -> bool:
        """Refresh the access token once for all callers that saw it rejected; False if the run stops."""
        async with self.refresh_lock:
            if self.credentials.generation != generation:
                return True  # another caller refreshed it meanwhile
            last = ""
            for attempt in range(TOKEN_ENDPOINT_ATTEMPTS):
                if attempt and not _testing:
                    await sleep_unless_stopped(TOKEN_ENDPOINT_SPACING_S, self.stop)
                outcome = await self._call_token_endpoint()
                if outcome is None:
                    return True
                if isinstance(outcome, AuthError):
                    self.halt(outcome)
                    return False
                last = outcome
            self.halt(
                AuthError(
                    f"the token endpoint {self.credentials.token_url} did not answer ({last}); "
                    "try again later with --resume"
                )
            )
            return False

    async def _call_token_endpoint(self) -> AuthError | str | None:
        """None when the token was refreshed, an AuthError when refused, a text when worth retrying."""
        call = self.credentials.refresh_request()  # not counted: the token endpoint is not the API's rate or quota
        try:
            async with self.session.post(
                call.url,
                data=call.form,
                headers=call.headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
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
            return f"no answer within {self.settings.timeout_s:g} s"
        except aiohttp.ClientConnectorCertificateError as exc:
            failure = api.certificate_failure(_origin(call.url), str(exc.certificate_error))
            return AuthError(f"the token endpoint: {failure.error}; batcher stops rather than send it a token")
        except aiohttp.ClientError as exc:
            return redaction.redact(str(exc) or type(exc).__name__)

    async def _request_once(self, method: str, url: str, params: Mapping[str, str], body: bytes | None) -> Answer:
        headers = {**self.credentials.authorization()}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self.session.request(
                method,
                url,
                params=params,
                data=body,
                headers=headers,
                allow_redirects=False,  # a redirect would carry the body and the token elsewhere
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
            ) as response:
                try:
                    content = await read_body(response)
                except BodyTooLarge:
                    return Answer(
                        Verdict.FAIL_BATCH,
                        response.status,
                        f"HTTP {response.status} with an answer larger than {MAX_RESPONSE_BYTES} bytes; not read",
                    )
                return api.interpret(response.status, response.headers, content, url=url)
        except TimeoutError:
            return Answer(Verdict.RETRY, None, f"no answer within {self.settings.timeout_s:g} s")
        except aiohttp.ClientConnectorCertificateError as exc:  # no retry can mend a certificate
            return api.certificate_failure(_origin(url), str(exc.certificate_error))
        except aiohttp.ClientError as exc:
            text = redaction.redact(str(exc) or type(exc).__name__)
            return Answer(Verdict.RETRY, None, f"connection failed: {text}")


def _origin(url: str) -> str:
    """scheme://host:port of url: what a certificate is for."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _rejected_token(answer: Answer, *, refreshed: bool) -> AuthError:
    if refreshed:
        return AuthError(
            f"the API rejected the access token even after a refresh ({answer.error}). Check that the token "
            "belongs to this account and API key, then re-run with --resume."
        )
    return AuthError(
        f"the API rejected the access token ({answer.error}). Get a new access token and set CTCT_ACCESS_TOKEN, "
        "or set CTCT_REFRESH_TOKEN and CTCT_CLIENT_ID (or use --token-file) so batcher can refresh it; "
        "then re-run with --resume."
    )
