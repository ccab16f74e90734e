"""Headers that look like a key column but do not match one: a typo such as "registraton_id" or "Track".

A column batcher does not match is simply not read, so a mistyped ID or track header would otherwise send every
row down another path (people by email, the default track) with no word about it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from batcher.support.csvtext import normalize_header

# the fields whose header a typo hides, with the header keys (see normalize_header) a typo is measured against
KEY_FIELDS = {
    "event_id": ("eventid", "event"),
    "track_id": ("trackid", "track"),
    "registration_id": ("registrationid", "registration"),
}
MAX_TYPOS = 2  # edits (insert, delete, replace) that still read as a typo of a key


def lookalike(header: Sequence[str], field: str, claimed: Collection[int]) -> str | None:
    """The first header not matched to any field that reads as a typo of field's header, or None."""
    keys = KEY_FIELDS.get(field, ())
    for position, name in enumerate(header):
        key = normalize_header(name)
        if position in claimed or not key:
            continue
        if any(_distance(key, wanted) <= min(MAX_TYPOS, len(wanted) // 3) for wanted in keys):
            return name
    return None


def lookalikes(header: Sequence[str], found: Mapping[str, int]) -> dict[str, str]:
    """Every key field without a column, mapped to the header that looks like it (when one does)."""
    claimed = set(found.values())
    named: dict[str, str] = {}
    for field in KEY_FIELDS:
        if field in found:
            continue
        name = lookalike(header, field, claimed)
        if name is not None:
            named[field] = name
            claimed.add(header.index(name))
    return named


def _distance(left: str, right: str) -> int:
    """Levenshtein distance of two short strings."""
    previous = list(range(len(right) + 1))
    for i, char in enumerate(left, start=1):
        current = [i]
        for j, other in enumerate(right, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]
