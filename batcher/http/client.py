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

import aiohttp

from batcher.errors import AuthError, BatcherError, QuotaError, RunStopped
from batcher.http import api
from batcher.http.api import Answer, Verdict
from batcher.http.auth import Credentials
from batcher.http.pace_record import PaceRecord
from batcher.http.pacing import RECOVERY_S, Pace, is_testing, sleep_unless_stopped
from batcher.http.quota import QuotaLedger
from batcher.http.token import TokenEndpoint
from batcher.http.transport import MAX_RESPONSE_BYTES, USER_AGENT, BodyTooLarge, read_body
from batcher.models import WireStats
from batcher.settings import PACING_MARGIN, Settings
from batcher.support import hints, redaction
from batcher.support.logs import get_logger
from batcher.support.words import plural

MAX_REFRESHES_PER_CALL = 3
# the waits before a resend (full jitter), and after a 429 without a usable Retry-After; pacing.set_testing turns
# every wait off (the one testing switch)
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 60.0
THROTTLE_FLOOR_S = 1.0  # each 429 in a row counts at least this much against --max-throttle-wait
MIN_THROTTLES_IN_A_ROW = 3

log = get_logger()


class QuotaGate(Protocol):
    """Counts each request against the daily quota; False means none may be sent today."""

    daily_quota: int

    def take(self) -> bool: ...

    def give_back(self) -> None:
        """Uncount the last request taken: it never reached the API (its connection could not be made)."""
        ...


@dataclass(frozen=True, slots=True)
class Reply:
    """The final answer to one call, and how many requests it took; answer is None if the run stopped."""

    answer: Answer | None
    attempts: int


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
        # a client counting in a state folder's ledger shares that folder's pace with every process on the key
        self.shared_pace = PaceRecord(quota.path.parent) if isinstance(quota, QuotaLedger) else None
        self.pace = Pace(settings.pacing_interval_s, self.stop, shared=self.shared_pace)
        self.in_flight = asyncio.Semaphore(settings.concurrency)
        self.tokens = TokenEndpoint(credentials, settings.timeout_s, self.stop)
        self.early_refreshed: set[int] = set()  # generations refreshed because their expiry was near
        self.accepted_generations: set[int] = set()
        self.throttles_in_a_row = 0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        connector = aiohttp.TCPConnector(limit=self.settings.concurrency + 1)
        # the API counts a request when it arrives, not when its start was given: the pace hears when it left
        went_out = aiohttp.TraceConfig()
        went_out.on_request_headers_sent.append(self._went_out)
        self._session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": USER_AGENT}, raise_for_status=False, trace_configs=[went_out]
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.shared_pace is not None:
            self.shared_pace.close()

    async def _went_out(
        self, session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestHeadersSentParams
    ) -> None:
        if str(params.url).startswith(self.settings.base_url):  # the token endpoint is not paced
            self.pace.went_out()

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
        times after the first attempt, waiting uniform(0, min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2**n))
        seconds before retry n+1 (exponential backoff with full jitter), or a usable Retry-After.
        429 throttled waits (Retry-After, else backoff) without using up retries, until --max-throttle-wait
        is spent; 401 refreshes the token (once for all callers) and resends, unless the token was already a
        refreshed one that never got a request through. A STOP_RUN answer halts the run (answer None).
        label names the request in log lines ("batch 12"); log_fields are added to them (e.g. {"batch": 12}).
        """
        if not self.credentials.has_access_token and not await self.refresh(self.credentials.generation):
            return Reply(None, 0)
        if self.credentials.expires_soon() and not await self._renew_early():
            return Reply(None, 0)
        attempts = 0
        refreshes = 0
        unreached = 0  # attempts whose connection could not be made: they never reached the API
        while True:
            # only a request on the wire holds a place: a call waiting out its backoff lets others go
            async with self.in_flight:
                sent_at = await self.pace.slot()
                if sent_at is None or self.stop.is_set() or not self._take_quota():
                    return Reply(None, attempts)
                generation = self.credentials.generation
                attempts += 1
                self.stats.count(asyncio.get_running_loop().time())
                answer, reached = await self._request_once(method, url, params or {}, body)
            if not reached:
                unreached += 1
                if self.quota is not None:
                    self.quota.give_back()
            verdict = answer.verdict
            if verdict is Verdict.THROTTLED:
                self._throttled(answer, sent_at)
                continue
            self.throttles_in_a_row = 0
            if verdict is Verdict.REFRESH:
                refreshes += 1
                if self._is_hopeless(generation, refreshes):
                    self.halt(_rejected_token(answer, refreshed=generation > 0, credentials=self.credentials))
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
            if attempts > self.settings.max_retries and unreached == attempts:
                self.halt(_unreachable(self.settings.base_url, attempts, answer))
                return Reply(None, attempts)
            if attempts > self.settings.max_retries:
                error = f"gave up after {plural(attempts, 'attempt')}: {answer.error}"
                return Reply(Answer(Verdict.FAIL_BATCH, answer.http_status, error), attempts)
            delay_s = self.backoff_s(attempts, answer.wait_s)
            fields = {**(log_fields or {}), "attempts": attempts}
            log.info("%s: %s; resending in %.1f s", label, answer.error, delay_s, extra=fields)
            await sleep_unless_stopped(delay_s, self.stop)

    def backoff_s(self, attempts: int, retry_after_s: float | None) -> float:
        """Retry-After when usable (capped at BACKOFF_MAX_S), else full-jitter exponential backoff."""
        if is_testing():
            return 0.0
        if retry_after_s is not None:
            return min(retry_after_s, BACKOFF_MAX_S)
        ceiling = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (attempts - 1))
        return random.uniform(0, ceiling)

    def _is_hopeless(self, generation: int, refreshes: int) -> bool:
        """True when a 401 on this token cannot be mended by a refresh."""
        if generation != self.credentials.generation:
            return False  # another caller already refreshed it: just resend
        if not self.credentials.can_refresh:
            return True
        # a refreshed token rejected before any request got through with it is not a token that expired
        return (generation > 0 and generation not in self.accepted_generations) or refreshes > MAX_REFRESHES_PER_CALL

    def _throttled(self, answer: Answer, sent_at: float) -> None:
        """Push every caller back, and slow the pace once per congestion event; stop once 429s cost more than the
        allowed wait."""
        self.throttles_in_a_row += 1
        if is_testing():
            wait_s = 0.0
        elif answer.wait_s is not None:
            wait_s = answer.wait_s
        else:
            ceiling = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2**self.throttles_in_a_row)
            wait_s = random.uniform(ceiling / 2, ceiling)
        if self.pace.throttled(sent_at, wait_s):
            log.warning(
                "429 too many requests: pausing %.1f s, then %.2f requests/s, back to %.2f within %.0f s",
                wait_s,
                self.settings.rate_per_s * PACING_MARGIN / self.pace.schedule.slowdown,
                self.settings.rate_per_s * PACING_MARGIN,
                RECOVERY_S,
            )
        else:
            log.info("429 too many requests from the same burst: pausing %.1f s, no further slowdown", wait_s)
        # a wait of nothing must still bring the stop: 429s in a row count at least THROTTLE_FLOOR_S each
        allowed = max(MIN_THROTTLES_IN_A_ROW, math.ceil(self.settings.max_throttle_wait_s / THROTTLE_FLOOR_S))
        if self.pace.waited_s > self.settings.max_throttle_wait_s or self.throttles_in_a_row > allowed:
            self.halt(
                RunStopped(
                    f"the API kept answering 429 (too many requests): {self.throttles_in_a_row} in a row, "
                    f"{self.pace.waited_s:.0f} s of waiting, more than --max-throttle-wait "
                    f"{self.settings.max_throttle_wait_s:g} allows. Another program may be using the same API key; "
                    f"{hints.rerun()} later, or with a lower --rate."
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
                    f"batcher has counted {plural(self.quota.daily_quota, 'request')} today (UTC) for this API key, "
                    "the "
                    f"--daily-quota; the API's daily count resets at 00:00 UTC. "
                    f"{hints.rerun().capitalize()} after that."
                )
            )
        return allowed

    async def _renew_early(self) -> bool:
        """Refresh a token near its known expiry, once per token; False if the run stops.

        A refresh that fails while the token still works is said and the run goes on with it: the 401 at its
        expiry tries once more, and only that failure stops the run.
        """
        generation = self.credentials.generation
        if generation in self.early_refreshed:
            return True
        self.early_refreshed.add(generation)
        error = await self.tokens.refresh(self.session, generation)
        if error is None:
            return True
        if self.credentials.expires_soon(margin_s=0):
            self.halt(error)
            return False
        log.warning("could not renew the access token before it expires (%s); going on with it", error)
        return True

    async def refresh(self, generation: int) -> bool:
        """Refresh the access token once for all callers that saw it rejected; False if the run stops."""
        error = await self.tokens.refresh(self.session, generation)
        if error is not None:
            self.halt(error)
            return False
        return True

    async def _request_once(
        self, method: str, url: str, params: Mapping[str, str], body: bytes | None
    ) -> tuple[Answer, bool]:
        """The answer, and whether the request reached the API (False: its connection could not be made)."""
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
                    ), True
                return api.interpret(response.status, response.headers, content, url=url), True
        except TimeoutError:
            return Answer(Verdict.RETRY, None, f"no answer within {self.settings.timeout_s:g} s"), True
        except aiohttp.ClientConnectorCertificateError as exc:  # no retry can mend a certificate
            return api.certificate_failure(url, str(exc.certificate_error)), True
        except aiohttp.ClientConnectorError as exc:  # refused, no route, no such host: nothing reached the API
            text = redaction.redact(str(exc) or type(exc).__name__)
            return Answer(Verdict.RETRY, None, f"connection failed: {text}"), False
        except aiohttp.ClientError as exc:
            text = redaction.redact(str(exc) or type(exc).__name__)
            return Answer(Verdict.RETRY, None, f"connection failed: {text}"), True


def _unreachable(base_url: str, attempts: int, answer: Answer) -> RunStopped:
    return RunStopped(
        f"the API at {redaction.redact(base_url)} cannot be reached: {plural(attempts, 'attempt')}, none connected "
        f"({answer.error}). Nothing more is sent and the rest stays pending; check the network or --base-url, "
        f"then {hints.rerun()}."
    )


def _rejected_token(answer: Answer, *, refreshed: bool, credentials: Credentials) -> AuthError:
    relogin = credentials.relogin
    if credentials.hides_login:
        return AuthError(
            f"the API rejected the access token from the environment ({answer.error}); CTCT_ACCESS_TOKEN (or "
            "CTCT_REFRESH_TOKEN) is set, so the profile's saved login is not used. Run 'unset CTCT_ACCESS_TOKEN "
            f"CTCT_REFRESH_TOKEN' to use the login, then {hints.rerun()}."
        )
    if relogin:
        return AuthError(
            f"the API rejected the access token of the login ({answer.error}). Log in again ({relogin}), "
            f"then {hints.rerun()}."
        )
    if refreshed:
        return AuthError(
            f"the API rejected the access token even after a refresh ({answer.error}). Check that the token "
            f"belongs to this account and API key, then {hints.rerun()}."
        )
    return AuthError(
        f"the API rejected the access token ({answer.error}). Get a new access token and set CTCT_ACCESS_TOKEN, "
        "or set CTCT_REFRESH_TOKEN and CTCT_CLIENT_ID (or use --token-file) so batcher can refresh it; "
        f"then {hints.rerun()}."
    )
