"""Related papers: each paper's nearest neighbours by TF-IDF cosine similarity of its title
and cleaned abstract (sparse products in row blocks, so memory stays bounded whatever the
number of papers)."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import sparse

from pipelines.core.text import STOPWORDS
from schemas.tables import RelatedPaperSchema, empty_frame

NEIGHBOURS = 10
# Pairs per block of the similarity product (about 25 bytes each), bounding memory.
_BLOCK_PAIRS = 5_000_000
MAX_PAPERS_PER_WORD = 2_000
_STOPWORDS = sorted(STOPWORDS)
_WORD = r"\b[a-z][a-z0-9]+\b"
_PAPERS_PER_SLICE = 20_000


def tfidf_vectors(papers: pl.DataFrame) -> sparse.csr_matrix:
    """L2-normalised TF-IDF rows of title (counted twice: it names what the paper is
    about) and abstract: sublinear tf and smoothed idf, as scikit-learn's TfidfVectorizer
    computes them, but tokenized and counted in Polars (about five times faster)."""
    n = papers.height
    # Words in over half the papers say nothing about any one of them (in a corpus big
    # enough for that to mean something); past a few thousand papers, a word in more
    # than MAX_PAPERS_PER_WORD of them adds little but costs quadratically.
    max_papers = n if n < 20 else min(n // 2, MAX_PAPERS_PER_WORD)
    text = pl.format("{} {} {}", "title", "title", "abstract").str.to_lowercase()
    # Counted a slice at a time: a paper's words exploded are 250 rows, its counts 130.
    counts = pl.concat(
        papers.slice(start, _PAPERS_PER_SLICE)
        .select(doc=pl.int_range(pl.len()) + start, word=text.str.extract_all(_WORD))
        .explode("word")
        .filter(pl.col("word").is_not_null() & ~pl.col("word").is_in(_STOPWORDS))
        .group_by("doc", "word")
        .agg(tf=pl.len())
        for start in range(0, n, _PAPERS_PER_SLICE)
    )
    counts = (
        counts.with_columns(df=pl.len().over("word"))
        .filter(pl.col("df") <= max_papers)
        .with_columns(
            weight=(1 + pl.col("tf").log()) * (((1 + n) / (1 + pl.col("df"))).log() + 1),
            term=pl.col("word").rank("dense") - 1,
        )
        .with_columns(weight=pl.col("weight") / (pl.col("weight") ** 2).sum().over("doc").sqrt())
    )
    return sparse.csr_matrix(
        (
            counts["weight"].to_numpy(),
            (counts["doc"].to_numpy(), counts["term"].to_numpy()),
        ),
        shape=(n, int(counts["term"].max() or 0) + 1),
    )


def _blocks(vectors: sparse.csr_matrix) -> list[tuple[int, int]]:
    """Row ranges whose products hold about _BLOCK_PAIRS pairs at most: a row pairs with at
    most the sum, over its words, of the papers holding each word."""
    holders = vectors.copy()
    holders.data[:] = 1.0
    per_word = np.asarray(holders.sum(axis=0)).ravel()
    bound = np.cumsum(holders @ per_word)
    blocks, start = [], 0
    while start < len(bound):
        before = bound[start - 1] if start else 0.0
        end = int(np.searchsorted(bound, before + _BLOCK_PAIRS, side="right"))
        end = max(end, start + 1)
        blocks.append((start, end))
        start = end
    return blocks


def related_papers(papers: pl.DataFrame, k: int = NEIGHBOURS) -> pl.DataFrame:
    """(paper_id, related_id, score, rank): the top `k` other papers of each paper, best
    first; ties broken by related_id so the table is reproducible."""
    if papers.height < 2:
        return empty_frame(RelatedPaperSchema)
    papers = papers.sort("paper_id")
    ids = papers["paper_id"].to_numpy()
    vectors = tfidf_vectors(papers)
    if vectors.nnz == 0:  # no word left: nothing relates to anything
        return empty_frame(RelatedPaperSchema)
    parts = []
    for start, end in _blocks(vectors):
        # Only papers sharing a word with the row's paper can score above zero: the sparse
        # product holds exactly those, so the cost follows shared words, not papers squared.
        product = (vectors[start:end] @ vectors.T).tocoo()
        pairs = pl.DataFrame(
            {
                "row": product.row.astype(np.int64) + start,
                "col": product.col.astype(np.int64),
                "score": product.data.astype(np.float64),
            }
        )
        parts.append(
            pairs.filter(pl.col("row") != pl.col("col"))
            # Rounded first, so that ties (broken by paper_id) never depend on float noise.
            .with_columns(pl.col("score").round(4))
            .filter(pl.col("score") > 0)
            .sort(["row", "score", "col"], descending=[False, True, False])
            .group_by("row", maintain_order=True)
            .head(k)
        )
    top = pl.concat(parts)
    return pl.DataFrame(
        {
            "paper_id": ids[top["row"].to_numpy()],
            "related_id": ids[top["col"].to_numpy()],
            "score": top["score"],
            "rank": top.select(
                pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("row")
            ).to_series(),
        }
    ).select(empty_frame(RelatedPaperSchema).columns)
