"""The shared values: a status is spelled the API's way in one place."""

from __future__ import annotations

import pytest

from batcher.models import KNOWN_STATUSES, canonical_status, status_words


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("CANCELED", "CANCELED"),
        ("cancelled", "CANCELED"),
        ("  Cancelled ", "CANCELED"),
        ("registered", "REGISTERED"),
        ("in_progress", "IN_PROGRESS"),
        ("nonsense", "NONSENSE"),  # not known: the caller says so, with its own option's name
    ],
)
def test_a_status_is_trimmed_upper_cased_and_its_alias_spelled_the_api_way(written: str, canonical: str) -> None:
    assert canonical_status(written) == canonical


def test_a_comma_list_of_statuses_leaves_out_empty_items() -> None:
    assert status_words(" registered, cancelled ,,pending") == ["REGISTERED", "CANCELED", "PENDING"]
    assert status_words(" , ") == []
    assert set(status_words(",".join(KNOWN_STATUSES).lower())) == set(KNOWN_STATUSES)
