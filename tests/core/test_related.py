import polars as pl

from pipelines.core.related import related_papers
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


def test_counting_in_slices_changes_nothing(monkeypatch):
    from pipelines.core import related

    whole = related.tfidf_vectors(papers())
    monkeypatch.setattr(related, "_PAPERS_PER_SLICE", 5)
    sliced = related.tfidf_vectors(papers())
    assert (whole != sliced).nnz == 0 and whole.nnz > 0


def test_the_result_does_not_depend_on_the_block_size(monkeypatch):
    from pipelines.core import related

    whole = related_papers(papers())
    monkeypatch.setattr(related, "_BLOCK_PAIRS", 3)  # about a row per block
    assert len(related._blocks(related.tfidf_vectors(papers()))) >= len(TOPICS) // 2
    assert related_papers(papers()).equals(whole)
