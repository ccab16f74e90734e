"""Which options a message may suggest: only those the command being run accepts.

A message built deep down (an input error, a stop of the API, a line of the plan) does not know which command it
serves; the command line does. It says which options its command accepts (`accepting`), and each hint that names
an option asks `offer` for it: the hint, or the words for a command without that option. Outside any command (the
library, a test of a stage) every option is offered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

_accepted: frozenset[str] | None = None  # None: every option (no command has said)


@contextmanager
def accepting(flags: Iterable[str]) -> Iterator[None]:
    """While the block runs, hints name only these options (long flags, e.g. "--resume")."""
    global _accepted  # noqa: PLW0603 - one command per process at a time, as the secrets registry
    before, _accepted = _accepted, frozenset(flags)
    try:
        yield
    finally:
        _accepted = before


def accepts(flag: str) -> bool:
    """Whether the command being run accepts flag."""
    return _accepted is None or flag in _accepted


def offer(flag: str, hint: str, otherwise: str = "") -> str:
    """hint, which names flag, if the command accepts flag; else otherwise."""
    return hint if accepts(flag) else otherwise


def rerun() -> str:
    """How to continue what a stop left: "re-run with --resume", or for a command without it, "run it again"."""
    return offer("--resume", "re-run with --resume", "run the command again")
