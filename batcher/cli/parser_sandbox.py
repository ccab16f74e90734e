"""The words of `batcher sandbox`: where it listens, what it knows, and the faults it injects."""

from __future__ import annotations

import argparse
from pathlib import Path

from batcher import defaults as sandbox
from batcher.cli.config import finite_number
from batcher.cli.option_parser import OptionParser


def add_sandbox_command(commands: argparse._SubParsersAction[OptionParser]) -> None:
    """The `sandbox` subcommand and its options."""
    box = commands.add_parser(
        "sandbox",
        help="run the local emulator of the API (writes and reads)",
        epilog="example:\n  batcher sandbox --port 8080\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    box.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    box.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    box.add_argument(
        "--registrations",
        type=Path,
        default=None,
        metavar="FILE",
        help="CSV of known registrations: event_id, track_id, registration_id and optionally registration_status, "
        "first_name, last_name, email_address, payment_status, registration_time, tickets, total, headers matched "
        "as the input's (a `batcher export` file works); default: the sample event shipped with batcher",
    )
    box.add_argument("--token", default=sandbox.SANDBOX_TOKEN, help="bearer token the sandbox accepts")
    box.add_argument(
        "--rate-limit",
        type=int,
        default=sandbox.DEFAULT_RATE_LIMIT_PER_S,
        metavar="N",
        help="answer 429 past N requests in any one second, 0 for no limit (default 4)",
    )
    box.add_argument(
        "--latency-ms",
        default="0",
        metavar="MIN[,MAX]",
        help="delay each answer by a uniform MIN..MAX milliseconds (default 0)",
    )
    box.add_argument(
        "--max-page-size",
        type=_at_least_one,
        default=sandbox.DEFAULT_MAX_PAGE_SIZE,
        metavar="N",
        help="a registrations list page holds at most N records whatever limit asks (default 50)",
    )
    logins = box.add_argument_group(
        f"logins (the device flow at {sandbox.DEVICE_PATH}, approved at {sandbox.ACTIVATE_PATH}; "
        f"client ID {sandbox.SANDBOX_CLIENT_ID})"
    )
    logins.add_argument(
        "--auto-approve-after",
        type=int,
        default=None,
        metavar="N",
        help="approve a login by itself after N polls of the token endpoint (default: only at the page)",
    )
    logins.add_argument(
        "--device-interval",
        type=int,
        default=5,
        metavar="SEC",
        help="the polling interval the device authorization asks for (default 5)",
    )
    faults = box.add_argument_group("fault injection (fractions of requests, 0..1; nothing is applied)")
    faults.add_argument("--error-rate", type=_fraction, default=0.0, metavar="F", help="answer 500 or 503")
    faults.add_argument("--html-errors", action="store_true", help="5xx answers carry an HTML page, as proxies send")
    faults.add_argument("--reset-rate", type=_fraction, default=0.0, metavar="F", help="drop the connection unanswered")
    faults.add_argument("--stall-rate", type=_fraction, default=0.0, metavar="F", help="answer only after --stall-s")
    faults.add_argument(
        "--stall-s", type=finite_number, default=30.0, metavar="SEC", help="length of a stall (default 30)"
    )
    faults.add_argument("--throttle-rate", type=_fraction, default=0.0, metavar="F", help="answer 429 throttled")
    faults.add_argument("--retry-after", default=None, metavar="VALUE", help="Retry-After header on 429 and 5xx")
    faults.add_argument(
        "--daily-quota", type=int, default=None, metavar="N", help="answer 429 quota_exceeded after N requests"
    )
    faults.add_argument(
        "--token-expires-after",
        type=int,
        default=None,
        metavar="N",
        help=f"the access token stops working after N requests; refresh at {sandbox.TOKEN_PATH} "
        f"with client_id {sandbox.SANDBOX_CLIENT_ID} "
        f"and refresh_token {sandbox.SANDBOX_REFRESH_TOKEN} (rotating)",
    )
    faults.add_argument("--seed", type=int, default=None, metavar="N", help="seed of the fault generator")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # nan is refused too: no comparison holds for it
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 1, got {text!r}")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value
