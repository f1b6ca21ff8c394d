"""Helpers for frames too big to transform in one piece."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import polars as pl

ROWS_PER_SLICE = 20_000
# A filter keeping rows that lie in at most this many runs is made of slices instead.
MAX_SLICES = 1_000


def by_slices(
    frame: pl.DataFrame,
    step: Callable[[pl.DataFrame], pl.DataFrame],
    rows: int = ROWS_PER_SLICE,
) -> pl.DataFrame:
    """`step` applied to `rows` rows of `frame` at a time, the results concatenated.

    Text rules that rewrite every text (a regex replace after another) make a new copy of
    the column at each step: a slice at a time holds one slice's copies, not the whole
    column's. The matching keys of the 64,379 entries of 1,000 digests took 554 MB more at
    their peak in one piece, 195 MB in slices of 10,000, and no more time."""
    if frame.height <= rows:
        return step(frame)
    return pl.concat(
        [step(frame.slice(start, rows)) for start in range(0, frame.height, rows)],
        how="vertical",
    )


def filtered(frame: pl.DataFrame, keep: pl.Series) -> pl.DataFrame:
    """`frame.filter(keep)` (null keeps no row). When the rows kept lie in at most
    MAX_SLICES runs, as when a few rows of a big frame are left out, it is made of slices
    of `frame`, which share its buffers rather than copy the rows kept (their lists, and a
    view of each string: at 10,000 digests, 144 MB for all but 500 of the papers)."""
    runs = keep.fill_null(False).rle()
    if runs.len() > 2 * MAX_SLICES:
        return frame.filter(keep)
    lengths = runs.struct.field("len").to_list()
    pieces, start = [], 0
    for length, kept in zip(lengths, runs.struct.field("value").to_list(), strict=True):
        if kept:
            pieces.append(frame.slice(start, length))
        start += length
    return pl.concat(pieces, how="vertical") if pieces else frame.clear()


def among(frame: pl.DataFrame, column: str, values: pl.Series) -> pl.Series:
    """Whether each row's `column` is one of `values` (a null is not): `is_in` by a semi
    join, which takes a third of the time when `values` are many strings (541,222 paper
    ids among as many: 0.09-0.10 s against 0.18-0.31 s; the same for a few)."""
    rows = (
        frame.select(column)
        .with_row_index("_row")
        .join(values.rename(column).to_frame(), on=column, how="semi")["_row"]
    )
    return (
        pl.Series(column, [False], pl.Boolean).new_from_index(0, frame.height).scatter(rows, True)
    )


def in_key_order(frame: pl.DataFrame, key: list[str]) -> bool:
    """Whether `frame`'s rows are in ascending order of `key` (ties allowed): one pass,
    where sorting would copy every column."""
    if frame.height < 2:
        return True
    ahead, tied = pl.lit(False), pl.lit(True)
    for column in key:
        now, before = pl.col(column), pl.col(column).shift()
        ahead, tied = ahead | (tied & (now > before)), tied & (now == before)
    return frame.select((ahead | tied).slice(1).fill_null(False).all()).item()


def sorted_by(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """`frame` in `key` order: itself when it is in that order already, as a build's papers
    usually are. Sorting copies every column's rows (the lists, and a view of each string:
    at 10,000 digests, 190 MB of papers beside the frame sorted)."""
    return frame if in_key_order(frame, key) else frame.sort(key)


def merged_in_order(ordered: pl.DataFrame, other: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """`ordered` and `other` in `key` order, where no first key value is in both. When
    `ordered` is in that order already (as a table read back usually is) the two are
    merged, not sorted: 273,621 related papers 0.011 s against 0.039 s."""
    if not in_key_order(ordered, key):
        return pl.concat([ordered, other], how="vertical").sort(key)
    first = key[0]
    return ordered.with_columns(pl.col(first).set_sorted()).merge_sorted(
        other.sort(key).with_columns(pl.col(first).set_sorted()), first
    )


class FrameMemo:
    """A value known of each frame, while the frame lives: remembered by the frame object,
    not its id alone (a later frame may be given a dead one's id). Frames are never
    changed in place here, so what holds for a frame holds for its life."""

    def __init__(self) -> None:
        self._values: dict[int, tuple[weakref.ref, object]] = {}

    def remember(self, frame: pl.DataFrame | pl.LazyFrame, value: object) -> None:
        frame_id = id(frame)
        alive = weakref.ref(frame, lambda _: self._values.pop(frame_id, None))
        self._values[frame_id] = (alive, value)

    def recall(self, frame: pl.DataFrame | pl.LazyFrame) -> object | None:
        known = self._values.get(id(frame))
        return known[1] if known is not None and known[0]() is frame else None


# The row counts of LazyFrames known without reading them (papers kept by reference: those
# kept and those made). Counted, the papers of 1,000 digests took 0.02 s.
_heights = FrameMemo()


def remember_height(frame: pl.LazyFrame, n_rows: int) -> None:
    _heights.remember(frame, n_rows)


def height_of(frame: pl.DataFrame | pl.LazyFrame) -> int:
    """The rows of a frame: a LazyFrame's as remembered, else counted."""
    if isinstance(frame, pl.DataFrame):
        return frame.height
    known = _heights.recall(frame)
    return known if known is not None else frame.select(pl.len()).collect().item()
