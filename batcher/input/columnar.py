"""Column helpers over pyarrow string columns: distinct values, codes, lengths, flags, lazily made Python strings.

Pure array work for the row rules and the results file; no rule about what a value means lives here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from typing import overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

# A column whose first rows are mostly distinct (registration IDs, e-mail addresses) is kept value by value;
# any other is dictionary-encoded, so that each check runs once per distinct value.
_SAMPLE_ROWS = 4096
_DISTINCT_SHARE = 0.25
_MAX_CODE = 1 << 62
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)

Strings = npt.NDArray[np.object_]
Codes = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]


class _NoPandasYet:
    """A finder that refuses pandas: pyarrow's first conversion looks it up only to recognise pandas objects."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if name == "pandas":
            raise ImportError("pyarrow's look-up of pandas, spared")
        return None


def _spare_pandas_import() -> None:
    """Let pyarrow's one look-up of pandas find none, unless pandas is loaded already.

    pyarrow imports pandas (about 0.3 s, half of a small `batcher plan`) on its first conversion of Python or
    numpy values, only to tell pandas objects apart; batcher never hands it one. The look-up is made once and
    remembered, so it is made here with pandas out of reach. `import pandas` works as usual afterwards (the
    careful CSV reader and the reports use it directly).
    """
    if "pandas" in sys.modules:
        return
    finder = _NoPandasYet()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([], type=pa.string()).to_numpy(zero_copy_only=False)
    finally:
        sys.meta_path.remove(finder)


_spare_pandas_import()


class Columns(Sequence[Strings]):
    """An input's columns as written, each made into an array of Python strings when first used.

    `plan` never needs them, and a column of a million strings costs a tenth of a second and tens of megabytes.
    Indexing, negative indexes, slices, iteration and len() behave as on a tuple of arrays.
    """

    __slots__ = ("_columns", "_made")

    def __init__(self, columns: Sequence[pa.ChunkedArray]) -> None:
        self._columns = list(columns)
        self._made: dict[int, Strings] = {}

    def __len__(self) -> int:
        return len(self._columns)

    @overload
    def __getitem__(self, index: int) -> Strings: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Strings, ...]: ...

    def __getitem__(self, index: int | slice) -> Strings | tuple[Strings, ...]:
        if isinstance(index, slice):
            return tuple(self[position] for position in range(len(self))[index])
        position = range(len(self))[index]  # negative indexes; IndexError past the end
        if position not in self._made:
            self._made[position] = written(self._columns[position])
        return self._made[position]

    def __repr__(self) -> str:
        return f"<{len(self)} input columns, {len(self._made)} made>"

    def arrow(self, position: int) -> pa.ChunkedArray:
        """A column as pyarrow holds it, for writers that never need Python strings."""
        return self._columns[position]


def written(values: pa.ChunkedArray) -> Strings:
    """Every row's value as written, as Python strings; equal values of a repetitive column share one string."""
    column = encode(values)
    return np.asarray(column.per_row(strings(column.distinct)), dtype=object)


@dataclass(frozen=True, slots=True)
class Column:
    """One column as its distinct values: row i holds distinct[index[i]], or distinct[i] when index is None."""

    distinct: pa.ChunkedArray  # values as written
    index: npt.NDArray[np.int32] | None

    def per_row(self, per_value: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return per_value if self.index is None else per_value[self.index]


def encode(values: pa.ChunkedArray) -> Column:
    """The column as distinct values plus an index, unless its values look mostly distinct."""
    sample = values.slice(0, _SAMPLE_ROWS)
    if pc.count_distinct(sample).as_py() > _DISTINCT_SHARE * len(sample):
        return Column(values, None)
    encoded = values.dictionary_encode().combine_chunks()  # the chunks share one dictionary
    return Column(pa.chunked_array([encoded.dictionary], type=values.type), indices(encoded))


def strings(values: pa.ChunkedArray) -> Strings:
    """The values as an array of Python strings (pyarrow's conversion: twice as fast as going through a list)."""
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


def flags(values: pa.ChunkedArray) -> Flags:
    """A boolean column (nulls false) as a numpy array."""
    return np.asarray(values.fill_null(False).to_numpy(), dtype=np.bool_)


def byte_lengths(values: pa.ChunkedArray) -> npt.NDArray[np.int32]:
    """The length of each string in bytes (of UTF-8)."""
    return np.asarray(pc.binary_length(values).to_numpy(), dtype=np.int32)


def fullmatch(values: pa.ChunkedArray, pattern: str) -> Flags:
    """Which values the regular expression matches whole."""
    return flags(pc.match_substring_regex(values, f"^({pattern})$"))


def codes_of(values: pa.ChunkedArray) -> Codes:
    """Dense codes, equal for equal values."""
    return np.asarray(indices(values.dictionary_encode().combine_chunks()), dtype=np.int64)


def indices(encoded: pa.DictionaryArray) -> npt.NDArray[np.int32]:
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int32)


def surely_distinct(values: pa.ChunkedArray) -> bool:
    """True when no two values are equal, proven by a hash; False when unsure.

    Kept by hand: values of one length (registration IDs) are hashed 4 bytes at a time with array operations and
    sorted, several times faster than pyarrow's count_distinct or pandas' factorize on a million IDs."""
    hashes: list[npt.NDArray[np.uint64]] = []
    for chunk in (chunk for chunk in values.chunks if len(chunk)):
        words = _fixed_width_words(chunk)
        if words is None:
            return False
        hashed = np.zeros(len(words), dtype=np.uint64)
        for position in range(words.shape[1]):
            hashed *= _HASH_MULTIPLIER
            hashed += words[:, position]
        hashes.append(hashed)
    ordered = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.uint64)
    return bool(np.all(ordered[1:] != ordered[:-1]))


def _fixed_width_words(chunk: pa.StringArray) -> npt.NDArray[np.uint32] | None:
    """The chunk's values as rows of 32-bit words, if they all have one length, a multiple of 4 bytes."""
    if chunk.null_count:
        return None
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=len(chunk) + 1, offset=chunk.offset * 4)
    width = int(offsets[1] - offsets[0])
    if width == 0 or width % 4 or not np.all(np.diff(offsets) == width):
        return None
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8, count=width * len(chunk), offset=int(offsets[0]))
    return data.view(np.uint32).reshape(len(chunk), width // 4)


def combine(high: Codes, low: Codes) -> Codes:
    """One code per distinct (high, low) pair."""
    if not len(low):
        return high.copy()
    span = int(low.max()) + 1
    combined = dense(high) if int(high.max()) >= _MAX_CODE // span else high.copy()
    combined *= span  # in place: a million-row temporary less
    combined += low
    return combined


def dense(codes: Codes) -> Codes:
    """Codes renumbered 0, 1, 2, ... in order of first appearance."""
    return np.asarray(pc.dictionary_encode(pa.array(codes)).indices, dtype=np.int64)
