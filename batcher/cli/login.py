"""The command line of `login`, `whoami`, `logout` and `profiles`: options resolved, one flow, its lines printed.

The login's hooks print the verification URL and the code to stderr and may open a browser; every other line
goes to stdout. No token's value is ever printed (and every line passes the redaction all the same).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from batcher.cli import config
from batcher.cli.parser import option_table
from batcher.cli.parser_login import login_option_table
from batcher.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED
from batcher.flows.login import (
    LoginHooks,
    LoginPrompt,
    login_flow,
    login_options,
    logout_flow,
    profiles_flow,
    status_flow,
)
from batcher.flows.render import login_lines, when
from batcher.http import session as http_session
from batcher.http.profiles import SavedLogin, chosen_profile
from batcher.settings import DEFAULT_TOKEN_URL
from batcher.support import redaction

ENV_CONFIG = "BATCHER_CONFIG"


def login_command(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """login, whoami, logout or profiles; returns the exit code (a BatcherError goes up to main)."""
    specs, defaults = login_option_table()
    given = {name: value for name, value in vars(args).items() if name in specs}
    config_path = getattr(args, "config", None) or (Path(environ[ENV_CONFIG]) if environ.get(ENV_CONFIG) else None)
    run_specs, _ = option_table()
    values = config.resolve(given, specs, defaults, environ, config_path, also_known=run_specs).values
    state_root = http_session.state_root(Path(str(values["state_dir"])) if values.get("state_dir") else None, environ)
    profile = chosen_profile(str(values["profile"]) if values.get("profile") else None, environ)
    if args.command == "profiles":
        return _profiles(state_root, profile)
    if args.command == "whoami" or (args.command == "login" and values.get("status")):
        return _status(state_root, profile)
    if args.command == "logout":
        return _logout(state_root, profile, float(str(values["timeout"])))
    client_id = values.get("client_id")
    options = login_options(
        profile=profile,
        state_root=state_root,
        client_id=str(client_id).strip() if client_id else None,
        token_url=str(values.get("token_url") or DEFAULT_TOKEN_URL),
        device_url=str(values["device_url"]) if values.get("device_url") else None,
        open_browser=not values.get("no_browser"),
        sandbox=bool(values.get("sandbox")),
        timeout_s=float(str(values["timeout"])),
    )
    hooks = LoginHooks(show_code=_show_code, open_browser=_browser_opener(environ), waiting=_waiting())
    try:
        result = login_flow(options, hooks)
    except KeyboardInterrupt:
        say("batcher: login interrupted; nothing was saved")
        return EXIT_INTERRUPTED
    for line in login_lines(result):
        say(line, sys.stdout)
    return EXIT_OK


def say(line: str, out: TextIO | None = None) -> None:
    """Print one line (to stderr unless told), with every known secret masked."""
    print(redaction.redact(line), file=out or sys.stderr)


def _show_code(prompt: LoginPrompt) -> None:
    minutes = max(1, round(prompt.expires_in_s / 60))
    say(f"Open {prompt.verification_uri} and enter {prompt.user_code} (the code expires in {minutes} minutes)")
    if prompt.verification_uri_complete:
        say(f"  (or open {prompt.verification_uri_complete}, which carries the code)")


def _waiting() -> Callable[[int], None]:
    said = [False]

    def waiting(interval_s: int) -> None:
        if not said[0]:
            say(f"Waiting for the approval, checking every {interval_s} s (Ctrl-C stops; nothing is saved then)")
            said[0] = True

    return waiting


def _browser_opener(environ: Mapping[str, str]) -> Callable[[str], bool]:
    def open_browser(url: str) -> bool:
        # over SSH or on a server there is no display: a console browser would take the terminal, so none
        if sys.platform.startswith("linux") and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
            return False
        import webbrowser  # noqa: PLC0415 - only when a browser may be opened

        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            return False
        if opened:
            say("A browser was opened at that page.")
        return opened

    return open_browser


def status_lines(profile: str, folder: Path, login: SavedLogin, rotated: bool) -> list[str]:
    """`batcher whoami`: never a token's value."""
    lines = [
        f"profile: {profile}",
        f"client ID: {login.client_id}",
        f"access token: expires {when(login.expires_at)}",
        "refresh token: " + ("held (batcher renews the access token by itself)" if login.refresh_token else "none"),
        f"token URL: {login.token_url}",
        f"state folder: {folder}",
    ]
    if rotated:
        lines.append("also saved there: the rotated successor of a CTCT_REFRESH_TOKEN (tokens.json)")
    return lines


def _status(state_root: Path, profile: str) -> int:
    status = status_flow(state_root, profile)
    if status.login is None:
        named = "" if profile == "default" else f" --profile {profile}"
        say(
            f"profile {profile!r}: not logged in; run 'batcher login{named}' (state folder {status.folder})", sys.stdout
        )
        return EXIT_SOME_FAILED
    for line in status_lines(profile, status.folder, status.login, rotated=status.rotated_tokens):
        say(line, sys.stdout)
    return EXIT_OK


def _logout(state_root: Path, profile: str, timeout_s: float) -> int:
    result = logout_flow(state_root, profile, timeout_s=timeout_s)
    if not result.removed:
        say(f"profile {profile!r} held no login; nothing to forget", sys.stdout)
        return EXIT_OK
    said = ", ".join(str(path) for path in result.removed)
    say(f"Logged out of profile {profile!r}: forgot {said}.", sys.stdout)
    if result.revoked:
        say("The server revoked the tokens.", sys.stdout)
    elif result.revoke_problem:
        say(
            f"Could not revoke the tokens at the server ({result.revoke_problem}); they stay valid until they "
            "expire, but batcher no longer holds them.",
            sys.stdout,
        )
    return EXIT_OK


def _profiles(state_root: Path, current: str) -> int:
    rows = [("PROFILE", "CLIENT ID", "ACCESS TOKEN EXPIRES", "REFRESH TOKEN")]
    for info in profiles_flow(state_root):
        name = info.name + ("*" if info.name == current else "")
        if info.login is not None:
            refresh = "held" if info.login.refresh_token else "none"
            rows.append((name, info.login.client_id, when(info.login.expires_at), refresh))
        else:
            rows.append((name, "-", "unreadable login" if info.problem else "not logged in", "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        say("  ".join([*cells, row[3]]), sys.stdout)
    say(f"(* the profile in use; state folder {state_root})", sys.stdout)
    return EXIT_OK
