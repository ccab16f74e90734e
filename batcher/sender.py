"""Sends batches over HTTP: one session and one rate limiter per run, bounded concurrency, retries.

Knows nothing of CSV files or printing; every answer becomes a BatchResult.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
from aiolimiter import AsyncLimiter

from batcher import api
from batcher.api import Answer, Verdict
from batcher.auth import Credentials
from batcher.errors import AuthError, QuotaError, RunStopped
from batcher.models import Batch, BatchResult
from batcher.settings import Settings

MAX_RESPONSE_BYTES = 1 << 20
USER_AGENT = "batcher (+https://github.com/batcher-cc/batcher)"

ResultCallback = Callable[[BatchResult], None]


@dataclass(frozen=True, slots=True)
class _Attempt:
    answer: Answer
    attempts: int


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
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.session = session
        self.on_result = on_result
        self.stop = stop
        self.stopped: RunStopped | None = None
        # capacity 1: requests start at least one pacing interval apart, with no burst
        self.limiter = AsyncLimiter(1, settings.pacing_interval_s)
        self.queue: asyncio.PriorityQueue[tuple[float, int, Batch | None]] = asyncio.PriorityQueue()
        self.results: dict[int, BatchResult] = {}
        self.remaining = len(batches)
        self.held_back: dict[int, list[Batch]] = {}
        self.failed_groups: dict[int, BatchResult] = {}
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
            outcome = await self.send(batch)
            if outcome is None:  # the run stopped before this batch was applied
                continue
            self.finish(batch, outcome)

    def finish(self, batch: Batch, result: BatchResult) -> None:
        self.record(result)
        rest = self.held_back.pop(batch.group, [])
        for later in rest:
            if batch.number in self.failed_groups:
                first = self.failed_groups[batch.number]
                self.record(
                    BatchResult(
                        later.number,
                        first.http_status,
                        attempts=0,
                        error=f"not sent: batch {batch.number} of this event and track got {first.error}",
                    )
                )
            else:
                self.queue.put_nowait((later.number, later.number, later))

    def record(self, result: BatchResult) -> None:
        self.results[result.batch] = result
        self.on_result(result)
        self.remaining -= 1
        if self.remaining == 0:
            self.release_workers()

    def release_workers(self) -> None:
        for _ in range(self.settings.concurrency):
            self.queue.put_nowait((math.inf, 0, None))

    def halt(self, error: RunStopped) -> None:
        if self.stopped is None:
            self.stopped = error
        self.stop.set()
        self.release_workers()

    async def send(self, batch: Batch) -> BatchResult | None:
        """Send one batch until it has a final answer; None if the run stopped first.

        Retries 5xx, timeouts, dropped connections and unreadable answers up to
        settings.max_retries times after the first attempt, waiting
        uniform(0, min(backoff_max_s, backoff_initial_s * 2**n)) seconds before retry n+1
        (exponential backoff with full jitter).
        """
        request = api.build_request(self.settings.base_url, batch, self.settings.flags)
        attempts = 0
        while True:
            async with self.limiter:
                if self.stop.is_set():
                    return None
                attempts += 1
                answer = await self.request_once(request)
            verdict = answer.verdict
            if verdict is Verdict.OK:
                return BatchResult(batch.number, answer.http_status, attempts=attempts)
            if verdict is Verdict.PARTIAL:
                return BatchResult(batch.number, answer.http_status, _known(answer.failed_ids, batch), attempts)
            if verdict is Verdict.FAIL_BATCH:
                return BatchResult(batch.number, answer.http_status, attempts=attempts, error=answer.error)
            if verdict is Verdict.FAIL_GROUP:
                result = BatchResult(batch.number, answer.http_status, attempts=attempts, error=answer.error)
                self.failed_groups[batch.number] = result
                return result
            if verdict is Verdict.REFRESH:
                self.halt(
                    AuthError(
                        f"the API rejected the access token ({answer.error}). Get a new access token, "
                        "set CTCT_ACCESS_TOKEN, and re-run with --resume."
                    )
                )
                return None
            if verdict is Verdict.STOP_RUN:
                self.halt(_stop_error(answer))
                return None
            if attempts > self.settings.max_retries:
                return BatchResult(
                    batch.number,
                    answer.http_status,
                    attempts=attempts,
                    error=f"gave up after {attempts} attempts: {answer.error}",
                )
            await asyncio.sleep(self.backoff_s(attempts, answer.wait_s))

    def backoff_s(self, attempts: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, self.settings.backoff_max_s)
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_initial_s * 2 ** (attempts - 1))
        return random.uniform(0, ceiling)

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


def _known(failed_ids: frozenset[str], batch: Batch) -> frozenset[str]:
    # an id the API lists that was not in the batch says nothing about this batch's rows
    return failed_ids & frozenset(batch.registration_ids)


def _stop_error(answer: Answer) -> RunStopped:
    if answer.http_status == 403:
        return AuthError(
            f"the API refused the request ({answer.error}). The token needs the scope campaign_data and the "
            "user needs the privilege campaign:write; fix that, then re-run with --resume."
        )
    if answer.error_key == "quota_exceeded":
        return QuotaError(
            f"the API key's daily request quota is used up ({answer.error}). It resets at 00:00 UTC; "
            "re-run with --resume after that."
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
) -> list[BatchResult]:
    """Send every batch, at most settings.concurrency at once, paced to settings.rate_per_s.

    Results come back in batch order. A batch without a result was not applied.

    Raises:
        RunStopped: the API said no further request can succeed (401, 403, quota).
    """
    if not batches:
        return []
    stop_event = stop if stop is not None else asyncio.Event()
    connector = aiohttp.TCPConnector(limit=settings.concurrency)
    async with aiohttp.ClientSession(
        connector=connector, headers={"User-Agent": USER_AGENT}, raise_for_status=False
    ) as session:
        sender = _Sender(batches, settings, credentials, session, on_result, stop_event)
        workers = [asyncio.create_task(sender.work()) for _ in range(settings.concurrency)]
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
