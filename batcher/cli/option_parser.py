"""An ArgumentParser that keeps what it is given: each option's words and their action, and its subcommands.

The config file, the environment, verify's and export's share of run's options and the option reference all read
the options from here, never from argparse's private lists.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast


@dataclass(frozen=True, slots=True)
class Defined:
    """One add_argument call: the words given to it, and the action it made."""

    names: tuple[str, ...]
    options: Mapping[str, Any]
    action: argparse.Action

    @property
    def long_flags(self) -> list[str]:
        return [name for name in self.names if name.startswith("--")]

    @property
    def is_list(self) -> bool:
        """Repeatable: each use adds a value (action="append")."""
        return self.options.get("action") == "append"


class OptionParser(argparse.ArgumentParser):
    """argparse's parser, keeping its options (in the order defined) and its subcommands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.defined: list[Defined] = []  # before argparse's own __init__, which adds --help
        self.subcommands: argparse._SubParsersAction[OptionParser] | None = None
        super().__init__(*args, **kwargs)

    def add_argument(self, *names: str, **options: Any) -> argparse.Action:
        action = super().add_argument(*names, **options)
        self.defined.append(Defined(names, options, action))
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        """A group of the help text; its options are kept as the parser's own."""
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument

        def add_kept(*names: str, **options: Any) -> argparse.Action:
            action = add(*names, **options)
            self.defined.append(Defined(names, options, action))
            return action

        setattr(group, "add_argument", add_kept)  # noqa: B010 - the group's own method, wrapped
        return group

    def add_commands(self, **kwargs: Any) -> argparse._SubParsersAction[OptionParser]:
        """The subcommands (add_subparsers), each an OptionParser, kept for commands()."""
        self.subcommands = self.add_subparsers(parser_class=OptionParser, **kwargs)
        return self.subcommands

    def commands(self) -> dict[str, OptionParser]:
        """Each subcommand's name and parser, in the order added."""
        if self.subcommands is None:
            return {}
        return dict(cast("Mapping[str, OptionParser]", self.subcommands.choices))

    def long_flags(self) -> list[str]:
        """Every long flag this parser accepts (--help, and the --no- forms, too)."""
        return [flag for each in self.defined for flag in each.action.option_strings if flag.startswith("--")]

    def given(self, args: argparse.Namespace) -> list[tuple[str, str | None]]:
        """The long options args holds, as (flag, value written back as text), in the order given; a switch's value
        is None (its --no- form names False). With argument_default SUPPRESS, args holds only the options given."""
        first: dict[str, Defined] = {}
        for each in self.defined:
            if each.long_flags:
                first.setdefault(each.action.dest, each)
        found: list[tuple[str, str | None]] = []
        for dest, value in vars(args).items():
            defined = first.get(dest)
            if defined is None or value is None:  # None: not given (a switch whose default says "the server's")
                continue
            flag = defined.long_flags[0]
            if defined.action.nargs == 0:
                found.append((flag if value else opposite(flag), None))
            elif defined.is_list:
                found.extend((flag, as_text(item)) for item in value)
            else:
                found.append((flag, as_text(value)))
        return found

    def share(self, other: OptionParser, dests: tuple[str, ...]) -> None:
        """Define here, with the same words, the options of other whose dest is one of dests."""
        for defined in other.defined:
            if defined.action.dest in dests:
                self.add_argument(*defined.names, **{"default": other.argument_default, **defined.options})


def opposite(flag: str) -> str:
    """--x for --no-x, and --no-x for --x."""
    return "--" + flag.removeprefix("--no-") if flag.startswith("--no-") else "--no-" + flag.removeprefix("--")


def as_text(value: object) -> str:
    """A converted option value written back as a flag takes it (4.0 as 4)."""
    return f"{value:g}" if isinstance(value, float) else str(value)
