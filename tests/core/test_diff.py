import datetime as dt

import polars as pl

from pipelines.core.diff import count_changes, diff_papers


def papers(rows: list[tuple[str, str, list[str]]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"paper_id": pl.String, "title": pl.String, "topics": pl.List(pl.String)},
        orient="row",
    )


BEFORE = papers(
    [
        ("a", "Alpha", ["nlp"]),
        ("b", "Beta", ["vision"]),
        ("c", "Gamma", ["audio"]),
        ("d", "Delta", ["nlp"]),
    ]
)


def test_added_removed_and_updated_papers_with_the_columns_that_changed():
    after = papers(
        [
            ("a", "Alpha", ["nlp"]),  # unchanged
            ("b", "Beta", ["vision", "robotics"]),  # a list column changed
            ("c", "Gamma (revised)", ["audio"]),
            ("e", "Epsilon", ["nlp"]),
        ]
    )
    changes = diff_papers(BEFORE, after)
    assert changes.rows() == [
        ("added", "e", "Epsilon", None),
        ("updated", "b", "Beta", "topics"),
        ("updated", "c", "Gamma (revised)", "title"),
        ("removed", "d", "Delta", None),
    ]
    assert count_changes(changes) == {"papers_added": 1, "papers_updated": 2, "papers_removed": 1}


def test_identical_releases_have_no_changes():
    assert diff_papers(BEFORE, BEFORE.reverse()).is_empty()


def test_a_column_whose_type_changed_counts_as_changed_for_every_paper():
    after = BEFORE.with_columns(pl.col("topics").list.join(","))
    changes = diff_papers(BEFORE, after)
    assert changes["change"].to_list() == ["updated"] * 4
    assert set(changes["changed_columns"]) == {"topics"}


def test_against_no_papers_every_paper_is_added_as_a_comparison_finds():
    empty = BEFORE.clear()
    shuffled = BEFORE.reverse()
    assert diff_papers(empty, shuffled).rows() == [
        ("added", "a", "Alpha", None),
        ("added", "b", "Beta", None),
        ("added", "c", "Gamma", None),
        ("added", "d", "Delta", None),
    ]
    # The same rows as the comparison gives when there is something to compare with.
    one = BEFORE.head(1).with_columns(paper_id=pl.lit("z"))
    compared = diff_papers(one, shuffled).filter(pl.col("change") == "added")
    assert diff_papers(empty, shuffled).equals(compared)


def test_with_first_seen_each_change_has_the_earliest_first_seen_before_or_after():
    day = [dt.date(2026, 3, d) for d in range(1, 6)]
    before = BEFORE.with_columns(first_seen=pl.Series(day[1:5]))  # a: 2nd ... d: 5th
    after = before.filter(pl.col("paper_id") != "d").with_columns(
        # b now first seen earlier, c later; e is new
        first_seen=pl.Series([day[1], day[0], day[4]]),
        topics=pl.Series([["nlp"], ["vision"], ["audio", "speech"]]),
    )
    after = pl.concat(
        [after, papers([("e", "Epsilon", ["nlp"])]).with_columns(first_seen=pl.lit(day[3]))]
    )
    changes = diff_papers(before, after, with_first_seen=True)
    assert changes.select("change", "paper_id", "first_seen").rows() == [
        ("added", "e", day[3]),
        ("updated", "b", day[0]),  # the earlier of the two
        ("updated", "c", day[3]),
        ("removed", "d", day[4]),
    ]
    # Without it, the same rows, as a release's changelog records them.
    assert diff_papers(before, after).equals(changes.drop("first_seen"))
    first = diff_papers(before.clear(), after, with_first_seen=True)
    assert first["first_seen"].to_list() == after["first_seen"].to_list()
