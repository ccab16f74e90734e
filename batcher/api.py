"""The update-registration-status endpoint in pure code: request shape and response verdicts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from urllib.parse import quote

from batcher.models import Batch, QueryFlags

MAX_ERROR_BODY_CHARS = 200


class Verdict(Enum):
    """What the sender should do with an answer."""

    OK = "ok"  # 200: every id applied
    PARTIAL = "partial"  # 207: the listed ids failed, the rest applied
    RETRY = "retry"  # transient: send the same batch again
    THROTTLED = "throttled"  # 429 per-second limit: wait, then send again
    FAIL_BATCH = "fail_batch"  # this batch failed; the run goes on
    FAIL_GROUP = "fail_group"  # the event or track is unknown: no batch of this group can succeed
    REFRESH = "refresh"  # 401: the token may be refreshed and the batch resent
    STOP_RUN = "stop_run"  # nothing more can succeed: 403, quota used up


@dataclass(frozen=True, slots=True)
class Answer:
    """The verdict on one HTTP answer."""

    verdict: Verdict
    http_status: int | None
    error: str = ""
    failed_ids: frozenset[str] = field(default_factory=frozenset)
    wait_s: float | None = None  # from Retry-After
    error_key: str = ""


@dataclass(frozen=True, slots=True)
class Request:
    """Everything needed to send one batch, without the token."""

    url: str
    params: dict[str, str]
    body: bytes


def registrations_url(base_url: str, event_id: str, track_id: str) -> str:
    """The PUT URL; path parameters are percent-encoded so no value can change the path."""
    return f"{base_url.rstrip('/')}/events/{quote(event_id, safe='')}/tracks/{quote(track_id, safe='')}/registrations"


def query_params(flags: QueryFlags) -> dict[str, str]:
    """Only the flags the user gave; the server's defaults apply to the rest."""
    given = {
        "increase_count": flags.increase_count,
        "increase_item_count": flags.increase_item_count,
        "return_items_to_inventory": flags.return_items_to_inventory,
    }
    return {name: "true" if value else "false" for name, value in given.items() if value is not None}


def build_request(base_url: str, batch: Batch, flags: QueryFlags, *, ids: tuple[str, ...] | None = None) -> Request:
    """The URL, query and JSON body for a batch, or for some of its ids."""
    chosen = batch.registration_ids if ids is None else ids
    body = {"registration_ids": list(chosen), "registration_status": batch.registration_status}
    return Request(
        url=registrations_url(base_url, batch.event_id, batch.track_id),
        params=query_params(flags),
        body=json.dumps(body, separators=(",", ":")).encode(),
    )


def is_retryable(status: int) -> bool:
    """Statuses worth sending the same idempotent request again for."""
    return status >= 500 or status in (408, 425)


def interpret(status: int, headers: Mapping[str, str], body: bytes) -> Answer:
    """Turn one (status, headers, body) answer into a verdict."""
    if status == 200:
        return Answer(Verdict.OK, status)
    if status == 207:
        return _interpret_207(body)
    errors, key = describe_error_body(body)
    text = f"HTTP {status}" + (f": {errors}" if errors else "")
    if status == 429:
        wait_s = parse_retry_after(headers.get("Retry-After"))
        if key == "quota_exceeded":
            return Answer(Verdict.STOP_RUN, status, text, wait_s=wait_s, error_key=key)
        return Answer(Verdict.THROTTLED, status, text, wait_s=wait_s, error_key=key or "throttled")
    if status == 401:
        return Answer(Verdict.REFRESH, status, text, error_key=key)
    if status == 403:
        return Answer(Verdict.STOP_RUN, status, text, error_key=key)
    if status == 404:
        return Answer(Verdict.FAIL_GROUP, status, text, error_key=key)
    if is_retryable(status):
        return Answer(Verdict.RETRY, status, text, wait_s=parse_retry_after(headers.get("Retry-After")))
    return Answer(Verdict.FAIL_BATCH, status, text, error_key=key)


def _interpret_207(body: bytes) -> Answer:
    # a 207 lists only the failures; every other id in the batch succeeded
    try:
        data = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return Answer(Verdict.RETRY, 207, "HTTP 207 with a body that is not JSON: " + _cut(body))
    failed = data.get("failed_registration_ids") if isinstance(data, dict) else None
    if failed is None:
        return Answer(Verdict.PARTIAL, 207)
    if not isinstance(failed, list) or not all(isinstance(item, str) for item in failed):
        return Answer(Verdict.RETRY, 207, "HTTP 207 whose failed_registration_ids is not a list of strings")
    return Answer(Verdict.PARTIAL, 207, failed_ids=frozenset(item.lower() for item in failed))


def describe_error_body(body: bytes) -> tuple[str, str]:
    """The API's error messages joined for a person, and the first error_key; never raises."""
    if not body.strip():
        return "", ""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _cut(body), ""
    items = data if isinstance(data, list) else [data]
    messages: list[str] = []
    keys: list[str] = []
    for item in items:
        if isinstance(item, dict):
            message = item.get("error_message")
            key = item.get("error_key")
            if isinstance(message, str) and message:
                messages.append(message)
            if isinstance(key, str) and key:
                keys.append(key)
    text = "; ".join(messages) if messages else _cut(body)
    return _cut(text.encode()), keys[0] if keys else ""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None

    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _cut(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    text = " ".join(text.split())
    if len(text) > MAX_ERROR_BODY_CHARS:
        return text[: MAX_ERROR_BODY_CHARS - 1] + "…"
    return text
