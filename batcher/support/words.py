"""Counts in the messages: one way to write a number (thousands separators) and a word's plural."""

from __future__ import annotations


def number(count: int) -> str:
    """1234567 as '1,234,567': every count a message shows."""
    return f"{count:,}"


def plural(count: int, word: str, many: str = "") -> str:
    """'1 request', '2 requests', '1,200 rows'; many: a plural that is not word + 's' ('1 entry', '2 entries')."""
    return f"{number(count)} {word if count == 1 else many or word + 's'}"
