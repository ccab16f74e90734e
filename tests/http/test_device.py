"""The device flow's answers read without a socket: each RFC 8628 answer to its verdict or its one-line refusal."""

from __future__ import annotations

import json

import pytest

from batcher.errors import LoginError
from batcher.http.device import PollVerdict, read_device_code, read_poll, sibling_url

URL = "https://authz.example.com/oauth2/default/v1/token"


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_the_device_and_revocation_endpoints_are_siblings_of_the_token_endpoint() -> None:
    assert sibling_url(URL, "device/authorize") == "https://authz.example.com/oauth2/default/v1/device/authorize"
    assert sibling_url(URL + "?x=1", "revoke") == "https://authz.example.com/oauth2/default/v1/revoke"


def test_a_device_code_answer_is_read_with_the_interval_capped_and_defaults_filled() -> None:
    answer = body(device_code="dc-1234567890", user_code="WDJB-MJHT", verification_uri="https://x/activate")
    code = read_device_code(URL, 200, answer, "client")
    assert (code.user_code, code.verification_uri, code.expires_in_s, code.interval_s) == (
        "WDJB-MJHT",
        "https://x/activate",
        600,
        5,
    )
    assert "dc-1234567890" not in repr(code)
    slow = body(device_code="d", user_code="u", verification_uri="https://x", interval=3600, expires_in=900)
    assert (read_device_code(URL, 200, slow, "c").interval_s, read_device_code(URL, 200, slow, "c").expires_in_s) == (
        60,
        900,
    )


@pytest.mark.parametrize(
    ("status", "answer", "words"),
    [
        (401, body(error="invalid_client"), "does not know the client ID 'KEY-1'"),
        (400, body(error="unauthorized_client"), "may not use the device flow"),
        (200, b"<html>proxy</html>", "not an OAuth answer"),
        (502, b"", "answered HTTP 502 with 'an empty answer'"),
        (200, body(user_code="u"), "without a device_code"),
        (200, body(device_code="d", user_code="u", verification_uri="javascript:alert(1)"), "not a web address"),
        (200, body(device_code="d", user_code="u", verification_uri="https://x/\x1b[2J"), "not a web address"),
        (200, body(device_code="d", user_code="AB\x1b[2JCD", verification_uri="https://x"), "no code has"),
    ],
)
def test_a_refused_or_broken_device_authorization_is_one_login_error(status: int, answer: bytes, words: str) -> None:
    with pytest.raises(LoginError, match=words.replace("(", r"\(").replace(")", r"\)")) as caught:
        read_device_code(URL + "/device", status, answer, "KEY-1")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "answer", "verdict"),
    [
        (400, body(error="authorization_pending"), PollVerdict.PENDING),
        (400, body(error="slow_down"), PollVerdict.SLOW_DOWN),
        (200, body(access_token="at-12345678", refresh_token="rt-12345678", expires_in=86400), PollVerdict.GRANTED),
    ],
)
def test_a_poll_goes_on_or_grants(status: int, answer: bytes, verdict: PollVerdict) -> None:
    assert read_poll(URL, status, answer, "c").verdict is verdict


@pytest.mark.parametrize(
    ("status", "answer", "words"),
    [
        (400, body(error="access_denied"), "refused at the verification page"),
        (400, body(error="expired_token"), "the code expired"),
        (400, body(error="invalid_grant", error_description="bad code"), "refused the login (invalid_grant: bad code)"),
        (500, b"<html>Internal Server Error</html>", "answered HTTP 500"),
        (200, b"not json", "not an OAuth answer"),
        (200, body(token_type="Bearer"), "sent no access_token"),
    ],
)
def test_a_poll_that_ends_the_login_is_one_login_error(status: int, answer: bytes, words: str) -> None:
    with pytest.raises(LoginError, match=words.replace("(", r"\(").replace(")", r"\)")):
        read_poll(URL, status, answer, "c")


def test_a_grant_without_expires_in_lasts_the_api_s_24_hours_and_hides_its_tokens() -> None:
    poll = read_poll(URL, 200, body(access_token="at-12345678"), "c")
    assert poll.grant is not None
    assert (poll.grant.expires_in_s, poll.grant.refresh_token) == (86400, "")
    assert "at-12345678" not in repr(poll)
