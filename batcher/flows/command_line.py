"""A command as its options were given, which the resume command repeats."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

Given = tuple[str, str | None]  # an option as given on the command line: its flag, and its value (None: a switch)


@dataclass(frozen=True, slots=True)
class CommandLine:
    """A command as its options were given (each already converted, then written back as text by the front-end
    that read it): what the resume command repeats."""

    command: str  # run, plan or undo
    input: Path
    options: tuple[Given, ...] = ()

    def render(self, prog: str) -> str:
        words = [prog, self.command, str(self.input)]
        for flag, value in self.options:
            words += [flag] if value is None else [flag, value]
        return shlex.join(words)
