"""Sends batches as PUTs through the run's ApiClient: first batch of a group alone, 400s bisected, 207s read.

Knows nothing of CSV files or printing; every answer becomes a BatchResult.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from batcher.errors import JournalError
from batcher.http import api
from batcher.http.api import Answer, Verdict
from batcher.http.client import ApiClient
from batcher.models import Batch, BatchResult
from batcher.settings import Settings

WORKERS_PER_PLACE = 2

ResultCallback = Callable[[BatchResult], None]
__all__ = ["ResultCallback", "send_batches"]


@dataclass
class _Tally:
    """What the requests of one batch did so far."""

    attempts: int = 0
    answers: int = 0  # answers that settled ids (applied, partial or failed)
    split: bool = False
    last: Answer | None = None
    applied: list[Answer] = field(default_factory=list)  # the answers that applied ids
    failed_207: set[str] = field(default_factory=set)
    id_errors: dict[str, tuple[int | None, str]] = field(default_factory=dict)
    unsent: set[str] = field(default_factory=set)


class _Sender:
    """The batch logic of one run's sending, shared by its workers, on top of the run's ApiClient."""

    def __init__(
        self, batches: Sequence[Batch], settings: Settings, client: ApiClient, on_result: ResultCallback
    ) -> None:
        self.settings = settings
        self.client = client
        self.on_result = on_result
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
            if batch is None or self.client.stop.is_set():
                return
            result = await self.send(batch)
            if result is not None:
                self.finish(batch, result)

    def finish(self, batch: Batch, result: BatchResult) -> None:
        self.record(result)
        for later in self.held_back.pop(batch.group, []):
            if result.group_failed:
                error = f"not sent: batch {batch.number} of this event and track got {result.error}"
                self.record(BatchResult(later.number, result.http_status, attempts=0, error=error, group_failed=True))
            else:
                self.queue.put_nowait((later.number, later.number, later))

    def record(self, result: BatchResult) -> None:
        try:
            self.on_result(result)
        except JournalError as exc:  # the journal could not be written: stop before anything else is lost
            self.client.halt(exc)
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

    async def send(self, batch: Batch) -> BatchResult | None:
        """Send one batch until every id has a final answer; None if the run stopped before any did."""
        started = asyncio.get_running_loop().time()
        refused = api.unsendable(batch)
        if refused:  # never on the wire: a status outside the API's enum (from a read, for undo) is not sent
            return BatchResult(batch.number, None, attempts=0, error=refused)
        tally = _Tally()
        await self.deliver(batch, batch.registration_ids, tally)
        if tally.answers == 0:
            return None
        return replace(_summarize(batch, tally), duration_s=asyncio.get_running_loop().time() - started)

    async def deliver(self, batch: Batch, ids: tuple[str, ...], tally: _Tally) -> None:
        """Send ids of batch; an answer that says bisect (a 400 on several ids) sends each half alone, so only the
        offending ids fail.

        One bad id in n costs at most 2*ceil(log2(n)) extra requests.
        """
        request = api.build_request(self.settings.base_url, batch, self.settings.flags, ids=ids)
        reply = await self.client.call(
            "PUT",
            request.url,
            params=request.params,
            body=request.body,
            label=f"batch {batch.number}",
            log_fields={"batch": batch.number},
        )
        tally.attempts += reply.attempts
        answer = reply.answer
        if answer is None:
            tally.unsent.update(ids)
            return
        answer = api.partial_for(answer, ids)  # a 207 naming none of these ids does not say what became of them
        if answer.splits(len(ids)):
            tally.split = True
            middle = (len(ids) + 1) // 2
            await self.deliver(batch, ids[:middle], tally)
            await self.deliver(batch, ids[middle:], tally)
            return
        tally.answers += 1
        tally.last = answer
        if answer.verdict is Verdict.PARTIAL:
            tally.failed_207.update(answer.failed_ids)
        if answer.verdict.applied:
            tally.applied.append(answer)
        else:
            error = answer.error if not tally.split else f"{answer.error} (sent alone: {len(ids)} id(s))"
            tally.id_errors.update(dict.fromkeys(ids, (answer.http_status, error)))


def _summarize(batch: Batch, tally: _Tally) -> BatchResult:
    """One BatchResult from everything the batch's requests were answered."""
    if not tally.split and tally.last is not None:
        answer = tally.last
        if answer.verdict is Verdict.OK:
            return BatchResult(batch.number, answer.http_status, attempts=tally.attempts)
        if answer.verdict is Verdict.PARTIAL:
            return BatchResult(batch.number, answer.http_status, frozenset(tally.failed_207), attempts=tally.attempts)
        return BatchResult(
            batch.number,
            answer.http_status,
            attempts=tally.attempts,
            error=answer.error,
            group_failed=answer.group_failed,
        )
    # the status of the answers that applied ids (a partial one's, if any piece was partial); each failed id keeps
    # its own
    partial = [answer for answer in tally.applied if answer.verdict is Verdict.PARTIAL]
    shown = partial or sorted(tally.applied, key=lambda answer: answer.http_status or 0)
    status = shown[0].http_status if shown else tally.last.http_status if tally.last is not None else None
    return BatchResult(
        batch.number,
        status,
        frozenset(tally.failed_207),
        attempts=tally.attempts,
        id_errors=tally.id_errors,
        unsent_ids=frozenset(tally.unsent),
    )


async def _release_when_stopped(sender: _Sender) -> None:
    await sender.client.stop.wait()
    sender.release_workers()


async def send_batches(
    batches: Sequence[Batch], settings: Settings, client: ApiClient, *, on_result: ResultCallback
) -> list[BatchResult]:
    """Send every batch on client (already entered: its session, pace, quota, token, stop and request count), at
    most settings.concurrency at once. The client is the caller's: a run's session opens it (http/session.py).

    Results come back in batch order. A batch without a result was not applied.

    Raises:
        RunStopped: no further request can succeed (401 without refresh, 403, quota, a wrong base URL,
            a JournalError from on_result).
    """
    if not batches:
        return []
    return await _send_with(batches, settings, client, on_result)


async def _send_with(
    batches: Sequence[Batch], settings: Settings, client: ApiClient, on_result: ResultCallback
) -> list[BatchResult]:
    sender = _Sender(batches, settings, client, on_result)
    if client.stopped is None:
        workers = [asyncio.create_task(sender.work()) for _ in range(sender.worker_count)]
        waiter = asyncio.create_task(_release_when_stopped(sender))
        try:
            await asyncio.gather(*workers)
        finally:
            waiter.cancel()
            for worker in workers:
                worker.cancel()
    if client.stopped is not None:
        raise client.stopped
    return [sender.results[number] for number in sorted(sender.results)]
