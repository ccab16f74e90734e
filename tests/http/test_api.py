"""The endpoint in pure code: URLs, query flags, bodies and verdicts, from tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from batcher.http import api
from batcher.http.api import Stop, Verdict
from batcher.models import Batch, QueryFlags


def make_batch(track_id: str = "gqz1gb") -> Batch:
    return Batch(1, 0, "07216444-4e3b-41ea-a3b8-5a418fce41f4", track_id, "CANCELED", ("a", "b"), (0, 1))


def test_url_is_built_on_the_base_url() -> None:
    request = api.build_request("http://127.0.0.1:9/v3/", make_batch(), QueryFlags())
    assert request.url == (
        "http://127.0.0.1:9/v3/events/07216444-4e3b-41ea-a3b8-5a418fce41f4/tracks/gqz1gb/registrations"
    )


@pytest.mark.parametrize("track_id", ["../contacts", "a/b", "x?y=1", "x#y", "100%", "a b"])
def test_path_parameters_are_percent_encoded(track_id: str) -> None:
    url = api.build_request("https://api.cc.email/v3", make_batch(track_id), QueryFlags()).url
    tail = url.split("/tracks/", 1)[1]
    assert tail.endswith("/registrations")
    assert tail.count("/") == 1
    assert "?" not in url and "#" not in url and " " not in url


def test_body_has_both_required_fields() -> None:
    body = json.loads(api.build_request("https://x/v3", make_batch(), QueryFlags()).body)
    assert body == {"registration_ids": ["a", "b"], "registration_status": "CANCELED"}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (QueryFlags(), {}),
        (QueryFlags(increase_count=True), {"increase_count": "true"}),
        (
            QueryFlags(increase_item_count=False, return_items_to_inventory=False),
            {"increase_item_count": "false", "return_items_to_inventory": "false"},
        ),
    ],
)
def test_only_given_flags_are_sent(flags: QueryFlags, expected: dict[str, str]) -> None:
    assert api.query_params(flags) == expected


ERRORS = json.dumps([{"error_key": "k", "error_message": "bad thing"}]).encode()
QUOTA = b'[{"error_key": "quota_exceeded", "error_message": "quota"}]'
URL = "http://127.0.0.1:9/v2/events/e/tracks/t/registrations"
PROXY = "HTTP 503 from a proxy (an HTML page, not the API)"
HTML = {"Content-Type": "text/html"}
WELCOME = b"<html><body>Welcome</body></html>"
ELSEWHERE = {"Location": "https://elsewhere.example/v3"}
REDIRECT = "the API answered with a redirect to"
NO_REDIRECTS = "batcher does not follow redirects (check --base-url)"
WRONG_BASE_URL = f"from {URL}, and not the API's own error list: the base URL looks wrong (check --base-url)"
HTML_200 = f"HTTP 200 with an HTML page from {URL}, not the API's JSON: the base URL looks wrong (check --base-url)"

# (status, headers, body) -> (verdict, why it stops the run, error): the one decision per answer. An error of None
# is not checked; "" means the answer carries none.
VERDICTS = [
    (200, {}, b"", Verdict.OK, None, ""),
    (201, {}, b"", Verdict.FAIL_BATCH, None, None),  # issue 18.3: a 2xx other than 200/204/207 does not say it applied
    (204, {}, b"", Verdict.OK, None, ""),
    (200, {}, b'{"registration_status": "CANCELED"}', Verdict.OK, None, ""),
    (200, HTML, WELCOME, Verdict.STOP_RUN, Stop.BASE_URL, HTML_200),
    (200, {}, b"  <!DOCTYPE html><html>...</html>", Verdict.STOP_RUN, Stop.BASE_URL, HTML_200),
    (301, ELSEWHERE, b"", Verdict.FAIL_BATCH, None, f"{REDIRECT} {ELSEWHERE['Location']}; {NO_REDIRECTS}"),
    (302, {}, b"", Verdict.FAIL_BATCH, None, f"{REDIRECT} nowhere (no Location header); {NO_REDIRECTS}"),
    (307, {"Location": "/v3/events/x"}, b"", Verdict.FAIL_BATCH, None, None),
    (308, ELSEWHERE, b"", Verdict.FAIL_BATCH, None, None),
    (207, {}, b'{"failed_registration_ids": ["A"]}', Verdict.PARTIAL, None, ""),
    (207, {}, b"{}", Verdict.FAIL_BATCH, None, None),  # issue 18.3: a 207 not saying which failed proves nothing
    (207, {}, b"", Verdict.FAIL_BATCH, None, None),
    (207, {}, b"<html>", Verdict.STOP_RUN, Stop.BASE_URL, None),  # an HTML page is not the API's answer
    (207, {}, b'{"failed_registration_ids": "A"}', Verdict.RETRY, None, None),
    (400, {}, ERRORS, Verdict.BISECT, None, "HTTP 400: bad thing"),
    (400, {}, b"", Verdict.BISECT, None, "HTTP 400"),
    (401, {}, b'{"error_key": "unauthorized", "error_message": "nope"}', Verdict.REFRESH, None, "HTTP 401: nope"),
    (403, {}, ERRORS, Verdict.STOP_RUN, Stop.PERMISSION, "HTTP 403: bad thing"),
    (404, {}, ERRORS, Verdict.FAIL_GROUP, None, "HTTP 404: bad thing"),
    (404, {}, b"404: Not Found", Verdict.STOP_RUN, Stop.BASE_URL, f"HTTP 404: Not Found {WRONG_BASE_URL}"),
    (404, {"Content-Type": "text/html"}, b"<html>Not Found</html>", Verdict.STOP_RUN, Stop.BASE_URL, None),
    (404, {}, b"", Verdict.STOP_RUN, Stop.BASE_URL, f"HTTP 404 {WRONG_BASE_URL}"),
    (409, {}, ERRORS, Verdict.FAIL_BATCH, None, "HTTP 409: bad thing"),
    (429, {}, b'[{"error_key": "throttled", "error_message": "Too Many Requests"}]', Verdict.THROTTLED, None, None),
    (429, {}, b"", Verdict.THROTTLED, None, "HTTP 429"),
    (429, {}, QUOTA, Verdict.STOP_RUN, Stop.QUOTA, "HTTP 429: quota"),
    (500, {}, ERRORS, Verdict.RETRY, None, "HTTP 500: bad thing"),
    (502, {}, b"<html><body>Bad Gateway</body></html>", Verdict.RETRY, None, PROXY.replace("503", "502")),
    (503, {}, b"", Verdict.RETRY, None, "HTTP 503"),
    (503, {}, b"<html><head><title>503</title></head><body>Unavailable</body></html>", Verdict.RETRY, None, PROXY),
    (503, {}, b"  <!DOCTYPE html><html>...</html>", Verdict.RETRY, None, PROXY),
    (503, {"Content-Type": "text/html; charset=utf-8"}, b"<h1>Service Unavailable</h1>", Verdict.RETRY, None, PROXY),
    (504, {}, b"not json", Verdict.RETRY, None, "HTTP 504: not json"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "headers", "body", "verdict", "stop", "error"), VERDICTS)
def test_verdict_per_answer(
    status: int, headers: dict[str, str], body: bytes, verdict: Verdict, stop: Stop | None, error: str | None
) -> None:
    answer = api.interpret(status, headers, body, url=URL)
    assert (answer.verdict, answer.stop, answer.http_status) == (verdict, stop, status)
    if error is not None:
        assert answer.error == error


@pytest.mark.parametrize(
    ("verdict", "ids", "splits", "applied", "group_failed"),
    [
        (Verdict.OK, 2, False, True, False),
        (Verdict.PARTIAL, 2, False, True, False),
        (Verdict.BISECT, 2, True, False, False),
        (Verdict.BISECT, 1, False, False, False),  # one id refused: it fails, alone
        (Verdict.FAIL_BATCH, 2, False, False, False),
        (Verdict.FAIL_GROUP, 2, False, False, True),
        (Verdict.RETRY, 2, False, False, False),
        (Verdict.STOP_RUN, 2, False, False, False),
    ],
)
def test_what_the_sender_does_follows_from_the_verdict(
    verdict: Verdict, ids: int, splits: bool, applied: bool, group_failed: bool
) -> None:
    answer = api.Answer(verdict, 400)
    assert (answer.splits(ids), verdict.applied, answer.group_failed) == (splits, applied, group_failed)


@pytest.mark.parametrize(
    ("body", "stop", "reading", "words"),
    [
        (ERRORS, Stop.PERMISSION, False, ("campaign:write", "--resume")),
        (ERRORS, Stop.PERMISSION, True, ("campaign:read", "--no-snapshot")),
        (QUOTA, Stop.QUOTA, False, ("00:00 UTC", "--resume")),
        (b"404: Not Found", Stop.BASE_URL, False, (URL, "the base URL looks wrong", "pending")),
    ],
)
def test_a_stop_is_worded_for_the_user(body: bytes, stop: Stop, reading: bool, words: tuple[str, ...]) -> None:
    status = {Stop.PERMISSION: 403, Stop.QUOTA: 429, Stop.BASE_URL: 404}[stop]
    answer = api.interpret(status, {}, body, url=URL)
    assert answer.stop is stop
    message = str(api.stop_error(answer, reading=reading))
    assert all(word in message for word in words), message


def test_207_failed_ids_are_read_in_canonical_form() -> None:
    answer = api.interpret(207, {}, b'{"failed_registration_ids": ["ABC", "def"]}')
    assert answer.failed_ids == frozenset({"abc", "def"})


def test_error_message_names_status_and_api_messages() -> None:
    body = json.dumps([{"error_key": "a", "error_message": "first"}, {"error_message": "second"}]).encode()
    assert api.interpret(400, {}, body).error == "HTTP 400: first; second"


def test_error_body_is_cut_to_200_characters() -> None:
    answer = api.interpret(502, {}, b"x" * 5000)
    assert len(answer.error) == len("HTTP 502: ") + 200
    message = json.dumps([{"error_key": "k", "error_message": "y" * 5000}]).encode()
    assert len(api.interpret(400, {}, message).error) == len("HTTP 400: ") + 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("0.5", 0.5),
        ("0", None),
        ("-4", None),
        ("nan", None),
        ("inf", None),
        ("-inf", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("Fri, 01 Jan 2100 00:00:00 GMT", datetime(2100, 1, 1, tzinfo=UTC)),
    ],
)
def test_retry_after_is_read_as_seconds_or_date(value: str | None, expected: float | datetime | None) -> None:
    """An unusable Retry-After (0, negative, nan, inf, a past date) is None: the backoff applies instead."""
    if isinstance(expected, datetime):  # seconds from now, taken when the test runs (not when it is collected)
        expected = pytest.approx((expected - datetime.now(UTC)).total_seconds(), abs=60)
    assert api.parse_retry_after(value) == expected
