"""Related papers: each paper's nearest neighbours by TF-IDF cosine similarity of its title
and cleaned abstract (sparse products in row blocks, so memory stays bounded whatever the
number of papers).

The word weights (each word's document frequency among the papers of the last refresh)
are kept between builds in a `Vocabulary`. While the number of papers stays within
REFRESH_GROWTH of the count they were computed for, a build reuses them: the scores of
two unchanged papers are then unchanged, so only the papers that are new or changed, and
those that listed one of them, need their lists recomputed; every other list just takes
in the new papers that beat its last neighbour. Past that growth the weights are counted
afresh and every list is recomputed. Each paper's word counts are kept as well, so only
new or changed papers are tokenized.

Words are held as 64-bit hashes: reading, sorting and joining the counts of half a million
papers costs a fraction of what the strings do. A collision would merge two words' counts
(about one chance in a million among five million distinct words): it would shift scores,
never fail a build."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from scipy import sparse

from pipelines.core.diff import unchanged
from pipelines.core.frames import by_slices, merged_in_order, sorted_by
from pipelines.core.storage import read_parquet_uris
from pipelines.core.text import STOPWORDS
from schemas.tables import RelatedPaperSchema, empty_frame

NEIGHBOURS = 10
# Pairs per block of the similarity product (about 25 bytes each), bounding memory.
_BLOCK_PAIRS = 5_000_000
MAX_PAPERS_PER_WORD = 2_000
# Word weights are counted afresh once the papers grew (or shrank) by this fraction.
REFRESH_GROWTH = 0.10
_STOPWORDS = sorted(STOPWORDS)
_WORD = r"\b[a-z][a-z0-9]+\b"
# Papers whose words are counted at a time. A full build of 10,000 digests (541,222 papers)
# reached 2,686 MB in its related papers with slices of 20,000 and 2,523 MB with slices of
# 5,000, which took 14.6 s rather than 16.7 s (1,000 digests: counted in 0.98-1.02 s, not
# 1.10-1.13 s).
_PAPERS_PER_SLICE = 5_000
_ROWS_PER_SLICE = 4_000_000  # of word counts (about 64 MB)
# A paper's row number in the word counts, of which there are 42 million rows at 10,000
# digests: 4 bytes a row rather than 8.
_DOC = pl.Int32


def _word_hash(word: pl.Expr) -> pl.Expr:
    return word.hash(seed=0)


def _probe_hash() -> int:
    """The hash of a fixed word: Polars does not promise the same hashes in another
    version, so a kept vocabulary records this, and one hashed otherwise is not used."""
    return pl.select(_word_hash(pl.lit("vocabulary"))).item()


@dataclass(frozen=True)
class Vocabulary:
    """Document frequencies of words (`words`: word, df; word is the word's hash),
    counted over `n_papers` papers."""

    words: pl.DataFrame
    n_papers: int

    def to_frame(self) -> pl.DataFrame:
        return self.words.with_columns(
            n_papers=pl.lit(self.n_papers, pl.Int64), probe_hash=pl.lit(_probe_hash(), pl.UInt64)
        )

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Vocabulary | None:
        """The vocabulary kept by to_frame, or None if its words were hashed otherwise."""
        if frame.height == 0 or "probe_hash" not in frame.columns:
            return None
        if frame["probe_hash"][0] != _probe_hash() or frame.schema["word"] != pl.UInt64:
            return None
        return cls(frame.select("word", "df"), int(frame["n_papers"][0]))

    @property
    def max_papers(self) -> int:
        """The most papers a word may be in to be weighed. Words in over half the papers
        say nothing about any one of them (in a corpus big enough for that to mean
        something); past a few thousand papers, a word in more than MAX_PAPERS_PER_WORD of
        them adds little but costs quadratically."""
        n = self.n_papers
        return n if n < 20 else min(n // 2, MAX_PAPERS_PER_WORD)

    def common(self) -> pl.Series:
        """The words in more than max_papers papers: not weighed."""
        return self.words.filter(pl.col("df") > self.max_papers)["word"]

    def is_current_for(self, n_papers: int) -> bool:
        return self.n_papers > 0 and abs(n_papers - self.n_papers) <= (
            REFRESH_GROWTH * self.n_papers
        )


def _word_counts(papers: pl.DataFrame) -> pl.DataFrame:
    """(doc, word, tf) in doc order: doc is the row number in `papers`, word a word's
    hash."""
    if papers.height == 0:
        return pl.DataFrame(schema={"doc": _DOC, "word": pl.UInt64, "tf": pl.UInt32})
    return pl.concat(list(_word_count_slices(papers)), how="vertical")


def _word_count_slices(papers: pl.DataFrame) -> Iterator[pl.DataFrame]:
    """_word_counts of `papers`, a slice of papers at a time, in doc order."""
    text = pl.format("{} {} {}", "title", "title", "abstract").str.to_lowercase()
    # A slice of papers at a time, so that memory stays bounded (a paper's words exploded
    # are 250 rows, its counts 130); each slice by the streaming engine, which tokenizes
    # on every core. 541,222 papers: 31.2 s before, 19.2 s; counting them all in one
    # streaming query took 20.9 s and 5.9 GB rather than 2.5 GB.
    for start in range(0, papers.height, _PAPERS_PER_SLICE):
        yield (
            papers.slice(start, _PAPERS_PER_SLICE)
            .lazy()
            .select(text=text)
            .with_row_index("doc", offset=start)
            .select(pl.col("doc").cast(_DOC), word=pl.col("text").str.extract_all(_WORD))
            .explode("word")
            .filter(pl.col("word").is_not_null() & ~pl.col("word").is_in(_STOPWORDS))
            .group_by("doc", word=_word_hash(pl.col("word")))
            .agg(tf=pl.len())
            .sort("doc")  # slice by slice: the whole is in paper order, unsorted again
            .collect(engine="streaming")
        )


@dataclass(frozen=True)
class WordCounts:
    """Each paper's words (not stopwords; their hashes) and how often each occurs, the
    title counted twice, as kept between builds (they depend on the paper's text alone):
    `words` (word, tf) a row per word of each paper, a paper's rows together; `papers`
    (paper_id, n) a row per paper, in the same order, n its number of rows in `words`.

    Flat, not a list per paper: Parquet decodes lists slowly (reading the counts of 53,976
    papers in a fresh process took 0.25-0.37 s as lists, 0.11-0.13 s flat), and every use
    exploded them again. The ids apart: a column of `words` would hold a (mostly empty) id
    per row, 16 bytes each, 670 MB for the 42 million rows of 541,222 papers."""

    papers: pl.DataFrame
    words: pl.DataFrame

    @classmethod
    def of(cls, ids: pl.Series, counted: pl.DataFrame) -> WordCounts:
        """From (doc, word, tf) rows, doc being the paper's row in `ids`."""
        if not counted["doc"].is_sorted():
            counted = counted.sort("doc", maintain_order=True)
        runs = counted["doc"].rle()
        return cls(
            pl.DataFrame(
                {
                    "paper_id": ids.gather(runs.struct.field("value")),
                    "n": runs.struct.field("len").cast(pl.UInt32),
                }
            ),
            counted.select("word", pl.col("tf").cast(pl.UInt32)),
        )

    @classmethod
    def concat(cls, parts: list[WordCounts]) -> WordCounts:
        return cls(
            pl.concat([part.papers for part in parts], how="vertical"),
            pl.concat([part.words for part in parts], how="vertical"),
        )

    def per_row(self, values: pl.Series) -> pl.Series:
        """A value per paper (in `papers` order), repeated on each of its rows in `words`."""
        return pl.Series(values.name, np.repeat(values.to_numpy(), self.papers["n"].to_numpy()))

    def without(self, drop: pl.Series) -> WordCounts:
        """These counts but those of the papers `drop` marks (one per paper)."""
        return WordCounts(self.papers.filter(~drop), self.words.filter(~self.per_row(drop)))

    @classmethod
    def of_rows(cls, papers: pl.DataFrame, found: pl.DataFrame) -> WordCounts:
        """From `found` (row, word, tf), some of the rows of the `words` of the counts whose
        `papers` these are, in order: every paper is kept, n its rows found."""
        paper = _papers_of_rows(papers["n"], found["row"])
        n = np.bincount(paper, minlength=papers.height).astype(np.uint32)
        return cls(papers.with_columns(n=pl.Series("n", n)), found.select("word", "tf"))


def _papers_of_rows(n: pl.Series, rows: pl.Series) -> np.ndarray:
    """For rows of the `words` of word counts whose papers have `n` rows each, the paper
    (its place in `papers`) each row is of: the first paper whose rows end after it."""
    ends = np.cumsum(n.to_numpy(), dtype=np.int64)
    return np.searchsorted(ends, rows.to_numpy(), side="right")


@dataclass(frozen=True)
class WeighedCounts:
    """Kept word counts read for a vocabulary: `counts` holds only the rows of the words
    it weighs (its papers all, n their rows here), which is all related papers need while
    it is current; `read_all` reads every row (None: they are gone), for a new vocabulary
    or to write them again. At 10,000 digests that is 0.5 million rows of 42 million: the
    others are of words in too many papers to be weighed."""

    counts: WordCounts
    vocabulary: Vocabulary
    read_all: Callable[[], WordCounts | None]


def word_counts(papers: pl.DataFrame) -> WordCounts:
    """The word counts of `papers` (paper_id, title, abstract)."""
    return WordCounts.of(papers["paper_id"], _word_counts(papers))


# Past this many papers, a build counting every paper's words writes them to a file as it
# counts them rather than holding them (SpilledCounts).
COUNTS_HELD_MAX_PAPERS = 100_000


class SpilledCounts:
    """Word counts written to a local file as they are counted, a slice of papers at a
    time, and not held: those of the 541,273 papers of 10,000 digests are 42 million rows,
    670 MB in memory, at the peak of a full build. The file is the `words` of WordCounts
    (word, tf), written as the staging area keeps it, which copies it as it is. Held:
    `papers` (paper_id, n) as in WordCounts, and each word's document frequency. Related
    papers read back only the rows of the words they weigh (`rows`), most rows being
    those of the few words in too many papers. The file goes with this object."""

    def __init__(self, ids: pl.Series, slices: Iterator[pl.DataFrame]):
        """From (doc, word, tf) slices in doc order, doc being the paper's row in `ids`."""
        self._folder = tempfile.TemporaryDirectory(prefix="papers-word-counts-")
        self.words_file = Path(self._folder.name) / "words.parquet"
        none = pl.DataFrame(schema={"doc": _DOC, "word": pl.UInt64, "tf": pl.UInt32})
        schema = none.select("word", "tf").to_arrow().schema
        # What is kept of each slice (its papers' runs of rows, its words' document
        # frequencies) is copied into NumPy arrays, out of the heap the slices are counted
        # in: small frames of each slice kept there made the counting of the next slices
        # take fresh memory rather than reuse what the last one freed (at 10,000 digests,
        # 250,000 papers counted at 828 MB rather than 762).
        docs, lengths, words, frequencies = [], [], [], []
        with pq.ParquetWriter(self.words_file, schema, compression="zstd") as writer:
            for counted in slices:  # a row group each
                runs = counted["doc"].rle()
                docs.append(runs.struct.field("value").to_numpy().copy())
                lengths.append(runs.struct.field("len").to_numpy().astype(np.uint32))
                per_word = counted.group_by("word").agg(df=pl.len())
                words.append(per_word["word"].to_numpy().copy())
                frequencies.append(per_word["df"].to_numpy().astype(np.int64))
                writer.write_table(counted.select("word", "tf").to_arrow())

        def joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate([np.empty(0, dtype), *parts])

        self._docs = joined(docs, np.int32)
        self.papers = pl.DataFrame(
            {"paper_id": ids.gather(self._docs), "n": pl.Series(joined(lengths, np.uint32))}
        )
        self.frequencies = (
            pl.DataFrame(
                {
                    "word": pl.Series(joined(words, np.uint64)),
                    "df": pl.Series(joined(frequencies, np.int64)),
                }
            )
            .group_by("word")
            .agg(pl.col("df").sum())
            .sort("word")
        )

    def vocabulary(self, n_papers: int) -> Vocabulary:
        return Vocabulary(self.frequencies, n_papers)

    def rows(self, excluding: pl.Series) -> pl.DataFrame:
        """(doc, word, tf) of every row whose word is not in `excluding`, in doc order:
        what tfidf_vectors keeps of the counts."""
        kept = ~pl.col("word").is_in(excluding.implode())
        found = read_parquet_uris([str(self.words_file)], {}, where=kept, row_index="row")
        paper = _papers_of_rows(self.papers["n"], found["row"])
        doc = pl.Series("doc", self._docs[paper], _DOC)
        return found.select(doc, "word", "tf")


def _row_numbers(
    papers: pl.DataFrame, name: str = "doc", dtype: pl.DataType = _DOC
) -> pl.DataFrame:
    """(paper_id, `name`): each paper's row number in `papers`."""
    return papers.select("paper_id", pl.int_range(pl.len(), dtype=dtype).alias(name))


def _by_doc(rows: pl.DataFrame, counts: WordCounts) -> tuple[pl.DataFrame, pl.Series]:
    """(doc, word, tf) of the papers of `rows` (paper_id, doc) that `counts` hold, and
    their docs."""
    doc = counts.papers.join(rows, on="paper_id", how="left", maintain_order="left")["doc"]
    counted = counts.words.select(counts.per_row(doc.fill_null(-1)), "word", "tf")
    return counted.filter(pl.col("doc") >= 0), doc.drop_nulls()


def vocabulary_of(papers: pl.DataFrame, counted: pl.DataFrame | None = None) -> Vocabulary:
    """Document frequencies over `papers`; `counted`: their (doc, word, tf), if counted."""
    counted = _word_counts(papers) if counted is None else counted
    # Counted a slice of rows at a time, then summed: grouping the 42.6 million rows of
    # 541,222 papers at once held 1 GB more at its peak, the peak of their related papers.
    per_slice = by_slices(
        counted.select("word"), lambda rows: rows.group_by("word").agg(df=pl.len()), _ROWS_PER_SLICE
    )
    words = per_slice.group_by("word").agg(pl.col("df").sum().cast(pl.Int64)).sort("word")
    return Vocabulary(words, papers.height)


def tfidf_vectors(
    papers: pl.DataFrame,
    vocabulary: Vocabulary | None = None,
    counted: pl.DataFrame | None = None,
) -> sparse.csr_matrix:
    """L2-normalised TF-IDF rows of title (counted twice: it names what the paper is
    about) and abstract: sublinear tf and smoothed idf, as scikit-learn's TfidfVectorizer
    computes them, but tokenized and counted in Polars (about five times faster). The idf
    comes from `vocabulary` (default: these papers); a word it does not know counts as a
    word of no paper. `counted`: the papers' (doc, word, tf), when already counted."""
    counts = _word_counts(papers) if counted is None else counted
    vocabulary = vocabulary_of(papers, counts) if vocabulary is None else vocabulary
    n, max_papers = vocabulary.n_papers, vocabulary.max_papers
    # The few words in too many papers hold most rows of the counts: dropped first, the
    # join is a small one (1.16 s -> 0.33 s for 541,222 papers, 42 million rows). A slice
    # of rows at a time, so that only what is kept is held whole.
    common = vocabulary.common().implode()
    counts = by_slices(
        counts,
        lambda rows: (
            rows.filter(~pl.col("word").is_in(common))
            .join(vocabulary.words, on="word", how="left")
            .with_columns(pl.col("df").fill_null(0))
            .filter(pl.col("df") <= max_papers)
        ),
        _ROWS_PER_SLICE,
    )
    # Terms numbered in word order (a sorted join is cheaper than ranking 40 million words).
    terms = counts.select(pl.col("word").unique().sort()).with_columns(
        term=pl.int_range(pl.len(), dtype=pl.Int64)
    )
    counts = (
        counts.join(terms, on="word")
        .with_columns(
            weight=(1 + pl.col("tf").log()) * (((1 + n) / (1 + pl.col("df"))).log() + 1),
        )
        .with_columns(weight=pl.col("weight") / (pl.col("weight") ** 2).sum().over("doc").sqrt())
    )
    return sparse.csr_matrix(
        (
            counts["weight"].to_numpy(),
            (counts["doc"].to_numpy(), counts["term"].to_numpy()),
        ),
        shape=(papers.height, int(counts["term"].max() or 0) + 1),
    )


def _blocks(vectors: sparse.csr_matrix) -> list[tuple[int, int]]:
    """Row ranges whose products hold about _BLOCK_PAIRS pairs at most: a row pairs with at
    most the sum, over its words, of the papers holding each word."""
    # Without a copy of the vectors with their weights set to 1: the papers holding each
    # word, summed over the stored words in row order and read off at each row's end.
    per_word = np.bincount(vectors.indices, minlength=vectors.shape[1]).astype(np.float64)
    bound = np.concatenate([[0.0], np.cumsum(per_word[vectors.indices])])[vectors.indptr[1:]]
    blocks, start = [], 0
    while start < len(bound):
        before = bound[start - 1] if start else 0.0
        end = int(np.searchsorted(bound, before + _BLOCK_PAIRS, side="right"))
        end = max(end, start + 1)
        blocks.append((start, end))
        start = end
    return blocks


def _top(pairs: pl.DataFrame, k: int) -> pl.DataFrame:
    """The best `k` (row, col, score) of each row, ties broken by col; in no particular
    order (_as_table puts them in order, once)."""
    return (
        pairs.lazy()
        .filter(pl.col("row") != pl.col("col"))
        # Rounded first, so that ties (broken by paper_id) never depend on float noise.
        .with_columns(pl.col("score").round(4))
        .filter(pl.col("score") > 0)
        .group_by("row")
        .agg(pl.col("col", "score").top_k_by(["score", "col"], k, reverse=[False, True]))
        .explode("col", "score")
        .collect()
    )


def _neighbours(vectors: sparse.csr_matrix, rows: np.ndarray, k: int) -> pl.DataFrame:
    """Top `k` (row, col, score) of `rows` (sorted) against every row of `vectors`."""
    # Every row, as a full build asks for: the vectors themselves, not a copy of them.
    every = len(rows) == vectors.shape[0] and np.array_equal(rows, np.arange(len(rows)))
    subset = vectors if every else vectors[rows]
    parts = []
    for start, end in _blocks(subset):
        # Only papers sharing a word with the row's paper can score above zero: the sparse
        # product holds exactly those, so the cost follows shared words, not papers squared.
        product = subset[start:end] @ vectors.T
        per_row = np.diff(product.indptr)
        keep = _contenders(product.data, per_row, k)
        pairs = pl.DataFrame(
            {
                "row": np.repeat(rows[start:end], per_row)[keep],
                "col": product.indices[keep].astype(np.int64),
                "score": product.data[keep].astype(np.float64),
            }
        )
        # In row order (a sparse product's rows are): grouped by slices, not by hashing.
        parts.append(_top(pairs.with_columns(pl.col("row").set_sorted()), k))
    return pl.concat(parts, how="vertical") if parts else _no_pairs()


# Scores are counted in this many bands of equal width to find each row's contenders.
_BANDS = 256
# Rows whose bands are counted at once: their counts take 8 bytes a band (32 MiB).
_ROWS_PER_COUNT = 16_384


def _contenders(score: np.ndarray, per_row: np.ndarray, k: int) -> np.ndarray:
    """A mask of the scores of a product's rows (per_row[i] of them for row i, in row
    order, a row's own pair among them) that can be among their row's best `k`: those in
    the band holding the row's (k+1)-th best score or above (its own pair may be one), and
    those just below its lower edge, which rounding may tie with it.

    Counting the pairs per band costs a fraction of ranking them all: for the 53,976
    papers of 1,000 digests, 34 million pairs, of which 2.5% are contenders. The rows are
    counted a slice at a time: a block of sparse rows can hold hundreds of thousands."""
    ends = np.cumsum(per_row)
    keep = np.empty(len(score), dtype=bool)
    for first in range(0, len(per_row), _ROWS_PER_COUNT):
        rows = per_row[first : first + _ROWS_PER_COUNT]
        start = ends[first] - per_row[first]
        end = start + rows.sum()
        keep[start:end] = _row_contenders(score[start:end], rows, k)
    return keep


def _row_contenders(score: np.ndarray, per_row: np.ndarray, k: int) -> np.ndarray:
    n_rows = len(per_row)
    band = (score * _BANDS).astype(np.int64)
    np.minimum(band, _BANDS - 1, out=band)
    band += np.repeat(np.arange(n_rows, dtype=np.int64) * _BANDS, per_row)
    counts = np.bincount(band, minlength=n_rows * _BANDS).reshape(n_rows, _BANDS)
    # Pairs in each band or above; the (k+1)-th best lies in the highest band where that
    # reaches k + 1 (band 0, keeping every pair, when none does).
    at_least = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
    lowest = np.maximum((at_least > k).sum(axis=1) - 1, 0)
    edge = lowest / _BANDS - 1e-4  # _top rounds scores to 4 decimals
    return score >= np.repeat(edge, per_row)


def _no_pairs() -> pl.DataFrame:
    return pl.DataFrame(schema={"row": pl.Int64, "col": pl.Int64, "score": pl.Float64})


def _as_table(top: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
    """RelatedPaperSchema rows of (row, col, score) pairs, `ids` being the rows' paper ids:
    best first, ranked per paper."""
    top = top.sort(["row", "score", "col"], descending=[False, True, False])
    return pl.DataFrame(
        {
            "paper_id": ids.gather(top["row"]),
            "related_id": ids.gather(top["col"]),
            "score": top["score"],
            "rank": top.select(
                pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("row")
            ).to_series(),
        }
    ).select(empty_frame(RelatedPaperSchema).columns)


def related_papers(
    papers: pl.DataFrame, k: int = NEIGHBOURS, vocabulary: Vocabulary | None = None
) -> pl.DataFrame:
    """(paper_id, related_id, score, rank): the top `k` other papers of each paper, best
    first; ties broken by related_id so the table is reproducible. Word weights from
    `vocabulary` (default: counted over these papers)."""
    return _related(papers.sort("paper_id"), k, vocabulary)


def _related(
    papers: pl.DataFrame, k: int, vocabulary: Vocabulary | None, counted: pl.DataFrame | None = None
) -> pl.DataFrame:
    """related_papers of papers sorted by paper_id, with their (doc, word, tf) if counted."""
    if papers.height < 2:
        return empty_frame(RelatedPaperSchema)
    vectors = tfidf_vectors(papers, vocabulary, counted)
    if vectors.nnz == 0:  # no word left: nothing relates to anything
        return empty_frame(RelatedPaperSchema)
    return _as_table(_neighbours(vectors, np.arange(papers.height), k), papers["paper_id"])


@dataclass(frozen=True)
class RelatedUpdate:
    related: pl.DataFrame  # RelatedPaperSchema
    vocabulary: Vocabulary  # the word weights it was computed with
    new_counts: WordCounts | SpilledCounts  # of the papers this build counted
    kept_lists: pl.Series  # the papers whose lists are the previous release's rows as they are
    counts: Callable[[], WordCounts | SpilledCounts]  # the word counts of every paper


def update_related(
    papers: pl.DataFrame,
    previous_papers: pl.DataFrame,
    previous_related: pl.DataFrame,
    vocabulary: Vocabulary | None,
    previous_counts: WordCounts | WeighedCounts | None = None,
    k: int = NEIGHBOURS,
    maybe_changed: pl.Series | None = None,
    every_text: Callable[[], pl.DataFrame] | None = None,
) -> RelatedUpdate:
    """related_papers of `papers`, reusing `previous_related` (computed with `vocabulary`
    for `previous_papers`) while the vocabulary is current, and the word counts of the
    papers whose text is unchanged. `maybe_changed`: the ids of the papers whose title or
    abstract may differ from `previous_papers` (default: any); the others are taken as
    they were, sparing a comparison of every text. `every_text`: when given, the papers
    not in `maybe_changed` may be given with their abstracts null, and this gives all of
    them whole, for when their words must be counted again.

    The result is related_papers(papers, k, vocabulary): an unchanged paper's list can
    only change by losing a neighbour that changed or left (then it is recomputed) or by
    gaining one of the new or changed papers (then that paper outscores its last one)."""
    papers = sorted_by(papers, ["paper_id"])
    if every_text is not None and maybe_changed is None:
        papers = sorted_by(every_text(), ["paper_id"])

    def whole() -> pl.DataFrame:
        """`papers` with every abstract: read, where they were given null."""
        nonlocal papers
        if every_text is not None and papers["abstract"].null_count():
            papers = sorted_by(every_text(), ["paper_id"])  # the same rows, in that order
        return papers

    maybe = (
        papers
        if maybe_changed is None
        else papers.filter(pl.col("paper_id").is_in(maybe_changed.implode()))
    )
    changed = maybe.filter(~unchanged(maybe, previous_papers, ["title", "abstract"]))["paper_id"]
    ids = papers["paper_id"]
    is_current = (
        vocabulary is not None and vocabulary.is_current_for(papers.height) and papers.height >= 2
    )
    # Counts read for this vocabulary hold only the rows of the words it weighs: a new one
    # needs them all.
    if isinstance(previous_counts, WeighedCounts) and not (
        is_current and previous_counts.vocabulary is vocabulary
    ):
        previous_counts = previous_counts.read_all()  # None if gone: counted again
    spilled = every_count = None
    if previous_counts is None and papers.height > COUNTS_HELD_MAX_PAPERS:
        spilled = SpilledCounts(ids, _word_count_slices(whole()))
        counted = fresh = None
    elif previous_counts is None:
        counted = fresh = _word_counts(whole())
    else:  # kept for the papers whose text is unchanged, counted for the others
        rows = _row_numbers(papers)
        unchanged_rows = rows.filter(~pl.col("paper_id").is_in(changed.implode()))
        partial = previous_counts if isinstance(previous_counts, WeighedCounts) else None
        kept, kept_docs = _by_doc(
            unchanged_rows, previous_counts if partial is None else partial.counts
        )
        todo = rows.filter(~pl.col("doc").is_in(kept_docs.implode()))["doc"]
        counting = papers[todo]
        if counting["abstract"].null_count():  # a paper given without its text lacks counts
            counting = whole()[todo]
        fresh = _word_counts(counting)
        fresh = fresh.with_columns(doc=todo.gather(fresh["doc"]))  # rows of `papers`
        counted = pl.concat([kept, fresh.cast(kept.schema)], how="vertical")
        if partial is not None:  # the kept papers' rows of weighed words only

            def every_count(partial: WeighedCounts = partial) -> WordCounts:
                everything = partial.read_all()
                if everything is None:  # gone meanwhile: counted again
                    return word_counts(whole())
                kept = _by_doc(unchanged_rows, everything)[0]
                return WordCounts.of(ids, pl.concat([kept, fresh.cast(kept.schema)]))

    def counts() -> WordCounts | SpilledCounts:
        if spilled is not None:  # every paper was counted, into a file
            return spilled
        return every_count() if every_count is not None else WordCounts.of(ids, counted)

    def result(related: pl.DataFrame, kept_lists: pl.Series | None = None) -> RelatedUpdate:
        kept_lists = ids.clear() if kept_lists is None else kept_lists  # none kept
        new_counts = spilled if spilled is not None else WordCounts.of(ids, fresh)
        return RelatedUpdate(related, vocabulary, new_counts, kept_lists, counts)

    def weighed(vocabulary: Vocabulary) -> pl.DataFrame:
        """The counts tfidf_vectors needs: read back the rows it keeps, when spilled."""
        return counted if spilled is None else spilled.rows(excluding=vocabulary.common())

    if not is_current:
        vocabulary = (
            spilled.vocabulary(papers.height)
            if spilled is not None
            else vocabulary_of(papers, counted)
        )
        return result(_related(papers, k, vocabulary, weighed(vocabulary)))
    gone = previous_papers.join(papers, on="paper_id", how="anti")["paper_id"]
    if changed.is_empty() and gone.is_empty():
        return result(previous_related, previous_related["paper_id"].unique())
    vectors = tfidf_vectors(papers, vocabulary, weighed(vocabulary))
    if vectors.nnz == 0:
        return result(empty_frame(RelatedPaperSchema))
    row_of = _row_numbers(papers, "row", pl.Int64)
    moved = pl.concat([changed, gone]).implode()
    # Lists that held a paper that changed or left, and the changed papers' own lists.
    stale = previous_related.filter(pl.col("related_id").is_in(moved))["paper_id"]
    redone = pl.concat([changed, stale, gone]).implode()
    recompute = row_of.filter(pl.col("paper_id").is_in(redone))["row"].sort().to_numpy()
    recomputed = _neighbours(vectors, recompute, k)
    # Every other list keeps its neighbours and takes in the changed papers that beat its
    # last one: only those offers are merged, and every list offered none stays as it is.
    lists = previous_related.filter(~pl.col("paper_id").is_in(redone))
    last = np.zeros(papers.height)  # a list shorter than k takes any paper sharing a word
    full = lists.filter(pl.col("rank") == k).join(row_of, on="paper_id")
    last[full["row"].to_numpy()] = full["score"].to_numpy()
    skipped = np.zeros(papers.height, dtype=bool)
    skipped[recompute] = True
    changed_rows = row_of.filter(pl.col("paper_id").is_in(changed.implode()))["row"].to_numpy()
    offers = _offers(vectors, changed_rows, skipped, last, k)
    offered = papers["paper_id"].gather(offers["row"].unique())
    listed = (
        lists.filter(pl.col("paper_id").is_in(offered.implode()))
        .join(row_of, on="paper_id")
        .join(row_of.rename({"paper_id": "related_id", "row": "col"}), on="related_id")
        .select("row", "col", "score")
    )
    merged = _top(pl.concat([listed, offers], how="vertical"), k)
    kept = lists.filter(~pl.col("paper_id").is_in(offered.implode()))
    made = _as_table(pl.concat([recomputed, merged], how="vertical"), ids)
    return result(merged_in_order(kept, made, ["paper_id", "rank"]), kept["paper_id"].unique())


def _offers(
    vectors: sparse.csr_matrix, changed: np.ndarray, skipped: np.ndarray, last: np.ndarray, k: int
) -> pl.DataFrame:
    """(row, col, score): for each row not `skipped`, its best `k` of the `changed` rows
    (col) that score at least `last[row]`, its last neighbour's score. In blocks, like
    _neighbours; each block keeps only its best k for each row."""
    subset = vectors[changed]
    parts = []
    for start, end in _blocks(subset):
        product = (subset[start:end] @ vectors.T).tocoo()
        row, col = product.col, changed[start:end][product.row]
        # Compared before rounding, with room for it: _top rounds and ranks exactly.
        keep = ~skipped[row] & (row != col) & (product.data >= last[row] - 1e-4)
        pairs = {"row": row[keep], "col": col[keep], "score": product.data[keep]}
        parts.append(
            _top(
                pl.DataFrame(pairs).cast({"row": pl.Int64, "col": pl.Int64, "score": pl.Float64}), k
            )
        )
    return pl.concat(parts, how="vertical") if parts else _no_pairs()
