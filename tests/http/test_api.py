"""The endpoint in pure code: URLs, query flags, bodies and verdicts, from tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from batcher.http import api
from batcher.http.api import Verdict
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


@pytest.mark.parametrize(
    ("status", "headers", "body", "verdict"),
    [
        (200, {}, b"", Verdict.OK),
        (201, {}, b"", Verdict.FAIL_BATCH),  # issue 18.3: a 2xx other than 200/204/207 does not say it applied
        (202, {}, b"", Verdict.FAIL_BATCH),
        (200, {"Content-Type": "text/html"}, b"<html><body>sign in</body></html>", Verdict.STOP_RUN),
        (204, {}, b"", Verdict.OK),
        (301, {"Location": "https://elsewhere.example/v3"}, b"", Verdict.FAIL_BATCH),
        (302, {}, b"", Verdict.FAIL_BATCH),
        (307, {"Location": "/v3/events/x"}, b"", Verdict.FAIL_BATCH),
        (308, {"Location": "https://elsewhere.example/v3"}, b"", Verdict.FAIL_BATCH),
        (207, {}, b'{"failed_registration_ids": ["A"]}', Verdict.PARTIAL),
        (207, {}, b"{}", Verdict.FAIL_BATCH),  # issue 18.3: a 207 that does not say which failed proves nothing
        (207, {}, b"", Verdict.FAIL_BATCH),
        (207, {}, b"<html>", Verdict.STOP_RUN),  # an HTML page is not the API's answer
        (207, {}, b"[" * 100_000 + b"]" * 100_000, Verdict.RETRY),  # issue 18.4: unreadable, not a crash
        (400, {}, ERRORS, Verdict.FAIL_BATCH),
        (401, {}, b'{"error_key": "unauthorized", "error_message": "nope"}', Verdict.REFRESH),
        (403, {}, ERRORS, Verdict.STOP_RUN),
        (404, {}, ERRORS, Verdict.FAIL_GROUP),
        (404, {}, b"404: Not Found", Verdict.STOP_RUN),
        (404, {"Content-Type": "text/html"}, b"<html>Not Found</html>", Verdict.STOP_RUN),
        (404, {}, b"", Verdict.STOP_RUN),
        (409, {}, ERRORS, Verdict.FAIL_BATCH),
        (429, {}, b'[{"error_key": "throttled", "error_message": "Too Many Requests"}]', Verdict.THROTTLED),
        (429, {}, b"", Verdict.THROTTLED),
        (429, {}, b'[{"error_key": "quota_exceeded", "error_message": "quota"}]', Verdict.STOP_RUN),
        (500, {}, ERRORS, Verdict.RETRY),
        (502, {}, b"<html><body>Bad Gateway</body></html>", Verdict.RETRY),
        (503, {}, b"", Verdict.RETRY),
        (504, {}, b"not json", Verdict.RETRY),
    ],
)
def test_verdict_per_answer(status: int, headers: dict[str, str], body: bytes, verdict: Verdict) -> None:
    assert api.interpret(status, headers, body).verdict is verdict


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
    ("headers", "body"),
    [
        ({}, b"<html><head><title>503</title></head><body>Service Unavailable</body></html>"),
        ({}, b"  <!DOCTYPE html><html>...</html>"),
        ({"Content-Type": "text/html; charset=utf-8"}, b"<h1>Service Unavailable</h1>"),
    ],
)
def test_an_html_error_page_is_summarized_not_copied(headers: dict[str, str], body: bytes) -> None:
    assert api.interpret(503, headers, body).error == "HTTP 503 from a proxy (an HTML page, not the API)"


def test_a_redirect_fails_the_batch_naming_its_target() -> None:
    answer = api.interpret(307, {"Location": "https://elsewhere.example/v3"}, b"")
    assert answer.error == (
        "the API answered with a redirect to https://elsewhere.example/v3; batcher does not follow redirects "
        "(check --base-url)"
    )


def test_a_404_that_is_not_the_api_says_the_base_url_looks_wrong() -> None:
    answer = api.interpret(404, {}, b"404: Not Found", url="http://127.0.0.1:9/v2/events/e/tracks/t/registrations")
    assert (answer.verdict, answer.stop) == (Verdict.STOP_RUN, api.Stop.BASE_URL)
    message = str(api.stop_error(answer))
    assert "http://127.0.0.1:9/v2/events/e/tracks/t/registrations" in message
    assert "the base URL looks wrong" in message and "pending" in message


def test_group_failure_and_stop_reasons_come_with_the_verdict() -> None:
    assert api.interpret(404, {}, ERRORS).group_failed
    assert not api.interpret(400, {}, ERRORS).group_failed
    assert api.interpret(403, {}, ERRORS).stop is api.Stop.PERMISSION
    assert "campaign:write" in str(api.stop_error(api.interpret(403, {}, ERRORS)))
    assert "--no-snapshot" in str(api.stop_error(api.interpret(403, {}, ERRORS), reading=True))
    assert api.interpret(429, {}, b'[{"error_key": "quota_exceeded", "error_message": "q"}]').stop is api.Stop.QUOTA


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
        (
            "Fri, 01 Jan 2100 00:00:00 GMT",
            pytest.approx((datetime(2100, 1, 1, tzinfo=UTC) - datetime.now(UTC)).total_seconds(), abs=3600),
        ),
    ],
)
def test_retry_after_is_read_as_seconds_or_date(value: str | None, expected: object) -> None:
    """An unusable Retry-After (0, negative, nan, inf, a past date) is None: the backoff applies instead."""
    assert api.parse_retry_after(value) == expected
