"""Sends batches over HTTP: one session and one pace per run, bounded concurrency, retries, token refresh.

Knows nothing of CSV files or printing; every answer becomes a BatchResult.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import aiohttp

from batcher import api
from batcher.api import Answer, Verdict
from batcher.auth import Credentials
from batcher.errors import AuthError, BatcherError, QuotaError, RunStopped
from batcher.logs import get_logger
from batcher.models import Batch, BatchResult
from batcher.pacing import Pace, sleep_unless_stopped
from batcher.settings import PACING_MARGIN, Settings

MAX_RESPONSE_BYTES = 1 << 20
USER_AGENT = "batcher/0.1 (bulk registration status updates)"
TOKEN_ENDPOINT_ATTEMPTS = 3
MAX_REFRESHES_PER_BATCH = 3
WORKERS_PER_PLACE = 2
TOKEN_ENDPOINT_SPACING_S = 1.0  # the token endpoint allows about one call per second

ResultCallback = Callable[[BatchResult], None]
log = get_logger()


class QuotaGate(Protocol):
    """Counts each request against the daily quota; False means none may be sent today."""

    daily_quota: int

    def take(self) -> bool: ...


@dataclass
class _Tally:
    """What the requests of one batch did so far."""

    attempts: int = 0
    answers: int = 0  # answers that settled ids (applied, partial or failed)
    split: bool = False
    last: Answer | None = None
    failed_207: set[str] = field(default_factory=set)
    id_errors: dict[str, tuple[int | None, str]] = field(default_factory=dict)
    unsent: set[str] = field(default_factory=set)


class _Sender:
    """The state of one run's sending: shared by its workers, alive for one event loop."""

    def __init__(
        self,
        batches: Sequence[Batch],
        settings: Settings,
        credentials: Credentials,
        session: aiohttp.ClientSession,
        on_result: ResultCallback,
        stop: asyncio.Event,
        quota: QuotaGate | None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.session = session
        self.on_result = on_result
        self.stop = stop
        self.quota = quota
        self.stopped: RunStopped | None = None
        self.pace = Pace(settings.pacing_interval_s, stop)
        self.refresh_lock = asyncio.Lock()
        self.in_flight = asyncio.Semaphore(settings.concurrency)
        self.accepted_generations: set[int] = set()
        self.throttles_in_a_row = 0
        self.queue: asyncio.PriorityQueue[tuple[float, int, Batch | None]] = asyncio.PriorityQueue()
        self.results: dict[int, BatchResult] = {}
        self.remaining = len(batches)
        self.held_back: dict[int, list[Batch]] = {}
        # each group's first batch goes alone: an unknown event or track then costs one request
        for batch in batches:
            if batch.group in self.held_back:
                self.held_back[batch.group].append(batch)
            else:
                self.held_back[batch.group] = []
                self.queue.put_nowait((batch.number, batch.number, batch))

    async def work(self) -> None:
        while True:
            _, _, batch = await self.queue.get()
            if batch is None or self.stop.is_set():
                return
            result = await self.send(batch)
            if result is not None:
                self.finish(batch, result)

    def finish(self, batch: Batch, result: BatchResult) -> None:
        self.record(result)
        rest = self.held_back.pop(batch.group, [])
        group_unknown = result.http_status == 404 and bool(result.error)
        for later in rest:
            if group_unknown:
                self.record(
                    BatchResult(
                        later.number,
                        result.http_status,
                        attempts=0,
                        error=f"not sent: batch {batch.number} of this event and track got {result.error}",
                    )
                )
            else:
                self.queue.put_nowait((later.number, later.number, later))

    def record(self, result: BatchResult) -> None:
        try:
            self.on_result(result)
        except RunStopped as exc:  # the journal could not be written: stop before anything else is lost
            self.halt(exc)
            return
        self.results[result.batch] = result
        self.remaining -= 1
        if self.remaining == 0:
            self.release_workers()

    @property
    def worker_count(self) -> int:
        """Workers beyond --concurrency keep requests flowing while some batches wait out a backoff."""
        return self.settings.concurrency * WORKERS_PER_PLACE

    def release_workers(self) -> None:
        for _ in range(self.worker_count):
            self.queue.put_nowait((math.inf, 0, None))

    def halt(self, error: RunStopped) -> None:
        if self.stopped is None:
            self.stopped = error
        self.stop.set()
        self.release_workers()

    async def send(self, batch: Batch) -> BatchResult | None:
        """Send one batch until every id has a final answer; None if the run stopped before any did."""
        started = asyncio.get_running_loop().time()
        tally = _Tally()
        await self.deliver(batch, batch.registration_ids, tally)
        if tally.answers == 0:
            return None
        return replace(_summarize(batch, tally), duration_s=asyncio.get_running_loop().time() - started)

    async def deliver(self, batch: Batch, ids: tuple[str, ...], tally: _Tally) -> None:
        """Send ids of batch; a 400 on several ids is bisected so only the offending ids fail.

        One bad id in n costs at most 2*ceil(log2(n)) extra requests.
        """
        answer = await self.exchange(batch, ids, tally)
        if answer is None:
            tally.unsent.update(ids)
            return
        if answer.verdict is Verdict.FAIL_BATCH and answer.http_status == 400 and len(ids) > 1:
            tally.split = True
            middle = (len(ids) + 1) // 2
            await self.deliver(batch, ids[:middle], tally)
            await self.deliver(batch, ids[middle:], tally)
            return
        tally.answers += 1
        tally.last = answer
        if answer.verdict is Verdict.PARTIAL:
            # an id the API lists that was not sent says nothing about this batch's rows
            tally.failed_207.update(answer.failed_ids.intersection(ids))
        elif answer.verdict is not Verdict.OK:
            error = answer.error if not tally.split else f"{answer.error} (sent alone: {len(ids)} id(s))"
            tally.id_errors.update(dict.fromkeys(ids, (answer.http_status, error)))

    async def exchange(self, batch: Batch, ids: tuple[str, ...], tally: _Tally) -> Answer | None:
        """One request for ids, resent as needed, until a final answer; None if the run stopped.

        Retries 5xx, timeouts, dropped connections and unreadable answers up to settings.max_retries
        times after the first attempt, waiting uniform(0, min(backoff_max_s, backoff_initial_s * 2**n))
        seconds before retry n+1 (exponential backoff with full jitter), or Retry-After when given.
        429 throttled waits (Retry-After, else backoff) without using up retries; 401 refreshes the
        token (once for all workers) and resends, unless the token was already a refreshed one that
        never got a request through.
        """
        request = api.build_request(self.settings.base_url, batch, self.settings.flags, ids=ids)
        attempts = 0
        refreshes = 0
        while True:
            # only a request on the wire holds a place: a batch waiting out its backoff lets others go
            async with self.in_flight:
                if not await self.pace.slot() or not self.take_quota():
                    return None
                generation = self.credentials.generation
                attempts += 1
                tally.attempts += 1
                answer = await self.request_once(request)
            verdict = answer.verdict
            if verdict is Verdict.THROTTLED:
                self.throttled(answer)
                continue
            self.throttles_in_a_row = 0
            self.pace.answered()
            if verdict in (Verdict.OK, Verdict.PARTIAL, Verdict.FAIL_BATCH, Verdict.FAIL_GROUP):
                self.accepted_generations.add(generation)
                return answer
            if verdict is Verdict.REFRESH:
                refreshes += 1
                if self.is_hopeless(generation, refreshes):
                    self.halt(_rejected_token(answer, refreshed=generation > 0))
                    return None
                if not await self.refresh(generation):
                    return None
                continue
            if verdict is Verdict.STOP_RUN:
                self.halt(_stop_error(answer))
                return None
            if attempts > self.settings.max_retries:
                return Answer(
                    Verdict.FAIL_BATCH, answer.http_status, f"gave up after {attempts} attempts: {answer.error}"
                )
            delay_s = self.backoff_s(attempts, answer.wait_s)
            log.info(
                "batch %d: %s; resending in %.1f s",
                batch.number,
                answer.error,
                delay_s,
                extra={"batch": batch.number, "attempts": attempts},
            )
            await sleep_unless_stopped(delay_s, self.stop)

    def is_hopeless(self, generation: int, refreshes: int) -> bool:
        """True when a 401 on this token cannot be mended by a refresh."""
        if generation != self.credentials.generation:
            return False  # another worker already refreshed it: just resend
        if not self.credentials.can_refresh:
            return True
        # a refreshed token rejected before any request got through with it is not a token that expired
        return (generation > 0 and generation not in self.accepted_generations) or refreshes > MAX_REFRESHES_PER_BATCH

    def backoff_s(self, attempts: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, self.settings.backoff_max_s)
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_initial_s * 2 ** (attempts - 1))
        return random.uniform(0, ceiling)

    def throttled(self, answer: Answer) -> None:
        """Push every worker back and slow the pace; stop once 429s cost more than the allowed wait."""
        self.throttles_in_a_row += 1
        if answer.wait_s is not None:
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
        if self.pace.waited_s > self.settings.max_throttle_wait_s:
            self.halt(
                RunStopped(
                    f"the API kept answering 429 (too many requests) for {self.pace.waited_s:.0f} s of waiting, "
                    f"more than --max-throttle-wait {self.settings.max_throttle_wait_s:g}. Another program may be "
                    "using the same API key; re-run with --resume later, or with a lower --rate."
                )
            )

    def take_quota(self) -> bool:
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
        """Refresh the access token once for all workers that saw it rejected; False if the run stops."""
        async with self.refresh_lock:
            if self.credentials.generation != generation:
                return True  # another worker refreshed it meanwhile
            last = ""
            for attempt in range(TOKEN_ENDPOINT_ATTEMPTS):
                if attempt:
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
        call = self.credentials.refresh_request()
        try:
            async with self.session.post(
                call.url,
                data=call.form,
                headers=call.headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
            ) as response:
                body = await response.content.read(MAX_RESPONSE_BYTES)
                if response.status >= 500 or response.status == 429:
                    return f"HTTP {response.status}"
                try:
                    self.credentials.accept_refresh(response.status, body)
                except AuthError as exc:
                    return exc
                log.info("the access token was refreshed")
                return None
        except TimeoutError:
            return f"no answer within {self.settings.timeout_s:g} s"
        except aiohttp.ClientError as exc:
            return self.credentials.redact(str(exc) or type(exc).__name__)

    async def request_once(self, request: api.Request) -> Answer:
        headers = {**self.credentials.authorization(), "Content-Type": "application/json"}
        try:
            async with self.session.put(
                request.url,
                params=request.params,
                data=request.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
            ) as response:
                body = await response.content.read(MAX_RESPONSE_BYTES)
                return api.interpret(response.status, response.headers, body)
        except TimeoutError:
            return Answer(Verdict.RETRY, None, f"no answer within {self.settings.timeout_s:g} s")
        except aiohttp.ClientError as exc:
            text = self.credentials.redact(str(exc) or type(exc).__name__)
            return Answer(Verdict.RETRY, None, f"connection failed: {text}")


def _summarize(batch: Batch, tally: _Tally) -> BatchResult:
    """One BatchResult from everything the batch's requests were answered."""
    if not tally.split and tally.last is not None:
        answer = tally.last
        if answer.verdict is Verdict.OK:
            return BatchResult(batch.number, answer.http_status, attempts=tally.attempts)
        if answer.verdict is Verdict.PARTIAL:
            return BatchResult(batch.number, answer.http_status, frozenset(tally.failed_207), attempts=tally.attempts)
        return BatchResult(batch.number, answer.http_status, attempts=tally.attempts, error=answer.error)
    failed = bool(tally.failed_207 or tally.id_errors or tally.unsent)
    return BatchResult(
        batch.number,
        207 if failed else 200,
        frozenset(tally.failed_207),
        attempts=tally.attempts,
        id_errors=tally.id_errors,
        unsent_ids=frozenset(tally.unsent),
    )


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


def _stop_error(answer: Answer) -> RunStopped:
    if answer.error_key == "quota_exceeded":
        return QuotaError(
            f"the API key's daily request quota is used up ({answer.error}). It resets at 00:00 UTC; "
            "re-run with --resume after that."
        )
    if answer.http_status == 403:
        return AuthError(
            f"the API refused the request ({answer.error}). The token needs the scope campaign_data and the "
            "user needs the privilege campaign:write; fix that, then re-run with --resume."
        )
    return RunStopped(answer.error)


async def _release_when_stopped(sender: _Sender) -> None:
    await sender.stop.wait()
    sender.release_workers()


async def send_batches(
    batches: Sequence[Batch],
    settings: Settings,
    credentials: Credentials,
    *,
    on_result: ResultCallback,
    stop: asyncio.Event | None = None,
    quota: QuotaGate | None = None,
) -> list[BatchResult]:
    """Send every batch, at most settings.concurrency at once, paced to settings.rate_per_s.

    Results come back in batch order. A batch without a result was not applied.

    Raises:
        RunStopped: no further request can succeed (401 without refresh, 403, quota, journal lost).
    """
    if not batches:
        return []
    stop_event = stop if stop is not None else asyncio.Event()
    connector = aiohttp.TCPConnector(limit=settings.concurrency + 1)
    async with aiohttp.ClientSession(
        connector=connector, headers={"User-Agent": USER_AGENT}, raise_for_status=False
    ) as session:
        sender = _Sender(batches, settings, credentials, session, on_result, stop_event, quota)
        if not credentials.has_access_token:
            await sender.refresh(credentials.generation)
        workers = [asyncio.create_task(sender.work()) for _ in range(sender.worker_count)]
        waiter = asyncio.create_task(_release_when_stopped(sender))
        try:
            await asyncio.gather(*workers)
        finally:
            waiter.cancel()
            for worker in workers:
                worker.cancel()
    if sender.stopped is not None:
        raise sender.stopped
    return [sender.results[number] for number in sorted(sender.results)]
