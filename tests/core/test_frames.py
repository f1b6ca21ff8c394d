import polars as pl

from pipelines.core.frames import by_slices


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
