"""The words of `login`, `logout`, `whoami` and `profiles`, and the --profile every command takes."""

from __future__ import annotations

import argparse
from pathlib import Path

from batcher.cli.config import OptionSpec, finite_number, option_specs
from batcher.cli.option_parser import OptionParser
from batcher.errors import UsageError
from batcher.http.profiles import check_profile_name
from batcher.settings import DEFAULT_TIMEOUT_S

# the options of login that a config file or the environment may set too (flag, environment, config file)
LOGIN_OPTIONS = ("client_id", "profile", "token_url", "device_url", "state_dir", "timeout")
LOGIN_DEFAULTS: dict[str, object] = {
    "no_browser": False,
    "status": False,
    "sandbox": False,
    "timeout": DEFAULT_TIMEOUT_S,
}
STATE_DIR_HELP = (
    "the state folder holding every profile's login, daily request count and saved tokens "
    "(default: $BATCHER_STATE_DIR, else $XDG_STATE_HOME/batcher, else ~/.local/state/batcher)"
)
PROFILE_HELP = (
    "the profile (one per Constant Contact account): its login, daily request count and saved tokens "
    "(default: $BATCHER_PROFILE, else 'default'); letters, digits, '-' and '_'"
)


def profile_name(text: str) -> str:
    """--profile's converter: a checked profile name."""
    try:
        return check_profile_name(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--profile {text!r} ")) from None


def add_profile_option(parser: argparse.ArgumentParser) -> None:
    """--profile NAME, as every command takes it."""
    parser.add_argument("--profile", type=profile_name, metavar="NAME", help=PROFILE_HELP)


def add_login_commands(commands: argparse._SubParsersAction[OptionParser]) -> None:
    """The subcommands login, logout, whoami and profiles."""
    login = commands.add_parser(
        "login",
        help="log in once to a Constant Contact account (the device flow); saves the tokens in the profile",
        epilog="examples:\n  batcher login --client-id YOUR_API_KEY\n"
        "  batcher login --client-id OTHER_KEY --profile agency-client-2\n"
        "  batcher login --status\n  batcher login --sandbox            # rehearse it; nothing is saved\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    add_login_options(login)
    whoami = commands.add_parser(
        "whoami",
        help="show the profile's login: client ID, expiry, refresh token held, state folder (never a token)",
        argument_default=argparse.SUPPRESS,
    )
    add_profile_option(whoami)
    add_common(whoami)
    logout = commands.add_parser(
        "logout",
        help="forget the profile's tokens (revoking them at the server where it can)",
        argument_default=argparse.SUPPRESS,
    )
    add_profile_option(logout)
    add_common(logout)
    profiles = commands.add_parser(
        "profiles",
        help="list the profiles with their client IDs and token expiry",
        argument_default=argparse.SUPPRESS,
    )
    add_common(profiles)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, metavar="DIR", help=STATE_DIR_HELP)
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML file holding any option")


def add_login_options(parser: argparse.ArgumentParser) -> None:
    """The options of `batcher login`."""
    parser.add_argument(
        "--client-id",
        metavar="KEY",
        help="your application's API key from Constant Contact's developer portal (default: env CTCT_CLIENT_ID, "
        "else client-id in the config file)",
    )
    add_profile_option(parser)
    parser.add_argument(
        "--token-url",
        metavar="URL",
        help="the OAuth token endpoint (default: env CTCT_TOKEN_URL, else Constant Contact's); https, or plain "
        "http to a loopback address",
    )
    parser.add_argument(
        "--device-url",
        metavar="URL",
        help="the device authorization endpoint (default: env CTCT_DEVICE_URL, else device/authorize beside the "
        "token endpoint)",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser; only print the URL and code")
    parser.add_argument(
        "--status", action="store_true", help="show the profile's login (as batcher whoami does); log in nothing"
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="rehearse the login against an in-process sandbox (approve on its page, or wait: it approves by "
        "itself after 3 polls); nothing is saved",
    )
    parser.add_argument(
        "--timeout", type=finite_number, metavar="SEC", help="seconds to wait for each answer (default 30)"
    )
    add_common(parser)


def login_option_table() -> tuple[dict[str, OptionSpec], dict[str, object]]:
    """The specs and defaults of login's options (also those of whoami, logout and profiles)."""
    scratch = OptionParser(add_help=False, argument_default=argparse.SUPPRESS)
    add_login_options(scratch)
    specs = option_specs(scratch)
    return specs, {dest: LOGIN_DEFAULTS.get(dest) for dest in specs}
