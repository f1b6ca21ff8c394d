"""Which entries are the same paper, and the paper's stable id.

A paper is identified by its folded title (NFKC, lower case, punctuation and
whitespace folding). Entries that share a folded title are one paper unless their
abstracts clearly differ. Ids already published are kept: new entries are matched
against the previous release's papers before any new id is minted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl
from rapidfuzz import fuzz

# Abstracts of one paper (a revision, a scraping difference) score well above this;
# two unrelated abstracts of similar length score around 40-55.
SAME_ABSTRACT_MIN_SIMILARITY = 75.0


def title_key_expr(column: str | pl.Expr) -> pl.Expr:
    """Folded title: NFKC, lower case, punctuation to space, single spaces."""
    expr = pl.col(column) if isinstance(column, str) else column
    return (
        expr.str.normalize("NFKC")
        .str.to_lowercase()
        .str.replace_all(r"\p{P}+", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def abstract_key_expr(column: str | pl.Expr) -> pl.Expr:
    expr = pl.col(column) if isinstance(column, str) else column
    return (
        expr.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()
    )


def fold_title(title: str) -> str:
    return pl.select(title_key_expr(pl.lit(title)))[0, 0]


def fold_abstract(abstract: str) -> str:
    return pl.select(abstract_key_expr(pl.lit(abstract)))[0, 0]


def mint_paper_id(title_key: str, abstract_key: str) -> str:
    """Id of a new paper, derived from its first-seen entry so that a fresh build from the
    same files mints the same ids whatever order the files landed in."""
    digest = hashlib.sha256(f"{title_key}\x1f{abstract_key}".encode()).hexdigest()
    return f"p{digest[:15]}"


@dataclass
class _Cluster:
    paper_id: str
    abstract_key: str  # the latest abstract seen: revisions are matched against it


def assign_paper_ids(entries: pl.DataFrame, known: pl.DataFrame) -> pl.DataFrame:
    """Add `paper_id`, `title_key` and `match_reason` to entries.

    entries: title, abstract, digest_date, position (any other columns are kept).
    known: paper_id, title_key, abstract of papers already published (may be empty).
    Entries are processed in (digest_date, position) order so results are deterministic.
    """
    entries = entries.with_columns(
        title_key=title_key_expr("title"), abstract_key=abstract_key_expr("abstract")
    ).sort("digest_date", "position", "digest_id")

    clusters: dict[str, list[_Cluster]] = {}
    known = known.select("paper_id", "title_key", abstract_key=abstract_key_expr("abstract"))
    for paper_id, title_key, abstract_key in known.sort("paper_id").iter_rows():
        clusters.setdefault(title_key, []).append(_Cluster(paper_id, abstract_key))
    taken = {c.paper_id for group in clusters.values() for c in group}

    # Each distinct (title, abstract) pair is matched once, in order of first appearance.
    pairs = entries.select("title_key", "abstract_key").unique(maintain_order=True)
    ids: list[str] = []
    for title_key, abstract_key in pairs.iter_rows():
        group = clusters.setdefault(title_key, [])
        match = _best_match(group, abstract_key)
        if match is None:
            paper_id = mint_paper_id(title_key, abstract_key)
            while paper_id in taken:  # a 60-bit collision: astronomically rare, still handled
                paper_id = mint_paper_id(title_key, abstract_key + paper_id)
            taken.add(paper_id)
            group.append(_Cluster(paper_id, abstract_key))
        else:
            match.abstract_key = abstract_key
            paper_id = match.paper_id
        ids.append(paper_id)
    pairs = pairs.with_columns(paper_id=pl.Series(ids, dtype=pl.String))
    # The reason depends only on the result, never on what was published before, so a
    # rebuild from the same files gives the same rows.
    first = pl.col("abstract_key").first().over("paper_id", order_by=["digest_date", "position"])
    return (
        entries.join(pairs, on=["title_key", "abstract_key"], how="left", maintain_order="left")
        .with_columns(
            match_reason=pl.when(pl.int_range(pl.len()).over("paper_id") == 0)
            .then(pl.lit("first_seen"))
            .when(pl.col("abstract_key") == first)
            .then(pl.lit("exact"))
            .otherwise(pl.lit("title+similar_abstract"))
        )
        .drop("abstract_key")
    )


def _best_match(group: list[_Cluster], abstract_key: str) -> _Cluster | None:
    for cluster in group:
        if cluster.abstract_key == abstract_key:
            return cluster
    best, best_score = None, SAME_ABSTRACT_MIN_SIMILARITY
    for cluster in group:
        score = fuzz.ratio(cluster.abstract_key, abstract_key, score_cutoff=best_score)
        if score >= best_score:
            best, best_score = cluster, score
    return best
