"""Related papers: each paper's nearest neighbours by TF-IDF cosine similarity of its title
and cleaned abstract (scikit-learn's vectorizer, sparse products in row blocks so memory
stays bounded whatever the number of papers)."""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.feature_extraction.text import TfidfVectorizer

from schemas.tables import RelatedPaperSchema, empty_frame

NEIGHBOURS = 10
# Rows per block of the similarity product: a block is dense, about 200 MB at most.
_BLOCK_CELLS = 50_000_000


def related_papers(papers: pl.DataFrame, k: int = NEIGHBOURS) -> pl.DataFrame:
    """(paper_id, related_id, score, rank): the top `k` other papers of each paper, best
    first; ties broken by related_id so the table is reproducible."""
    if papers.height < 2:
        return empty_frame(RelatedPaperSchema)
    papers = papers.sort("paper_id")
    ids = papers["paper_id"].to_numpy()
    # The title counts twice: it names what the paper is about.
    texts = papers.select(pl.format("{}. {}. {}", "title", "title", "abstract")).to_series()
    # Words in over half the papers say nothing about any one of them (in a corpus big
    # enough for that to mean something).
    max_df = 0.5 if papers.height >= 20 else 1.0
    vectorizer = TfidfVectorizer(
        stop_words="english", sublinear_tf=True, max_df=max_df, dtype=np.float32
    )
    try:
        vectors = vectorizer.fit_transform(texts.to_list())
    except ValueError:  # no word left: nothing relates to anything
        return empty_frame(RelatedPaperSchema)
    k = min(k, papers.height - 1)
    rows, cols, scores = [], [], []
    block_rows = max(16, _BLOCK_CELLS // papers.height)
    for start in range(0, papers.height, block_rows):
        block = (vectors[start : start + block_rows] @ vectors.T).toarray()
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = -1.0
        # Round first, so that ties (and their order by id) do not depend on float noise.
        block = np.round(block, 4)
        top = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < block.shape[1] else None
        for i in range(block.shape[0]):
            candidates = top[i] if top is not None else np.arange(block.shape[1])
            # Sort by score descending, then id ascending; lexsort uses the last key first.
            order = candidates[np.lexsort((ids[candidates], -block[i, candidates]))][:k]
            order = _with_ties(block[i], order, ids, k)
            rows.extend([start + i] * len(order))
            cols.extend(order)
            scores.extend(block[i, order])
    frame = pl.DataFrame(
        {
            "paper_id": ids[rows],
            "related_id": ids[cols],
            "score": np.round(np.asarray(scores, dtype=np.float64), 4),
        }
    )
    frame = frame.filter(pl.col("score") > 0).with_columns(
        rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("paper_id")
    )
    return frame.select(empty_frame(RelatedPaperSchema).columns)


def _with_ties(scores: np.ndarray, order: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """argpartition picks arbitrarily among papers tied at the k-th score; re-choose them
    by id so that the result is the same on every run."""
    kth = scores[order[-1]]
    tied = np.flatnonzero(scores == kth)
    if len(tied) <= 1:
        return order
    keep = order[scores[order] > kth]
    tied = tied[np.argsort(ids[tied], kind="stable")][: k - len(keep)]
    return np.concatenate([keep, tied])
