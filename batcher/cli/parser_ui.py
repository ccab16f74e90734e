"""The words of `batcher ui`: the local page and where it sends."""

from __future__ import annotations

import argparse
from pathlib import Path

from batcher.cli.option_parser import OptionParser
from batcher.cli.parser_login import add_profile_option

UI_OPTIONS = ("base_url", "state_dir", "token_file", "profile")  # resolved as run's (flag, environment, config file)


def add_ui_command(commands: argparse._SubParsersAction[OptionParser]) -> None:
    """The `ui` subcommand and its options."""
    ui = commands.add_parser(
        "ui",
        help="open a page in the browser that walks through a change: file, preview, send, results, undo",
        epilog="examples:\n  batcher ui --sandbox            # rehearse on a local sandbox\n"
        "  batcher ui --port 8765 --no-browser\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    ui.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    ui.add_argument("--no-browser", action="store_true", default=False, help="print the address; open no browser")
    ui.add_argument(
        "--sandbox",
        action="store_true",
        default=False,
        help="send to a local sandbox (the sample event) that lives as long as the page, not to the API",
    )
    add_profile_option(ui)
    ui.add_argument("--base-url", metavar="URL", help="API base URL (as run's --base-url)")
    ui.add_argument("--token-file", type=Path, metavar="PATH", help="as run's --token-file")
    ui.add_argument("--state-dir", type=Path, metavar="DIR", help="as run's --state-dir; the page's files go in DIR/ui")
    ui.add_argument("--config", type=Path, metavar="FILE", help="TOML file holding any run option")
