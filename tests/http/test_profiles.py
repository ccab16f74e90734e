"""Profiles: their names, folders and saved logins (checked, atomic, mode 0600)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from batcher.errors import UsageError
from batcher.http.profiles import (
    LOGIN_NAME,
    SavedLogin,
    check_profile_name,
    chosen_profile,
    file_mode,
    list_profiles,
    profile_folder,
    read_login,
    save_login,
)

LATER = datetime(2030, 1, 1, tzinfo=UTC)


def login(**changes: object) -> SavedLogin:
    fields: dict[str, object] = {
        "client_id": "client-1",
        "access_token": "access-token-1",
        "refresh_token": "refresh-token-1",
        "expires_at": LATER,
        "token_url": "https://authz.constantcontact.com/oauth2/default/v1/token",
    }
    fields.update(changes)
    return SavedLogin(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["default", "agency-client_2", "A1"])
def test_letters_digits_dash_and_underscore_name_a_profile(name: str) -> None:
    assert check_profile_name(name) == name


@pytest.mark.parametrize("name", ["", "../etc", "a b", "a/b", "é", "x" * 65, ".hidden", "a\x00"])
def test_any_other_profile_name_is_refused_in_one_line(name: str) -> None:
    with pytest.raises(UsageError, match="is not a profile name") as caught:
        check_profile_name(name)
    assert "\n" not in str(caught.value) and "\x00" not in str(caught.value)


def test_the_default_profile_is_the_state_folder_and_others_live_under_profiles(tmp_path: Path) -> None:
    assert profile_folder(tmp_path, "default") == tmp_path
    assert profile_folder(tmp_path, "b") == tmp_path / "profiles" / "b"
    assert chosen_profile(None, {"BATCHER_PROFILE": "b"}) == "b"
    assert chosen_profile("c", {"BATCHER_PROFILE": "b"}) == "c"
    assert chosen_profile(None, {}) == "default"


def test_a_login_is_saved_with_mode_0600_and_read_back(tmp_path: Path) -> None:
    path = save_login(tmp_path / "p", login())
    assert file_mode(path) == 0o600
    assert read_login(tmp_path / "p") == login()
    assert "access-token-1" not in repr(read_login(tmp_path / "p"))


@pytest.mark.parametrize(
    "changes",
    [
        {"access_token": "tok\x07en-value"},
        {"refresh_token": "refresh token"},
        {"client_id": "client\n1"},
        {"access_token": "tök-value"},
        {"token_url": "http://authz.example.com/token"},
    ],
)
def test_a_value_no_token_has_is_refused_and_nothing_is_saved(tmp_path: Path, changes: dict[str, object]) -> None:
    with pytest.raises(UsageError) as caught:
        save_login(tmp_path, login(**changes))
    assert not (tmp_path / LOGIN_NAME).exists()
    assert "\x07" not in str(caught.value) and "tök" not in str(caught.value)


def test_an_unreadable_login_says_to_log_in_again(tmp_path: Path) -> None:
    (tmp_path / LOGIN_NAME).write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match="run batcher login again"):
        read_login(tmp_path)
    (tmp_path / LOGIN_NAME).write_text(json.dumps({"client_id": "x"}), encoding="utf-8")
    with pytest.raises(UsageError, match="not a login batcher wrote"):
        read_login(tmp_path)


def test_profiles_are_listed_default_first_with_their_logins(tmp_path: Path) -> None:
    save_login(tmp_path / "profiles" / "zeta", login(client_id="z", expires_at=LATER - timedelta(days=1)))
    save_login(tmp_path / "profiles" / "alpha", login(client_id="a"))
    (tmp_path / "profiles" / "not a name").mkdir()
    listed = list_profiles(tmp_path)
    assert [(info.name, info.login.client_id if info.login else None) for info in listed] == [
        ("default", None),
        ("alpha", "a"),
        ("zeta", "z"),
    ]
