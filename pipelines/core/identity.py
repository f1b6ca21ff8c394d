"""Which entries are the same paper, and the paper's stable id.

Two entries are one paper when their abstracts say so: the same abstract, or one revised
by small edits. Titles narrow the search and guard the decision: a folded title (see
`text.title_key_expr`) equal to one the paper went by, or within a typo or two of it.
Two papers that share a title but whose abstracts clearly differ stay apart.

Matching is incremental. Entries of digests already published keep the paper_id they were
published with; only the others are matched, against every paper known so far, through
two indexes (folded title, abstract sentences) rather than against every paper.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import polars as pl
from rapidfuzz import fuzz

from pipelines.core.text import abstract_key_expr, title_key_expr

# Similarity (RapidFuzz ratio, 0-100) from which two abstracts are one paper's: revisions
# of one abstract score above 90; unrelated abstracts on the same topic score 40-70.
# Chosen on the labelled pairs in benchmarks/matching (see BENCHMARKS.md).
SAME_ABSTRACT_MIN_SIMILARITY = 80.0
# Similarity from which two folded titles are variants (a typo or two) of one title.
SIMILAR_TITLE_MIN_SIMILARITY = 85.0
# An identical abstract merges entries whatever their titles, when it is this long.
SAME_ABSTRACT_MIN_CHARS = 200
# Sentences shared by more papers than this are boilerplate, not evidence.
MAX_PAPERS_PER_SENTENCE = 16
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def mint_paper_id(title_key: str, abstract_key: str) -> str:
    """Id of a new paper, derived from its first-seen entry so that a fresh build from the
    same files mints the same ids whatever order the files landed in."""
    digest = hashlib.sha256(f"{title_key}\x1f{abstract_key}".encode()).hexdigest()
    return f"p{digest[:15]}"


def _sentences(abstract_key: str) -> list[int]:
    return [hash(s) for s in _SENTENCE_END.split(abstract_key) if len(s) >= 30]


@dataclass(eq=False)  # compared by identity: cheap membership tests
class _Paper:
    paper_id: str
    abstract_key: str  # the latest abstract seen: revisions are matched against it
    title_keys: set[str] = field(default_factory=set)


class PaperIndex:
    """Every paper known so far, indexed for matching a new (title, abstract) pair."""

    def __init__(self) -> None:
        self.papers: dict[str, _Paper] = {}
        self.by_title: dict[str, list[_Paper]] = {}
        self.by_sentence: dict[int, list[_Paper]] = {}

    def add(self, paper_id: str, title_key: str, abstract_key: str, sentences: list[int]) -> None:
        """Record that `paper_id` appeared with this title and abstract (latest last)."""
        paper = self.papers.get(paper_id)
        if paper is None:
            paper = self.papers[paper_id] = _Paper(paper_id, abstract_key)
        paper.abstract_key = abstract_key
        if title_key not in paper.title_keys:
            paper.title_keys.add(title_key)
            self.by_title.setdefault(title_key, []).append(paper)
        for sentence in sentences:
            holders = self.by_sentence.setdefault(sentence, [])
            if paper not in holders[-2:] and len(holders) <= MAX_PAPERS_PER_SENTENCE:
                holders.append(paper)

    def match(self, title_key: str, abstract_key: str, sentences: list[int]) -> str | None:
        """The paper this pair belongs to, or None for a new paper."""
        candidates = {id(p): p for p in self.by_title.get(title_key, ())}
        # A paper sharing sentences is a candidate when it shares two, or all there are:
        # one sentence in common is what unrelated abstracts on one topic have.
        shared: dict[int, int] = {}
        for sentence in sentences:
            holders = self.by_sentence.get(sentence, ())
            if len(holders) <= MAX_PAPERS_PER_SENTENCE:
                for paper in holders:
                    shared[id(paper)] = shared.get(id(paper), 0) + 1
                    if shared[id(paper)] == min(2, len(sentences)):
                        candidates[id(paper)] = paper
        best, best_score = None, (0.0, 0.0)
        for paper in candidates.values():
            score = _score(paper, title_key, abstract_key)
            if score is not None and score > best_score:
                best, best_score = paper, score
        return best.paper_id if best else None


def _score(paper: _Paper, title_key: str, abstract_key: str) -> tuple[float, float] | None:
    """(abstract similarity, title similarity) when the pair is this paper, else None."""
    title = max(fuzz.ratio(title_key, known) for known in paper.title_keys)
    if abstract_key == paper.abstract_key:
        if title >= SIMILAR_TITLE_MIN_SIMILARITY or len(abstract_key) >= SAME_ABSTRACT_MIN_CHARS:
            return 100.0, title
        return None
    if title < SIMILAR_TITLE_MIN_SIMILARITY:
        return None
    abstract = fuzz.ratio(
        abstract_key, paper.abstract_key, score_cutoff=SAME_ABSTRACT_MIN_SIMILARITY
    )
    return (abstract, title) if abstract else None


def assign_paper_ids(entries: pl.DataFrame, published: pl.DataFrame | None = None) -> pl.DataFrame:
    """Add `paper_id`, `title_key` and `match_reason` to entries.

    entries: digest_id, position, digest_date, title, abstract (other columns are kept).
    published: digest_id, position, title, paper_id of entries already published (the
    published appearances); they keep their ids. Everything else is matched in
    (digest_date, position) order, so results are deterministic.
    """
    entries = entries.with_columns(
        title_key=title_key_expr("title"), abstract_key=abstract_key_expr("abstract")
    ).sort("digest_date", "position", "digest_id")
    if published is not None and published.height:
        entries = entries.join(
            published.select("digest_id", "position", "title", "paper_id"),
            on=["digest_id", "position", "title"],
            how="left",
            maintain_order="left",
        )
    else:
        entries = entries.with_columns(paper_id=pl.lit(None, pl.String))

    index = PaperIndex()
    for paper_id, title_key, abstract_key in (
        entries.filter(pl.col("paper_id").is_not_null())
        .select("paper_id", "title_key", "abstract_key")
        .unique(maintain_order=True)
        .iter_rows()
    ):
        index.add(paper_id, title_key, abstract_key, _sentences(abstract_key))

    # Each distinct new (title, abstract) pair is matched once, in order of appearance.
    pairs = (
        entries.filter(pl.col("paper_id").is_null())
        .select("title_key", "abstract_key")
        .unique(maintain_order=True)
    )
    ids: list[str] = []
    for title_key, abstract_key in pairs.iter_rows():
        sentences = _sentences(abstract_key)
        paper_id = index.match(title_key, abstract_key, sentences)
        if paper_id is None:
            paper_id = mint_paper_id(title_key, abstract_key)
            while paper_id in index.papers:  # a 60-bit collision: astronomically rare
                paper_id = mint_paper_id(title_key, abstract_key + paper_id)
        index.add(paper_id, title_key, abstract_key, sentences)
        ids.append(paper_id)
    matched = pairs.with_columns(new_id=pl.Series(ids, dtype=pl.String))
    entries = entries.join(
        matched, on=["title_key", "abstract_key"], how="left", maintain_order="left"
    ).with_columns(paper_id=pl.coalesce("paper_id", "new_id"))
    return with_match_reasons(entries.drop("new_id")).drop("abstract_key")


def with_match_reasons(entries: pl.DataFrame) -> pl.DataFrame:
    """`match_reason` of each entry, against its paper's first appearance. It depends only
    on the result, never on what was published before, so a rebuild gives the same rows."""
    order = ["digest_date", "position", "digest_id"]
    first = {
        name: pl.col(name).first().over("paper_id", order_by=order)
        for name in ("title", "title_key", "abstract_key")
    }
    is_first = pl.int_range(pl.len()).over("paper_id", order_by=order) == 0
    same_abstract = pl.col("abstract_key") == first["abstract_key"]
    same_key = pl.col("title_key") == first["title_key"]
    entries = entries.with_columns(
        _first_key=first["title_key"],
        match_reason=pl.when(is_first)
        .then(pl.lit("first_seen"))
        .when(same_abstract & (pl.col("title") == first["title"]))
        .then(pl.lit("exact"))
        .when(same_abstract & same_key)
        .then(pl.lit("normalized_title"))
        .when(same_key)
        .then(pl.lit("revised_abstract"))
        .when(same_abstract)
        .then(pl.lit("same_abstract"))  # refined below where the titles are close
        .otherwise(pl.lit("fuzzy_title+abstract")),
    )
    fuzzy = entries.filter(pl.col("match_reason") == "same_abstract")
    if fuzzy.height:
        close = [
            fuzz.ratio(a, b) >= SIMILAR_TITLE_MIN_SIMILARITY
            for a, b in fuzzy.select("title_key", "_first_key").iter_rows()
        ]
        entries = entries.with_columns(
            match_reason=pl.when(
                pl.col("match_reason") == "same_abstract",
                pl.struct("digest_id", "position").is_in(
                    fuzzy.filter(pl.Series(close, dtype=pl.Boolean))
                    .select(pl.struct("digest_id", "position"))
                    .to_series()
                    .implode()
                ),
            )
            .then(pl.lit("fuzzy_title+abstract"))
            .otherwise(pl.col("match_reason"))
        )
    return entries.drop("_first_key")
