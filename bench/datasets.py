"""The bench's generated inputs: an input CSV of shuffled rows per (event, track) group, and the sandbox's file.

Built with array operations (numpy and pyarrow), so that a million rows take a second or two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

from batcher.sandbox import app as sandbox

MILLION = 1_000_000
EVENTS, TRACKS = 50, 4  # 200 (event, track) groups
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")


def uuids(rng: np.random.Generator, count: int) -> pa.Array:
    """count random version-4 UUIDs as strings, built with array operations."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    digits = np.empty((count, 32), dtype=np.uint8)
    digits[:, 0::2] = hex_digits[raw >> 4]
    digits[:, 1::2] = hex_digits[raw & 0x0F]
    text = np.full((count, 36), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at : at + stop - start] = digits[:, start:stop]
    return pa.array(text.reshape(-1).view("S36"), type=pa.binary(36)).cast(pa.string())


def track_keys(count: int) -> list[str]:
    return [f"trk{number}x" for number in range(count)]


@dataclass(frozen=True)
class Dataset:
    input_path: Path
    registrations_path: Path
    rows: int
    group_sizes: list[int]  # distinct registrations per (event, track), in group order


def write_dataset(
    directory: Path,
    name: str,
    group_sizes: Sequence[int],
    *,
    seed: int,
    extra_columns: bool = True,
    duplicates: int = 0,
    people: bool = False,
    canceled_share: float = 0.0,
    listed: Sequence[int] | None = None,
) -> Dataset:
    """An input CSV whose (event, track) group g holds group_sizes[g] registrations, rows shuffled, every one
    CANCELED; plus the sandbox's registrations file (REGISTERED, or CANCELED for about canceled_share of them).

    duplicates: exact repeats appended to the input. people: the registrations file carries names and e-mail
    addresses too (for the reads, which list them). listed: how many of each group's registrations the input
    holds (default: all of them); the sandbox knows them all.
    """
    rng = np.random.default_rng(seed)
    groups = len(group_sizes)
    events = uuids(rng, math.ceil(groups / TRACKS)).to_numpy(zero_copy_only=False)
    tracks = np.array(track_keys(TRACKS), dtype=object)
    base_group = np.repeat(np.arange(groups), group_sizes)
    count = len(base_group)
    base_registration = uuids(rng, count).to_numpy(zero_copy_only=False)
    first = np.array(FIRST_NAMES, dtype=object)[np.arange(count) % len(FIRST_NAMES)]
    last = np.array(LAST_NAMES, dtype=object)[(np.arange(count) // len(FIRST_NAMES)) % len(LAST_NAMES)]
    emails = np.array([f"guest{number}@example.com" for number in range(count)], dtype=object)
    order = rng.permutation(count)
    if listed is not None:
        starts = np.repeat(np.cumsum([0, *group_sizes[:-1]]), group_sizes)
        order = order[(order - starts[order]) < np.repeat(listed, group_sizes)[order]]
    if duplicates:
        order = rng.permutation(np.concatenate([order, rng.choice(count, size=duplicates, replace=False)]))
    group_of_row, registration = base_group[order], base_registration[order]
    columns: dict[str, pa.Array] = {
        "event_id": pa.array(events[group_of_row // TRACKS], type=pa.string()),
        "track_id": pa.array(tracks[group_of_row % TRACKS], type=pa.string()),
        "registration_id": pa.array(registration, type=pa.string()),
        "registration_status": pa.array(np.full(len(order), "CANCELED", dtype=object), type=pa.string()),
    }
    if extra_columns:
        names = np.array([f"Event {number}" for number in range(len(events))], dtype=object)
        columns["event_name"] = pa.array(names[group_of_row // TRACKS], type=pa.string())
        columns["first_name"] = pa.array(first[order], type=pa.string())
        columns["last_name"] = pa.array(last[order], type=pa.string())
        columns["email"] = pa.array(emails[order], type=pa.string())
    input_path = directory / f"{name}.csv"
    _write_csv(pa.table(columns), input_path)
    statuses = np.where(rng.random(count) < canceled_share, "CANCELED", "REGISTERED").astype(object)
    known: dict[str, pa.Array] = {
        "event_id": pa.array(events[base_group // TRACKS], type=pa.string()),
        "track_id": pa.array(tracks[base_group % TRACKS], type=pa.string()),
        "registration_id": pa.array(base_registration, type=pa.string()),
        "registration_status": pa.array(statuses, type=pa.string()),
    }
    if people:
        known["first_name"] = pa.array(first, type=pa.string())
        known["last_name"] = pa.array(last, type=pa.string())
        known["email_address"] = pa.array(emails, type=pa.string())
    registrations_path = directory / f"{name}.registrations.csv"
    _write_csv(pa.table(known), registrations_path)
    return Dataset(input_path, registrations_path, len(order), list(group_sizes))


def _write_csv(table: pa.Table, path: Path) -> None:
    # plain values only (UUIDs, words, e-mail addresses): nothing needs quoting
    pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="none"))


def million_dataset(directory: Path) -> Dataset:
    """1,000,000 rows over 50 events x 4 tracks, with name and e-mail columns."""
    return write_dataset(directory, "million", [MILLION // (EVENTS * TRACKS)] * (EVENTS * TRACKS), seed=5)


def sandbox_rows(dataset: Dataset) -> list[sandbox.Registration]:
    return sandbox.read_registrations(dataset.registrations_path)
