"""Which entries are the same paper, and the paper's stable id.

A paper is identified by its folded title (NFKC, case folding, punctuation and
whitespace folding). Entries that share a folded title are one paper unless their
abstracts clearly differ. Ids already published are kept: new entries are matched
against the previous release's papers before any new id is minted.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import polars as pl
from rapidfuzz import fuzz

# Abstracts of one paper (a revision, a scraping difference) score well above this;
# two unrelated abstracts of similar length score around 40-55.
SAME_ABSTRACT_MIN_SIMILARITY = 75.0

_SPACE = re.compile(r"\s+")


def fold_title(title: str) -> str:
    """The comparison key of a title: NFKC, casefold, punctuation to space, one space."""
    text = unicodedata.normalize("NFKC", title).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return _SPACE.sub(" ", text).strip()


def fold_abstract(abstract: str) -> str:
    text = unicodedata.normalize("NFKC", abstract).casefold()
    return _SPACE.sub(" ", text).strip()


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
        title_key=pl.col("title").map_elements(fold_title, return_dtype=pl.String),
        abstract_key=pl.col("abstract").map_elements(fold_abstract, return_dtype=pl.String),
    ).sort("digest_date", "position", "digest_id")

    clusters: dict[str, list[_Cluster]] = {}
    for row in known.sort("paper_id").iter_rows(named=True):
        clusters.setdefault(row["title_key"], []).append(
            _Cluster(row["paper_id"], fold_abstract(row["abstract"]))
        )
    taken = {c.paper_id for group in clusters.values() for c in group}

    ids: list[str] = []
    for title_key, abstract_key in entries.select("title_key", "abstract_key").iter_rows():
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
    # The reason depends only on the result, never on what was published before, so a
    # rebuild from the same files gives the same rows.
    first = pl.col("abstract_key").first().over("paper_id", order_by=["digest_date", "position"])
    return (
        entries.with_columns(paper_id=pl.Series(ids, dtype=pl.String))
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
