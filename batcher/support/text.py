"""Text from a server made safe to show: control characters (ANSI escapes, BEL, bidi overrides) written escaped.

A server's words reach the terminal, the results, the journal and the logs; a raw ESC could clear the screen or
fake a line, U+202E could reverse what a person reads. Each such character is shown as its escape (\\x1b, \\u202e).
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the invisible marks that reorder or hide text (bidi embeddings, overrides, isolates)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
# the same, but line breaks and tabs kept: for the lines batcher itself writes (a traceback in a log keeps its lines)
_UNSAFE_IN_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """text with every control or invisible formatting character escaped (tabs and line breaks too)."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def printable_lines(text: str) -> str:
    """printable, keeping tabs and line breaks: for text of batcher's own that may quote a server's."""
    return _UNSAFE_IN_LINES.sub(_escape, text) if _UNSAFE_IN_LINES.search(text) else text
