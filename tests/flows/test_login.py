"""The login flow over real HTTP against the sandbox's device flow: pending, slow_down, approve, deny, expire, Ctrl-C.

Waits go through an injected sleep that records them, so the polling rule is checked without real sleeping.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from batcher.errors import LoginError, UsageError
from batcher.flows.login import LoginHooks, LoginPrompt, login_flow, login_options, logout_flow, status_flow
from batcher.http.profiles import LOGIN_NAME, file_mode, login_lock, read_login
from batcher.sandbox import app as sandbox
from tests.conftest import RunningSandbox, StartSandbox, token_url


def decide_at_page(prompt: LoginPrompt, decision: str = "approve") -> str:
    """What a person does in the browser: type the code on the verification page and press a button."""
    form = urllib.parse.urlencode({"user_code": prompt.user_code.lower(), "decision": decision}).encode()
    with urllib.request.urlopen(urllib.request.Request(prompt.verification_uri, data=form)) as page:
        return str(page.read().decode())


class Person:
    """The login's hooks in a test: records what was shown and every wait; acts at the n-th wait."""

    def __init__(self, act_at: int | None = None, act: Callable[[LoginPrompt], object] | None = None) -> None:
        self.prompts: list[LoginPrompt] = []
        self.waits: list[float] = []
        self.act_at = act_at
        self.act = act or decide_at_page

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) == self.act_at:
            self.act(self.prompts[0])

    def hooks(self) -> LoginHooks:
        return LoginHooks(show_code=self.prompts.append, sleep=self.sleep)


def options_for(box: RunningSandbox, state: Path, **changes: object) -> object:
    chosen: dict[str, object] = {
        "profile": "default",
        "state_root": state,
        "client_id": sandbox.SANDBOX_CLIENT_ID,
        "token_url": token_url(box),
        "device_url": None,
        "open_browser": False,
    }
    chosen.update(changes)
    return login_options(**chosen)  # type: ignore[arg-type]


def test_pending_then_slow_down_then_approval_at_the_page_saves_the_tokens(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    scenario = sandbox.Scenario(
        rate_limit_per_s=None, device_interval_s=2, device_answers=["authorization_pending", "slow_down"]
    )
    box = start_sandbox(scenario)
    person = Person(act_at=4)
    result = login_flow(options_for(box, tmp_path), person.hooks())  # type: ignore[arg-type]
    # interval 2, 2, then 5 s more after slow_down (RFC 8628 3.5); approved before the 4th poll
    assert person.waits == [2, 2, 7, 7]
    prompt = person.prompts[0]
    assert prompt.verification_uri == box.url.removesuffix("/v3") + "/activate"
    assert prompt.user_code in prompt.verification_uri_complete and prompt.expires_in_s == 600
    assert result.saved_to == tmp_path / LOGIN_NAME and file_mode(result.saved_to) == 0o600
    saved = read_login(tmp_path)
    assert saved is not None
    assert (saved.access_token, saved.refresh_token) == (box.state.access_token, box.state.refresh_token)
    assert (saved.client_id, saved.token_url) == (sandbox.SANDBOX_CLIENT_ID, token_url(box))
    assert 86_000 < saved.expires_in_s() <= 86_400
    device = next(iter(box.state.devices.values()))
    assert (device.polls, device.granted) == (4, True)


def test_a_login_denied_at_the_page_ends_with_one_line_and_saves_nothing(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None))
    person = Person(act_at=2, act=lambda prompt: decide_at_page(prompt, "deny"))
    with pytest.raises(LoginError, match="refused at the verification page") as caught:
        login_flow(options_for(box, tmp_path), person.hooks())  # type: ignore[arg-type]
    assert caught.value.exit_code == 3
    assert not (tmp_path / LOGIN_NAME).exists()


@pytest.mark.parametrize("answers", [["expired_token"], ["authorization_pending", "expired_token"]])
def test_an_expired_code_ends_with_one_line_and_saves_nothing(
    start_sandbox: StartSandbox, tmp_path: Path, answers: list[str]
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, device_answers=answers))
    with pytest.raises(LoginError, match="the code expired before it was approved"):
        login_flow(options_for(box, tmp_path), Person().hooks())  # type: ignore[arg-type]
    assert not (tmp_path / LOGIN_NAME).exists()


def test_a_code_the_server_keeps_pending_past_its_lifetime_ends_as_expired(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, device_interval_s=5, device_expires_s=12))
    person = Person()
    with pytest.raises(LoginError, match="expired"):
        login_flow(options_for(box, tmp_path), person.hooks())  # type: ignore[arg-type]
    assert person.waits == [5, 5, 5]


def test_ctrl_c_while_waiting_saves_nothing_and_frees_the_profile(start_sandbox: StartSandbox, tmp_path: Path) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, auto_approve_after=1))

    def interrupt(prompt: LoginPrompt) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        login_flow(options_for(box, tmp_path), Person(act_at=1, act=interrupt).hooks())  # type: ignore[arg-type]
    assert not (tmp_path / LOGIN_NAME).exists()
    login_flow(options_for(box, tmp_path), Person().hooks())  # type: ignore[arg-type]
    assert read_login(tmp_path) is not None


def test_a_second_login_of_the_same_profile_is_refused_while_the_first_runs(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, auto_approve_after=0))
    with login_lock(tmp_path, "default"), pytest.raises(UsageError, match="another batcher login for the profile"):
        login_flow(options_for(box, tmp_path), Person().hooks())  # type: ignore[arg-type]
    assert box.state.devices == {}


def test_a_token_with_a_control_character_is_refused_not_saved(start_sandbox: StartSandbox, tmp_path: Path) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, token="sandbox\x1b[2Jtoken", auto_approve_after=0))
    with pytest.raises(LoginError, match="a character a token never has") as caught:
        login_flow(options_for(box, tmp_path), Person().hooks())  # type: ignore[arg-type]
    assert "\x1b" not in str(caught.value)
    assert not (tmp_path / LOGIN_NAME).exists()


def test_status_never_holds_more_than_the_login_and_logout_revokes_then_forgets(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, auto_approve_after=0))
    login_flow(options_for(box, tmp_path, profile="b"), Person().hooks())  # type: ignore[arg-type]
    access, refresh = box.state.access_token, box.state.refresh_token
    status = status_flow(tmp_path, "b")
    assert status.login is not None and status.folder == tmp_path / "profiles" / "b"
    assert status_flow(tmp_path, "default").login is None
    result = logout_flow(tmp_path, "b")
    assert result.revoked and result.removed == (tmp_path / "profiles" / "b" / LOGIN_NAME,)
    assert box.state.revoked == [refresh, access]
    assert status_flow(tmp_path, "b").login is None


def test_a_server_without_revocation_is_said_and_the_tokens_are_forgotten_all_the_same(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, auto_approve_after=0, revocation=False))
    login_flow(options_for(box, tmp_path), Person().hooks())  # type: ignore[arg-type]
    result = logout_flow(tmp_path, "default")
    assert not result.revoked and "answered HTTP 404" in result.revoke_problem
    assert read_login(tmp_path) is None
