import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from pipelines.core import frames
from pipelines.core.frames import (
    by_slices,
    filtered,
    in_key_order,
    merged_in_order,
    sorted_by,
)


def test_by_slices_gives_what_one_piece_gives_a_slice_at_a_time():
    frame = pl.DataFrame({"n": range(10), "text": [f"t{n}  x" for n in range(10)]})
    seen = []

    def step(rows: pl.DataFrame) -> pl.DataFrame:
        seen.append(rows.height)
        return rows.with_columns(key=pl.col("text").str.replace_all(r"\s+", " "))

    whole = step(frame)
    seen.clear()
    assert by_slices(frame, step, rows=3).equals(whole)
    assert seen == [3, 3, 3, 1]
    seen.clear()
    assert by_slices(frame.head(0), step, rows=3).equals(whole.head(0)) and seen == [0]


def test_among_is_is_in_by_a_join():
    import numpy as np

    from pipelines.core.frames import among

    frame = pl.DataFrame({"id": ["a", "b", "c", "b", None, "d"]})
    for values in (["b", "d", "x"], ["b", "b"], [], ["a", "b", "c", "d"]):
        # A null is among nothing (is_in says null).
        expected = frame.select(
            pl.col("id").is_in(pl.Series(values, dtype=pl.String).implode()).fill_null(False)
        )
        assert among(frame, "id", pl.Series(values, dtype=pl.String)).to_list() == (
            expected.to_series().to_list()
        )
    ids = pl.Series([f"p{i}" for i in np.random.default_rng(1).permutation(50_000)])
    many = pl.DataFrame({"id": ids})
    some = ids.sample(fraction=0.9, seed=2)
    assert among(many, "id", some).equals(many.select(pl.col("id").is_in(some.implode()))["id"])
    assert among(frame.head(0), "id", some).len() == 0


_ROWS = st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(0, 3)), max_size=12)


@given(rows=_ROWS)
def test_in_key_order_says_whether_sorting_would_change_the_rows(rows):
    frame = pl.DataFrame(rows, schema={"id": pl.String, "rank": pl.Int64}, orient="row")
    ordered = frame.sort("id", "rank", nulls_last=True)
    if in_key_order(frame, ["id", "rank"]):
        assert frame.equals(ordered)
    elif frame.null_count().sum_horizontal().item() == 0:  # nulls: never called in order
        assert not frame.equals(ordered)
    assert in_key_order(frame.sort("id", "rank").drop_nulls(), ["id", "rank"])


@given(rows=_ROWS, split=st.sets(st.sampled_from(["a", "b", "c"])), shuffled=st.booleans())
def test_merged_in_order_is_the_two_sorted(rows, split, shuffled):
    frame = pl.DataFrame(rows, schema={"id": pl.String, "rank": pl.Int64}, orient="row")
    frame = frame.drop_nulls().unique(maintain_order=True)
    one, other = frame.filter(pl.col("id").is_in(split)), frame.filter(~pl.col("id").is_in(split))
    one = one.sample(fraction=1.0, shuffle=True, seed=0) if shuffled else one.sort("id", "rank")
    merged = merged_in_order(one, other.reverse(), ["id", "rank"])
    assert merged.equals(frame.sort("id", "rank"))


def test_a_frame_in_order_is_sorted_as_itself_and_another_is_sorted():
    ordered = pl.DataFrame({"id": ["a", "b", "c"], "n": [3, 1, 2]})
    assert sorted_by(ordered, ["id"]) is ordered  # no copy of its rows
    shuffled = ordered.reverse()
    assert sorted_by(shuffled, ["id"]).equals(ordered)


@given(keep=st.lists(st.sampled_from([True, False, None]), max_size=30))
def test_filtered_is_a_filter(keep):
    frame = pl.DataFrame({"n": range(len(keep)), "text": [f"t{n}" for n in range(len(keep))]})
    mask = pl.Series(keep, dtype=pl.Boolean)
    assert filtered(frame, mask).equals(frame.filter(mask))


def test_a_filter_leaving_out_a_few_runs_of_rows_is_made_of_slices(monkeypatch):
    frame = pl.DataFrame({"n": range(100), "text": [f"t{n}" for n in range(100)]})
    keep = pl.Series([n not in (10, 11, 50) for n in range(100)])
    assert filtered(frame, keep).n_chunks() == 3  # rows 0-9, 12-49 and 51-99, not copied
    monkeypatch.setattr(frames, "MAX_SLICES", 2)
    assert filtered(frame, keep).n_chunks() == 1  # more runs than that: a filter copies them
    assert filtered(frame, keep).equals(frame.filter(keep))
