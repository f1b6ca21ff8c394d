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
