"""The update-registration-status endpoint in pure code: request shape and response verdicts."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from urllib.parse import quote, urlsplit

from batcher.errors import AuthError, QuotaError, RunStopped, WrongBaseUrl
from batcher.models import KNOWN_STATUSES, Batch, QueryFlags
from batcher.support import hints, redaction
from batcher.support.text import printable

MAX_ERROR_BODY_CHARS = 200
UNCONFIRMED_HINT = "not counted as changed; 'batcher verify' reads what the API has, and --resume sends it again"
HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title")


class Verdict(Enum):
    """What the sender should do with an answer."""

    OK = "ok"  # 200: every id applied
    PARTIAL = "partial"  # 207: the listed ids failed, the rest applied
    RETRY = "retry"  # transient: send the same batch again
    THROTTLED = "throttled"  # 429 per-second limit: wait, then send again
    BISECT = "bisect"  # 400: the request was refused whole; several ids are sent again in halves, one id fails
    FAIL_BATCH = "fail_batch"  # this batch failed; the run goes on
    FAIL_GROUP = "fail_group"  # the event or track is unknown: no batch of this group can succeed
    REFRESH = "refresh"  # 401: the token may be refreshed and the batch resent
    STOP_RUN = "stop_run"  # nothing more can succeed: 403, quota used up, a base URL that is not the API

    @property
    def applied(self) -> bool:
        """The answer applied ids: all of them (OK), or all but the listed ones (PARTIAL)."""
        return self in (Verdict.OK, Verdict.PARTIAL)


class Stop(Enum):
    """Why an answer stops the run; stop_error words each one."""

    QUOTA = "quota"
    PERMISSION = "permission"
    BASE_URL = "base_url"
    CERTIFICATE = "certificate"  # the server's TLS certificate failed verification


@dataclass(frozen=True, slots=True)
class Answer:
    """The verdict on one HTTP answer; error is already redacted and cut."""

    verdict: Verdict
    http_status: int | None
    error: str = ""
    failed_ids: frozenset[str] = field(default_factory=frozenset)
    wait_s: float | None = None  # from a usable Retry-After
    error_key: str = ""
    stop: Stop | None = None  # set with Verdict.STOP_RUN
    body: bytes = b""  # the body of a 2xx answer, for reads

    @property
    def group_failed(self) -> bool:
        """No batch of this event and track can succeed."""
        return self.verdict is Verdict.FAIL_GROUP

    def splits(self, ids: int) -> bool:
        """A request of this many ids is to be sent again in halves, so only the offending ids fail."""
        return self.verdict is Verdict.BISECT and ids > 1


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


def parse_json(body: bytes) -> object:
    """A server's JSON body as Python values.

    Raises:
        ValueError: the body is not JSON, not UTF-8, or nested too deep to read (an unreadable body).
    """
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise ValueError("not UTF-8") from exc
    except RecursionError:  # JSON nested thousands deep: read as what it is, a body batcher cannot use
        raise ValueError("JSON nested too deep") from None


def unsendable(batch: Batch) -> str:
    """Why batch must never be sent ("" when it may): a status outside the API's enum is never sent."""
    if batch.registration_status in KNOWN_STATUSES:
        return ""
    status = _cut(batch.registration_status.encode())
    return f"not sent: {status!r} is not one of the API's statuses ({', '.join(sorted(KNOWN_STATUSES))})"


def is_retryable(status: int) -> bool:
    """Statuses worth sending the same idempotent request again for."""
    return status >= 500 or status in (408, 425)


def interpret(status: int, headers: Mapping[str, str], body: bytes, *, url: str = "") -> Answer:
    """Turn one (status, headers, body) answer to a request for url into a verdict."""
    if 200 <= status < 300 and is_html(headers, body):  # a sign-in portal, a firewall: not the API, nothing applied
        return _wrong_base_url(status, f"HTTP {status} with an HTML page", url)
    if status == 207:
        return _interpret_207(body)
    if status in (200, 204):
        return Answer(Verdict.OK, status, body=body)
    if 200 <= status < 300:
        # 202 Accepted and the like: the API answers 200 or 207 for a change it made; this says nothing was
        return Answer(
            Verdict.FAIL_BATCH,
            status,
            f"HTTP {status}: an answer that does not say the change was applied ({UNCONFIRMED_HINT})",
        )
    if 300 <= status < 400:
        location = _cut(headers.get("Location", "").encode()) or "nowhere (no Location header)"
        return Answer(
            Verdict.FAIL_BATCH,
            status,
            f"the API answered with a redirect to {location}; batcher does not follow redirects (check --base-url)",
        )
    errors, key = describe_error_body(body)
    if is_html(headers, body):
        text = f"HTTP {status} from a proxy (an HTML page, not the API)"
    else:
        # a plain server's page often starts with its status ("404: Not Found"): said once
        errors = errors.removeprefix(f"{status}:").removeprefix(f"{status} ").strip()
        text = f"HTTP {status}" + (f": {errors}" if errors else "")
    if status == 429:
        wait_s = parse_retry_after(headers.get("Retry-After"))
        if key == "quota_exceeded":
            return Answer(Verdict.STOP_RUN, status, text, wait_s=wait_s, error_key=key, stop=Stop.QUOTA)
        return Answer(Verdict.THROTTLED, status, text, wait_s=wait_s, error_key=key or "throttled")
    if status == 401:
        return Answer(Verdict.REFRESH, status, text, error_key=key)
    if status == 403:
        return Answer(Verdict.STOP_RUN, status, text, error_key=key, stop=Stop.PERMISSION)
    if status == 404:
        if not is_api_error_body(body):
            return _wrong_base_url(status, text, url, ", and not the API's own error list")
        return Answer(Verdict.FAIL_GROUP, status, text, error_key=key)
    if is_retryable(status):
        return Answer(Verdict.RETRY, status, text, wait_s=parse_retry_after(headers.get("Retry-After")))
    if status == 400:
        return Answer(Verdict.BISECT, status, text, error_key=key)
    return Answer(Verdict.FAIL_BATCH, status, text, error_key=key)


def certificate_failure(url: str, detail: str) -> Answer:
    """The verdict when the TLS certificate of url's server fails verification: stop at once, never retry."""
    parts = urlsplit(url)
    where = _cut(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".encode()) or "the server"
    return Answer(
        Verdict.STOP_RUN,
        None,
        f"the TLS certificate of {where} failed verification ({_cut(detail.encode())})",
        stop=Stop.CERTIFICATE,
    )


def partial_for(answer: Answer, sent: tuple[str, ...]) -> Answer:
    """A 207's verdict for the ids sent: one that names only ids not sent does not say what became of them."""
    if answer.verdict is not Verdict.PARTIAL:
        return answer
    named = answer.failed_ids.intersection(sent)
    if answer.failed_ids and not named:
        return Answer(
            Verdict.FAIL_BATCH,
            answer.http_status,
            f"HTTP 207 naming as failed only registrations not in the request ({UNCONFIRMED_HINT})",
        )
    return replace(answer, failed_ids=frozenset(named))


def _wrong_base_url(status: int, text: str, url: str, why: str = ", not the API's JSON") -> Answer:
    """The one decision that the base URL is not the API's: the answer came from something else."""
    where = _cut(url.encode()) or "the request's URL"
    return Answer(
        Verdict.STOP_RUN,
        status,
        f"{text} from {where}{why}: the base URL looks wrong (check --base-url)",
        stop=Stop.BASE_URL,
    )


def stop_error(answer: Answer, *, reading: bool = False) -> RunStopped:
    """The error that stops the run for a STOP_RUN answer (to a read when reading), in the words the user reads."""
    if answer.stop is Stop.QUOTA:
        return QuotaError(
            f"the API key's daily request quota is used up ({answer.error}). It resets at 00:00 UTC; "
            f"{hints.rerun()} after that."
        )
    if answer.stop is Stop.PERMISSION and reading:
        return AuthError(
            f"the API refused to read ({answer.error}). Reads need the privilege campaign:read; fix that"
            + hints.offer("--no-snapshot", ", or re-run with --no-snapshot to send without reading")
            + "."
        )
    if answer.stop is Stop.PERMISSION:
        return AuthError(
            f"the API refused the request ({answer.error}). The token needs the scope campaign_data and the "
            f"user needs the privilege campaign:write; fix that, then {hints.rerun()}."
        )
    if answer.stop is Stop.CERTIFICATE:
        return RunStopped(
            f"{answer.error}: batcher stops rather than send the token to a server it cannot trust. Check "
            "--base-url and the system's CA certificates (a company proxy's own CA can be given with SSL_CERT_FILE); "
            f"the rows not sent stay pending, {hints.rerun()} once it is fixed"
        )
    if answer.stop is Stop.BASE_URL:
        return WrongBaseUrl(f"{answer.error}; the rows not sent stay pending, {hints.rerun()} once it is fixed")
    return RunStopped(answer.error)


def is_html(headers: Mapping[str, str], body: bytes) -> bool:
    """An HTML page (a proxy's or a web server's), not the API's JSON."""
    head = body.lstrip()[:64].lower()
    if not head.startswith(b"<"):
        return False
    return "html" in headers.get("Content-Type", "").lower() or head.startswith(HTML_STARTS)


def is_api_error_body(body: bytes) -> bool:
    """The API's error answer: a JSON list (or object) of {error_key, error_message}."""
    try:
        data = parse_json(body)
    except ValueError:
        return False
    items = data if isinstance(data, list) else [data]
    return bool(items) and all(
        isinstance(item, dict) and ("error_key" in item or "error_message" in item) for item in items
    )


def _interpret_207(body: bytes) -> Answer:
    # a 207 lists only the failures; every other id in the batch succeeded
    try:
        data = parse_json(body) if body.strip() else {}
    except ValueError as exc:
        return Answer(Verdict.RETRY, 207, f"HTTP 207 with a body that is not readable JSON ({exc}): " + _cut(body))
    failed = data.get("failed_registration_ids") if isinstance(data, dict) else None
    if failed is None or failed == []:
        # "some registrations failed" without saying which: no row of the batch can be counted as changed
        return Answer(
            Verdict.FAIL_BATCH, 207, f"HTTP 207 that does not say which registrations failed ({UNCONFIRMED_HINT})"
        )
    if not isinstance(failed, list) or not all(isinstance(item, str) for item in failed):
        return Answer(Verdict.RETRY, 207, "HTTP 207 whose failed_registration_ids is not a list of strings")
    return Answer(Verdict.PARTIAL, 207, failed_ids=frozenset(item.lower() for item in failed))


def describe_error_body(body: bytes) -> tuple[str, str]:
    """The API's error messages joined for a person, and the first error_key; never raises."""
    if not body.strip():
        return "", ""
    try:
        data = parse_json(body)
    except ValueError:
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
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None when unusable.

    0, negative, nan, inf and past dates are unusable: the caller waits its own backoff instead.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return seconds


def _cut(body: bytes) -> str:
    # redact before cutting, so a cut can never leave part of a secret behind
    text = redaction.redact(body.decode("utf-8", errors="replace"))
    text = printable(" ".join(text.split()))  # a server's words: no escape sequence reaches a terminal
    if len(text) > MAX_ERROR_BODY_CHARS:
        return text[: MAX_ERROR_BODY_CHARS - 1] + "…"
    return text
