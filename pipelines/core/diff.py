"""What changed in `papers` between two releases."""

from __future__ import annotations

import polars as pl

from pipelines.core.frames import sorted_by
from pipelines.core.hashing import row_hashes

DIFF_COLUMNS = {
    "change": pl.String,
    "paper_id": pl.String,
    "title": pl.String,
    "changed_columns": pl.String,
}


def unchanged(papers: pl.DataFrame, previous: pl.DataFrame, columns: list[str]) -> pl.Series:
    """Whether each paper of `papers` is in `previous` (papers, a row per paper_id) with
    the same values in `columns`. One join on the id and a row-by-row comparison: joining
    on the texts themselves cost twice as much (2.0 s against 0.9 s at 540,000 papers)."""
    before = previous.select("paper_id", *columns).rename({c: f"{c}__before" for c in columns})
    same = pl.all_horizontal(pl.col(c) == pl.col(f"{c}__before") for c in columns)
    return (
        papers.select("paper_id", *columns)
        .join(before, on="paper_id", how="left", maintain_order="left")
        .select(same.fill_null(False))
        .to_series()
    )


def diff_papers(
    before: pl.DataFrame, after: pl.DataFrame, with_first_seen: bool = False
) -> pl.DataFrame:
    """One row per paper added, removed or updated, with the columns that changed
    (comma-separated; only columns present in both releases are compared, and a column
    whose type changed counts as changed). `with_first_seen`: and the paper's earliest
    first_seen, before or after (publishing rewrites the papers from the earliest one)."""
    if before.height == 0:  # a first release: every paper added, none compared
        added = after.select(
            change=pl.lit("added"),
            paper_id="paper_id",
            title="title",
            changed_columns=pl.lit(None, pl.String),
            **({"first_seen": pl.col("first_seen")} if with_first_seen else {}),
        ).cast(DIFF_COLUMNS)
        # Papers come in id order: not sorted again, their titles are not copied (at
        # 10,000 digests, 50 MB held while the release is written).
        return sorted_by(added, ["paper_id"])
    shared = [c for c in after.columns if c in before.columns and c != "paper_id"]
    retyped = {c for c in shared if before.schema[c] != after.schema[c]}
    if shared and not retyped:
        # Most papers are the same row in both: set them aside by their row hashes, so the
        # column-by-column comparison runs only over what was added, removed or changed.
        hashed = [
            frame.select("paper_id", row_hash=row_hashes(frame.select(shared)))
            for frame in (before, after)
        ]
        same = hashed[0].join(hashed[1], on=["paper_id", "row_hash"]).select("paper_id")
        before = before.join(same, on="paper_id", how="anti")
        after = after.join(same, on="paper_id", how="anti")
    joined = before.join(after, on="paper_id", how="full", coalesce=True, suffix="__after")
    in_before = pl.col("title").is_not_null()
    in_after = pl.col("title__after").is_not_null()
    earliest = pl.min_horizontal("first_seen", "first_seen__after")  # null only if neither
    changed = pl.concat_list(
        [
            pl.lit(c)
            if c in retyped
            else pl.when(pl.col(c).ne_missing(pl.col(f"{c}__after"))).then(pl.lit(c))
            for c in shared
        ]
    ).list.drop_nulls()
    result = joined.select(
        change=pl.when(~in_before)
        .then(pl.lit("added"))
        .when(~in_after)
        .then(pl.lit("removed"))
        .when(changed.list.len() > 0)
        .then(pl.lit("updated")),
        paper_id="paper_id",
        title=pl.coalesce("title__after", "title"),
        changed_columns=pl.when(in_before & in_after).then(changed.list.join(", ")),
        **({"first_seen": earliest} if with_first_seen else {}),
    )
    order = pl.col("change").replace_strict({"added": 0, "updated": 1, "removed": 2}, default=3)
    return result.filter(pl.col("change").is_not_null()).sort(order, "paper_id").cast(DIFF_COLUMNS)


def count_changes(changes: pl.DataFrame) -> dict[str, int]:
    """{"papers_added": n, "papers_updated": n, "papers_removed": n} of a diff."""
    counts = dict(changes.group_by("change").len().iter_rows())
    return {f"papers_{c}": counts.get(c, 0) for c in ("added", "updated", "removed")}
