import polars as pl
import pytest

from pipelines.core.related import WordCounts, related_papers
from schemas.tables import RelatedPaperSchema
from tests.conftest import abstract_for

# Pairs of neighbouring topics: each paper's closest paper is its partner.
TOPICS = [
    "graph neural networks",
    "graph neural network pooling",
    "speech recognition",
    "speech recognition for dialects",
    "protein folding",
    "protein folding dynamics",
    "image segmentation",
    "medical image segmentation",
    "reinforcement learning exploration",
    "reinforcement learning exploration bonuses",
    "machine translation",
    "low resource machine translation",
]
# Past 20 papers, the words in over half of them are not weighed.
TOPICS_REVISITED = [*TOPICS, *(f"{topic} revisited" for topic in TOPICS)]


def papers(topics=TOPICS):
    return pl.DataFrame(
        {
            "paper_id": [f"p{i:015x}" for i in range(len(topics))],
            "title": [t.title() for t in topics],
            "abstract": [abstract_for(t, 4) for t in topics],
        }
    )


def test_each_paper_gets_its_top_neighbours_best_first_never_itself():
    related = related_papers(papers())
    RelatedPaperSchema.validate(related)
    assert related["paper_id"].n_unique() == len(TOPICS)
    assert related.group_by("paper_id").len()["len"].max() <= 10
    assert (related["paper_id"] != related["related_id"]).all()
    for _, group in related.group_by("paper_id"):
        ordered = group.sort("rank")
        assert ordered["rank"].to_list() == list(range(1, group.height + 1))
        assert ordered["score"].to_list() == sorted(ordered["score"], reverse=True)


def test_the_closest_paper_ranks_first():
    related = related_papers(papers())
    first = related.filter(pl.col("rank") == 1)
    pairs = dict(first.select("paper_id", "related_id").iter_rows())
    partner = {f"p{i:015x}": f"p{i ^ 1:015x}" for i in range(len(TOPICS))}
    assert pairs == partner


def test_the_result_does_not_depend_on_row_order():
    frame = papers()
    assert related_papers(frame).equals(related_papers(frame.reverse()))


def test_fewer_than_two_papers_relate_to_nothing():
    assert related_papers(papers(TOPICS[:1])).height == 0


def test_word_counts_are_each_papers_own_words_however_many_papers():
    """Counted in slices of papers, each by the streaming engine on several threads: each
    row must still be the count of its own paper's words (title twice, stopwords out)."""
    import random
    import re
    from collections import Counter

    from pipelines.core import related

    rng = random.Random(7)
    vocabulary = [f"w{n}x" for n in range(500)] + ["the", "of", "and"]
    n_papers = related._PAPERS_PER_SLICE * 3 // 2  # two slices
    texts = [" ".join(rng.choices(vocabulary, k=rng.randint(1, 40))) for _ in range(n_papers)]
    frame = pl.DataFrame({"title": [t[:20].title() for t in texts], "abstract": texts})
    counted = related._word_counts(frame)
    first_of_second = related._PAPERS_PER_SLICE
    for doc in rng.sample(range(n_papers), 200) + [0, first_of_second, n_papers - 1]:
        title, abstract = frame.row(doc)
        words = re.findall(related._WORD, f"{title} {title} {abstract}".lower())
        kept = pl.Series([w for w in words if w not in related.STOPWORDS], dtype=pl.String)
        expected = Counter(pl.select(related._word_hash(pl.lit(kept))).to_series().to_list())
        rows = counted.filter(pl.col("doc") == doc)
        assert dict(rows.select("word", "tf").iter_rows()) == expected
    nothing = related._word_counts(frame.head(0))
    assert nothing.height == 0 and nothing.schema == counted.schema


def _spilled_and_held(monkeypatch, frame: pl.DataFrame):
    """update_related over `frame` with nothing before it: its word counts held, then
    written to a file as counted (as past COUNTS_HELD_MAX_PAPERS papers)."""
    from pipelines.core import related
    from pipelines.core.related import update_related
    from schemas.tables import empty_frame

    nothing = (frame.head(0), empty_frame(RelatedPaperSchema), None)
    held = update_related(frame, *nothing)
    monkeypatch.setattr(related, "COUNTS_HELD_MAX_PAPERS", 0)
    return update_related(frame, *nothing), held


def _written(spilled) -> WordCounts:
    return WordCounts(spilled.papers, pl.read_parquet(spilled.words_file))


# 5: several slices, so several row groups in the file.
@pytest.mark.parametrize("papers_per_slice", [20_000, 5])
def test_word_counts_written_as_counted_give_what_counts_held_give(monkeypatch, papers_per_slice):
    from pipelines.core import related
    from pipelines.core.related import SpilledCounts, word_counts

    monkeypatch.setattr(related, "_PAPERS_PER_SLICE", papers_per_slice)
    # Past 20 papers, the words in over half of them are not weighed: those rows are not
    # read back from the file.
    frame = papers(TOPICS_REVISITED)
    spilled, held = _spilled_and_held(monkeypatch, frame)
    assert spilled.vocabulary.common().len() > 0
    assert isinstance(spilled.new_counts, SpilledCounts)
    assert not isinstance(held.new_counts, SpilledCounts)
    assert spilled.counts() is spilled.new_counts
    assert spilled.vocabulary.words.equals(held.vocabulary.words)
    assert spilled.related.equals(held.related)
    assert spilled.related.equals(related_papers(frame))
    # The file holds every paper's counts, as the staging area keeps them.
    assert _long(_written(spilled.counts())).equals(_long(word_counts(frame)))


def test_the_result_does_not_depend_on_the_block_size(monkeypatch):
    from pipelines.core import related

    whole = related_papers(papers())
    monkeypatch.setattr(related, "_BLOCK_PAIRS", 3)  # about a row per block
    assert len(related._blocks(related.tfidf_vectors(papers()))) >= len(TOPICS) // 2
    assert related_papers(papers()).equals(whole)


def _long(counts) -> pl.DataFrame:
    """(paper_id, word, tf) of WordCounts, in one order."""
    import numpy as np

    ids = np.repeat(counts.papers["paper_id"].to_numpy(), counts.papers["n"].to_numpy())
    return counts.words.select(pl.Series("paper_id", ids), "word", "tf").sort(pl.all())


def _updated(
    before: pl.DataFrame, after: pl.DataFrame, k: int = 2, maybe_changed=None, kept_as=None
):
    """update_related from `before` to `after`, with lists short enough (k) that most of
    them hold neither the papers that left nor those that changed. `kept_as(counts,
    vocabulary)`: the kept counts as the build is given them (default: as they are)."""
    from pipelines.core.related import update_related, vocabulary_of, word_counts

    counts = word_counts(before)
    vocabulary = vocabulary_of(before)
    if kept_as is not None:
        counts = kept_as(counts, vocabulary)
    previous = related_papers(before, k, vocabulary=vocabulary)
    update = update_related(after, before, previous, vocabulary, counts, k, maybe_changed)
    return update, vocabulary


class WeighedAsRead:
    """Kept counts as read for their vocabulary (only its weighed words' rows), recording
    when every row is read; `gone`: every row is no longer there to read."""

    def __init__(self, gone: bool = False):
        self.gone, self.reads, self.counts = gone, 0, None

    def __call__(self, counts, vocabulary):
        from pipelines.core.related import WeighedCounts, WordCounts

        common = vocabulary.common().implode()
        found = counts.words.with_row_index("row").filter(~pl.col("word").is_in(common))
        self.counts = WordCounts.of_rows(counts.papers, found)

        def read_all():
            self.reads += 1
            return None if self.gone else counts

        return WeighedCounts(self.counts, vocabulary, read_all)


# The papers that may have changed: all (by default), or those the build enriched afresh
# (the revised and the new one), here with an unchanged one among them.
MAYBE_CHANGED = pl.Series(["p00000000000000b", "p" * 16, "p000000000000001"])


@pytest.mark.parametrize("maybe_changed", [None, MAYBE_CHANGED], ids=["any", "some"])
@pytest.mark.parametrize("block_pairs", [5_000_000, 3])  # 3: about a row per block
def test_an_update_equals_a_full_computation_with_the_same_vocabulary(
    monkeypatch, block_pairs, maybe_changed
):
    from pipelines.core import related
    from pipelines.core.related import word_counts

    monkeypatch.setattr(related, "_BLOCK_PAIRS", block_pairs)

    # Two papers that share words only with each other: the new paper offers them nothing.
    apart = pl.DataFrame(
        {
            "paper_id": ["q000000000000000", "q000000000000001"],
            "title": ["Zebra Migration", "Zebra Migration Routes"],
            "abstract": ["Zebra herds migrate across savanna.", "Zebra herds follow routes."],
        }
    )
    before = pl.concat([papers(), apart])
    new = papers(["graph neural network pooling layers"]).with_columns(paper_id=pl.lit("p" * 16))
    after = pl.concat(
        [
            before.filter(pl.col("paper_id") != "p000000000000007"),  # left
            new,  # arrived: 14 papers -> 14, so the vocabulary stays current
        ]
    ).with_columns(  # revised: now about speech recognition
        abstract=pl.when(pl.col("paper_id") == "p00000000000000b")
        .then(pl.lit(abstract_for("speech recognition", 4)))
        .otherwise("abstract")
    )
    update, vocabulary = _updated(before, after, maybe_changed=maybe_changed)
    updated = update.related
    assert update.vocabulary is vocabulary
    assert updated.equals(related_papers(after, 2, vocabulary=vocabulary))
    # Word counts kept for the papers whose text is unchanged, counted for the others.
    assert _long(update.counts()).equals(_long(word_counts(after)))
    assert set(update.new_counts.papers["paper_id"]) == {"p00000000000000b", "p" * 16}
    assert "p000000000000007" not in updated["related_id"].to_list()
    # The new paper entered the list of a paper that listed none of the moved ones...
    assert "p" * 16 in updated.filter(pl.col("paper_id") == "p000000000000000")["related_id"]
    # ...and the papers it offered nothing kept their lists.
    assert updated.filter(pl.col("paper_id").str.starts_with("q"))["related_id"].to_list() == [
        "q000000000000001",
        "q000000000000000",
    ]
    # Exactly the lists kept as they were are reported kept (their rows need no checking).
    previous = related_papers(before, 2, vocabulary=vocabulary)
    kept = set(update.kept_lists)
    assert {"q000000000000000", "q000000000000001"} <= kept
    assert not kept & {"p000000000000000", "p00000000000000b", "p" * 16}
    for paper_id in kept:
        rows = pl.col("paper_id") == paper_id
        assert updated.filter(rows).equals(previous.filter(rows))


@pytest.mark.parametrize("counts_kept", [True, False], ids=["counts-kept", "no-counts"])
def test_papers_given_without_their_texts_are_read_only_to_be_counted(counts_kept):
    # A build gives the papers it keeps without their abstracts: they are read only when
    # their words must be counted (no counts were kept), and the result is the same.
    from pipelines.core.related import update_related, vocabulary_of, word_counts

    before = papers()
    new = papers(["graph neural network pooling layers"]).with_columns(paper_id=pl.lit("p" * 16))
    after = pl.concat([before, new])
    vocabulary = vocabulary_of(before)
    previous = related_papers(before, 2, vocabulary=vocabulary)
    made = pl.Series(["p" * 16])
    given = after.with_columns(
        abstract=pl.when(pl.col("paper_id").is_in(made.implode())).then("abstract")
    )
    reads = []

    def every_text() -> pl.DataFrame:
        reads.append(1)
        return after

    update = update_related(
        given,
        before,
        previous,
        vocabulary,
        word_counts(before) if counts_kept else None,
        2,
        maybe_changed=made,
        every_text=every_text,
    )
    assert len(reads) == (0 if counts_kept else 1)
    assert update.related.equals(related_papers(after, 2, vocabulary=vocabulary))
    assert _long(update.counts()).equals(_long(word_counts(after)))


def test_an_unchanged_set_of_papers_keeps_its_related_papers():
    update, _ = _updated(papers(), papers().reverse())
    assert update.related.equals(related_papers(papers(), 2))
    assert set(update.kept_lists) == set(papers()["paper_id"])


@pytest.mark.parametrize("weighed", [False, True], ids=["every-count", "weighed-counts"])
@pytest.mark.parametrize("block_pairs", [5_000_000, 50])
def test_an_update_of_many_overlapping_papers_equals_a_full_computation(
    monkeypatch, block_pairs, weighed
):
    """Papers drawn from a small vocabulary share words with most others, so the new and
    revised ones are offered to nearly every list, some tying with a list's last neighbour
    (titles repeat) and some lists shorter than k (papers with few words). Given the kept
    counts of the weighed words only, the update needs no other row, and gives every
    count when asked."""
    import random

    from pipelines.core import related
    from pipelines.core.related import word_counts

    monkeypatch.setattr(related, "_BLOCK_PAIRS", block_pairs)
    words = [f"term{n}" for n in range(60)]

    def paper(n: int, seed: str = "") -> dict:
        if n % 25 == 0:  # shares its one word with one or two papers: a short list
            picks = [f"rare{n // 50 % 3}"]
        else:
            rng = random.Random(f"{n}{seed}")
            picks = rng.choices(words, k=rng.choice([1, 2, 6, 12]))
        title = " ".join(picks[:2]).title() if n % 7 else "Shared Title"
        # "approach": in every paper, so in too many to be weighed
        abstract = " ".join([*picks, "approach"])
        return {"paper_id": f"p{n:015x}", "title": title, "abstract": abstract}

    before = pl.DataFrame([paper(n) for n in range(150)])
    gone = {f"p{n:015x}" for n in (3, 40, 99)}
    revised = {f"p{n:015x}" for n in (5, 60, 149)}
    after = pl.concat(
        [
            pl.DataFrame(
                [
                    paper(n, "revised") if f"p{n:015x}" in revised else paper(n)
                    for n in range(150)
                    if f"p{n:015x}" not in gone
                ]
            ),
            pl.DataFrame([paper(n) for n in (150, 151, 152, 153)]),
            # Copies, ranked before their originals: they tie with them in every list.
            pl.DataFrame([paper(n) for n in (8, 9, 11)]).with_columns(
                pl.col("paper_id").str.replace("^p", "o")
            ),
        ]
    )  # 150 papers -> 154: the vocabulary stays current
    kept_as = WeighedAsRead() if weighed else None
    update, vocabulary = _updated(before, after, k=3, kept_as=kept_as)
    assert update.vocabulary is vocabulary  # the incremental path, not a recount
    assert update.related.equals(related_papers(after, 3, vocabulary=vocabulary))
    lengths = update.related.group_by("paper_id").len()["len"]
    assert lengths.min() < 3 and lengths.max() == 3
    if weighed:
        assert kept_as.counts.words.height < word_counts(before).words.height  # some left out
        assert kept_as.reads == 0
        assert _long(update.counts()).equals(_long(word_counts(after)))
        assert kept_as.reads == 1


@pytest.mark.parametrize("gone", [False, True], ids=["read", "gone"])
def test_a_new_vocabulary_reads_every_kept_count_or_counts_again(gone):
    from pipelines.core.related import word_counts

    before = papers(TOPICS[:8])
    after = papers(TOPICS)  # past the refresh growth
    kept_as = WeighedAsRead(gone=gone)
    update, old = _updated(before, after, kept_as=kept_as)
    assert kept_as.reads == 1
    assert update.vocabulary.n_papers == after.height != old.n_papers
    assert update.related.equals(related_papers(after, 2))
    assert _long(update.counts()).equals(_long(word_counts(after)))


def test_past_the_refresh_growth_the_vocabulary_is_counted_afresh():
    from pipelines.core.related import REFRESH_GROWTH

    before = papers(TOPICS[:8])
    after = papers(TOPICS)  # half as many again
    assert after.height > before.height * (1 + REFRESH_GROWTH)
    update, old = _updated(before, after)
    assert update.vocabulary.n_papers == after.height != old.n_papers
    assert update.related.equals(related_papers(after, 2))


def test_a_kept_vocabulary_is_used_only_if_its_words_were_hashed_the_same_way():
    from pipelines.core.related import Vocabulary, vocabulary_of

    vocabulary = vocabulary_of(papers())
    kept = vocabulary.to_frame()
    restored = Vocabulary.from_frame(kept)
    assert restored.n_papers == len(TOPICS)
    assert restored.words.equals(vocabulary.words)
    # Another Polars version may hash words otherwise: its vocabulary and counts are unusable.
    assert Vocabulary.from_frame(kept.with_columns(pl.col("probe_hash") + 1)) is None
    assert Vocabulary.from_frame(kept.drop("probe_hash")) is None  # kept before hashing


def test_words_in_over_half_the_papers_weigh_nothing():
    from pipelines.core.related import tfidf_vectors, vocabulary_of

    many = papers([f"{TOPICS[i % len(TOPICS)]} variant{i}" for i in range(40)])
    df = vocabulary_of(many).words["df"]
    assert (df > many.height // 2).sum() > 5  # "study", "method", ...
    # A term (a column) for each word in at most half the papers, and no other.
    assert tfidf_vectors(many).shape == (many.height, (df <= many.height // 2).sum())


def test_word_weights_do_not_depend_on_the_slices_their_counts_are_taken_in(monkeypatch):
    from pipelines.core import related

    many = papers([f"{TOPICS[i % len(TOPICS)]} variant{i}" for i in range(40)])
    vocabulary, vectors = related.vocabulary_of(many), related.tfidf_vectors(many)
    monkeypatch.setattr(related, "_ROWS_PER_SLICE", 7)  # of about 1,500 rows of counts
    assert related.vocabulary_of(many).words.equals(vocabulary.words)
    sliced = related.tfidf_vectors(many)
    assert sliced.shape == vectors.shape and sliced.nnz == vectors.nnz > 0
    # The same weights; a norm summed in another order may differ in the last bit.
    assert abs(sliced - vectors).max() < 1e-12


@pytest.mark.parametrize("rows_per_count", [16_384, 7])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_neighbours_equal_the_best_k_of_every_pair_ranked(k, rows_per_count, monkeypatch):
    """Only each row's contenders (its k-th best score's band and above) are ranked: the
    result must equal ranking every pair, ties included. Each of the rows asked for has a
    word of its own, which the other papers hold with weights on and just around the band
    edges: their scores, so rounding ties them across an edge."""
    import numpy as np
    from scipy import sparse

    from pipelines.core import related

    monkeypatch.setattr(related, "_ROWS_PER_COUNT", rows_per_count)  # 7: rows in slices
    rng = np.random.default_rng(3)
    n_rows, n_others = 60, 240
    edges = np.arange(1, related._BANDS) / related._BANDS
    weights = np.concatenate([edges - 3e-5, edges + 3e-5, [0.5, 0.25, 0.1]])
    held = rng.random((n_others, n_rows)) < 0.5
    others = np.where(held, rng.choice(weights, size=held.shape), 0.0)
    vectors = sparse.csr_matrix(np.vstack([np.eye(n_rows), others]))
    rows = np.arange(n_rows)
    product = (vectors[rows] @ vectors.T).tocoo()
    every = pl.DataFrame(
        {
            "row": rows[product.row].astype(np.int64),
            "col": product.col.astype(np.int64),
            "score": product.data,
        }
    )
    order = {"descending": [False, True, False]}
    expected = related._top(every, k).sort("row", "score", "col", **order)
    found = related._neighbours(vectors, rows, k).sort("row", "score", "col", **order)
    assert found.equals(expected)
    assert found.height == k * n_rows


def test_blocks_bound_each_rows_pairs_as_the_vectors_weighed_by_one_would(monkeypatch):
    import numpy as np
    from scipy import sparse

    import pipelines.core.related as related

    vectors = sparse.random(300, 80, density=0.05, format="csr", random_state=7)
    vectors[[3, 4, 150, 299]] = 0  # rows holding no word
    vectors.eliminate_zeros()
    holders = vectors.copy()
    holders.data[:] = 1.0
    per_row = holders @ np.asarray(holders.sum(axis=0)).ravel()
    for block_pairs in (1, 50, 400, 10**6):
        monkeypatch.setattr(related, "_BLOCK_PAIRS", block_pairs)
        blocks = related._blocks(vectors)
        assert blocks[0][0] == 0 and blocks[-1][1] == 300
        assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:], strict=False))
        for start, end in blocks:  # within the bound, or a single row
            assert end - start == 1 or per_row[start:end].sum() <= block_pairs


def test_neighbours_of_every_row_are_those_of_the_rows_named_one_by_one():
    import numpy as np

    import pipelines.core.related as related

    vectors = related.tfidf_vectors(papers())
    n = vectors.shape[0]
    every = related._neighbours(vectors, np.arange(n), 3).sort("row", "col")
    named = pl.concat([related._neighbours(vectors, np.array([row]), 3) for row in range(n)]).sort(
        "row", "col"
    )
    assert every.height > 0 and every.equals(named)
