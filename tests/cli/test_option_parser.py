"""The parser that keeps its options: what the config file, the environment and the reference read."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from batcher.cli.config import option_specs
from batcher.cli.option_parser import OptionParser
from batcher.cli.parser import build_parser, summary_path


def small() -> OptionParser:
    parser = OptionParser(prog="x", add_help=False, argument_default=argparse.SUPPRESS)
    parser.add_argument("--size", type=int)
    parser.add_argument("--column", action="append")
    parser.add_argument("--quiet", action=argparse.BooleanOptionalAction)
    group = parser.add_argument_group("faults")
    group.add_argument("--error-rate", type=float)
    return parser


def test_every_option_is_kept_with_its_words_groups_included() -> None:
    specs = option_specs(small())
    assert [(spec.dest, spec.flag, spec.is_switch, spec.is_list) for spec in specs.values()] == [
        ("size", "--size", False, False),
        ("column", "--column", False, True),
        ("quiet", "--quiet", True, False),
        ("error_rate", "--error-rate", False, False),
    ]
    assert specs["size"].convert is int


def test_shared_options_parse_as_in_their_own_parser() -> None:
    parser = OptionParser(prog="y")
    parser.share(small(), ("size", "quiet"))
    assert vars(parser.parse_args(["--size", "3", "--no-quiet"])) == {"size": 3, "quiet": False}
    assert vars(parser.parse_args([])) == {}  # not given: left to the config file, the environment, the default


def test_each_subcommand_keeps_its_own_options() -> None:
    commands = build_parser().commands()
    assert set(commands) >= {"run", "plan", "undo", "report", "verify", "export", "sandbox"}
    flags = {name: {flag for defined in sub.defined for flag in defined.long_flags} for name, sub in commands.items()}
    assert {"--batch-size", "--snapshot", "--no-progress", "--progress"} <= flags["run"]
    assert "--rate" in flags["verify"] and "--batch-size" not in flags["verify"]  # run's share, no more
    assert "--error-rate" in flags["sandbox"]  # an option of a help group


@pytest.mark.parametrize(
    ("words", "path"),
    [
        (["run", "in.csv", "--summary-json", "s.json", "--no-such-option"], "s.json"),
        (["run", "--summary-json=s.json", "--batch-size", "many"], "s.json"),
        (["run", "in.csv", "--summary-json"], None),  # no value: nothing to write to
        (["run", "in.csv", "--bogus"], None),
        (["run", "--summary-json", "a.json", "--summary-json", "b.json"], "b.json"),  # as argparse reads it: the last
    ],
)
def test_a_refused_command_line_still_names_its_summary_json(words: list[str], path: str | None) -> None:
    assert summary_path(words) == (Path(path) if path else None)


def test_the_options_given_are_written_back_in_the_order_given() -> None:
    parser = build_parser()
    words = ["run", "--column", "event_id=Event", "in put.csv", "--rate", "4", "--no-snapshot", "-y"]
    words += ["--column", "track_id=Track", "--progress", "--batch-size", "2"]
    args = parser.parse_args(words)
    assert parser.commands()["run"].given(args) == [
        ("--column", "event_id=Event"),
        ("--column", "track_id=Track"),  # a repeated option, by its dest's first place
        ("--rate", "4"),  # 4.0 written as typed
        ("--no-snapshot", None),
        ("--yes", None),
        ("--progress", None),  # the False of --no-progress
        ("--batch-size", "2"),
    ]
