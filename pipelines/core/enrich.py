"""Enrichment columns computed from a paper's title and abstract, as Polars expressions
(one vectorized pass over all papers); the single-value helpers run the same expressions.
Keyphrases are RAKE's, also vectorized (YAKE took 17 ms a paper: 15 minutes of CPU for
the 54,000 papers of 1,000 digests), and reused while a paper's text is unchanged."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

import numpy as np
import polars as pl

from pipelines.core.diff import unchanged
from pipelines.core.frames import by_slices, sorted_by
from pipelines.core.text import STOPWORDS, clean_abstract_expr, one
from pipelines.core.topics import topics_of
from schemas.tables import PaperSchema, empty_frame

_URL = r"https?://[^\s<>\"'{}]+"
# Sentence punctuation and closing brackets that scraping glues onto the end of a URL.
_URL_TAIL = r"[.,;:!?\]}'\"]+$"
_GITHUB_REPO = r"(?i)^https?://(?:www\.)?github\.com/([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)"
# Hugging Face and its mirrors seen in digests.
_HF = r"^https?://(?:www\.)?(?:huggingface\.co|hf\.co|huface\.[a-z]+)/"
# The first rule that matches (case-insensitively) gives a link its kind; else `other`.
_LINK_KIND_RULES = [
    ("dataset", _HF + r"datasets/|kaggle\.com/datasets|zenodo\.org|/datasets?/"),
    ("project_page", _HF + r"spaces/|\.github\.io|sites\.google\.com|/project"),
    ("code", r"^https?://(?:www\.)?(?:github\.com|gitlab\.com|bitbucket\.org|codeberg\.org)/"),
    ("model", _HF + r"[^/]+/[^/]+"),
]

_ACRONYM_PREFIX = r"^\s*([^\s:]{2,30}(?:\s[^\s:]{1,12})?)\s*:\s+\S"
_INTRO = (
    r"(?:\b[Ww]e (?:propose|introduce|present|develop|design|call|name)|"
    r"\b(?:called|dubbed|named|termed|coined))"
    r"(?:,?\s+(?:a|an|the|our|novel|new|simple|general|unified|efficient|effective|scalable"
    r"|method|framework|approach|model|algorithm|technique|system|strategy|initialization"
    r"|paradigm|benchmark|dataset|architecture|pipeline|optimizer|family|variant|called"
    r"|named|dubbed|termed)){0,5},?\s+"
)
# The name right after "we propose ...": two capitals or a digit (GradSign, DMD2), or one
# capitalised word followed by a comma or parenthesis (Sophia, ...).
_NAMED = _INTRO + r"([A-Z][A-Za-z0-9]*[A-Z0-9][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)\b"
_NAMED_WORD = _INTRO + r"([A-Z][a-z]{2,})\s*[,(]"
# "we propose Pareto Domain Adaptation (ParetoDA)": an abbreviation defined right away.
_DEFINED = (
    r"(?:\b[Ww]e (?:propose|introduce|present)|\bcalled)[^.()]{0,80}"
    r"\(([A-Z][A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*)\)"
)
# Abbreviations of a field or a building block, not the name of a paper's contribution.
GENERIC_ABBREVIATIONS = frozenset(
    """AI ML DL RL NLP CV LLM LLMs MLLM MLLMs VLM VLMs LM LMs CNN CNNs RNN RNNs GNN GNNs GAN
    GANs VAE VAEs MLP MLPs MoE NAS PDE PDEs ODE ODEs SDE SDEs MSE SGD KD MTL DRO IB META
    SWE OOD ICL CoT RLHF DPO PEFT LoRA BERT GPT ViT ViTs TTA FL SSL MDP MDPs""".split()
)

KEYPHRASES_PER_PAPER = 5
_TEXTS_PER_SLICE = 5_000  # a text explodes into its tokens: about 270 rows
T = TypeVar("T")
F = TypeVar("F", pl.DataFrame, pl.LazyFrame)


def _clean_url(url: pl.Expr) -> pl.Expr:
    """Strip trailing punctuation; a closing parenthesis only when it is unbalanced."""
    for _ in range(2):  # "x).": punctuation, then the parenthesis, then punctuation again
        url = url.str.replace(_URL_TAIL, "")
        unbalanced = url.str.ends_with(")") & (
            url.str.count_matches(r"\(", literal=False) < url.str.count_matches(r"\)")
        )
        url = pl.when(unbalanced).then(url.str.strip_suffix(")")).otherwise(url)
    return url


def link_kind_expr(url: pl.Expr) -> pl.Expr:
    kind = pl.lit("other")
    for name, pattern in reversed(_LINK_KIND_RULES):  # the first rule that matches wins
        kind = pl.when(url.str.contains(f"(?i){pattern}")).then(pl.lit(name)).otherwise(kind)
    return kind


def links_expr(abstract: str | pl.Expr = "abstract") -> pl.Expr:
    """Every distinct URL in the abstract, in order, without trailing punctuation or
    `{...}` debris, each with its kind."""
    expr = pl.col(abstract) if isinstance(abstract, str) else abstract
    urls = (
        expr.str.extract_all(_URL)
        .list.eval(_clean_url(pl.element()))
        .list.eval(pl.element().filter(pl.element().str.contains("://[^/]")))
        .list.unique(maintain_order=True)
    )
    return urls.list.eval(pl.struct(url=pl.element(), kind=link_kind_expr(pl.element())))


def github_repo_expr(links: pl.Expr) -> pl.Expr:
    """`owner/name` of the first GitHub repository among the links."""
    urls = links.list.eval(pl.element().struct.field("url"))
    repos = urls.list.eval(pl.element().str.extract(_GITHUB_REPO, 1).str.strip_suffix(".git"))
    return repos.list.drop_nulls().list.first()


def acronym_expr(title: str | pl.Expr = "title", abstract: str | pl.Expr = "abstract") -> pl.Expr:
    """The short name a paper goes by: the title's prefix before a colon (`TAME` in
    `TAME: Task Agnostic ...`) when it looks like a name (at most two words, with a
    capital or a digit); else the name the abstract introduces (`we propose Sophia, ...`,
    `we introduce DMD2`, `... Adaptation (ParetoDA)`)."""
    title = pl.col(title) if isinstance(title, str) else title
    abstract = pl.col(abstract) if isinstance(abstract, str) else abstract
    prefix = title.str.extract(_ACRONYM_PREFIX, 1)
    generic = pl.lit(sorted(GENERIC_ABBREVIATIONS))

    def name(candidate: pl.Expr) -> pl.Expr:
        # Not a field's abbreviation, and not an emphasised word (DEep, CONtinuous).
        shouted = candidate.str.contains(r"^[A-Z]{2,}[a-z]{2,}$")
        return pl.when(~candidate.is_in(generic) & ~shouted).then(candidate)

    return pl.coalesce(
        pl.when(prefix.str.contains(r"[A-Z0-9]")).then(prefix),
        name(abstract.str.extract(_NAMED, 1)),
        name(abstract.str.extract(_NAMED_WORD, 1)),
        name(abstract.str.extract(_DEFINED, 1)),
    )


def extract_links(abstract: str) -> list[dict]:
    return list(one(links_expr(pl.lit(abstract))))


def acronym(title: str, abstract: str = "") -> str | None:
    return one(acronym_expr(pl.lit(title), pl.lit(abstract)))


_TOKEN = r"[a-z][a-z0-9]*(?:[-+][a-z0-9]+)*|[0-9][0-9.,%]*|[^\sa-z0-9]"
# Function words, and words of LaTeX debris that would otherwise rank high.
_STOPWORDS = sorted(
    STOPWORDS
    | {"using", "based", "via", "paper", "propose", "proposed", "et", "al", "sim", "log"}
    | {"mathcal", "mathbb", "varepsilon", "epsilon", "widetilde", "tilde", "frac", "mathrm"}
)


def keyphrases(texts: pl.DataFrame, top: int = KEYPHRASES_PER_PAPER) -> pl.DataFrame:
    """Keyphrases of each (paper_id, text), best first: (paper_id, keyphrases); papers
    are taken in slices so that memory stays bounded (a text explodes into its tokens)."""
    parts = [
        _keyphrases(texts.slice(start, _TEXTS_PER_SLICE), top)
        for start in range(0, texts.height, _TEXTS_PER_SLICE)
    ]
    if not parts:
        return texts.select("paper_id", keyphrases=pl.lit([], pl.List(pl.String)))
    return pl.concat(parts)


def _keyphrases(texts: pl.DataFrame, top: int) -> pl.DataFrame:
    """Candidates are as in RAKE (Rose et al., 2010): runs of at most three words between
    stopwords and punctuation. A candidate scores the mean frequency of its words in the
    text, times how often it occurs, doubled for a phrase of two or three words and
    doubled again when it is in the title (the text's start). Vectorized over all papers:
    the tokens in Polars, then their counts and candidates as NumPy arrays of hashes."""
    if texts.height > 1 << 16:  # a text's row is kept in 16 bits (_DOC_BITS)
        raise ValueError(f"{texts.height} texts at once: at most {1 << 16}")
    tokens = (
        texts.lazy()
        # The final " ." ends the last phrase of each text before the next text begins.
        .select(
            doc=pl.int_range(pl.len(), dtype=pl.UInt32),
            token=(pl.col("text") + " .").str.to_lowercase().str.extract_all(_TOKEN),
        )
        .explode("token")
        .drop_nulls("token")
    )
    # A word (not a break) is a token of two or more characters starting with a-z: such a
    # token is all [a-z0-9+-]. Compared as strings, not matched by a regex (0.5 s faster
    # for the 14.6 million tokens of 54,000 papers).
    token = pl.col("token")
    is_word = (token >= "a") & (token < "{") & (token.str.len_bytes() >= 2)
    tokens = tokens.select(
        "doc", "token", word=token.hash(seed=0), is_break=~is_word | token.is_in(_STOPWORDS)
    ).collect()
    chosen = _chosen_candidates(
        tokens["doc"].to_numpy(), tokens["word"].to_numpy(), tokens["is_break"].to_numpy(), top
    )
    # The chosen phrases' texts, from their first word's token and the tokens after it: a
    # phrase's words are consecutive tokens (no break between them).
    rows, last = chosen["row"].to_numpy(), max(tokens.height - 1, 0)
    spelled = tokens["token"]
    text = chosen.select(
        "n",
        token=spelled.gather(rows),
        second=spelled.gather(np.minimum(rows + 1, last)),
        third=spelled.gather(np.minimum(rows + 2, last)),
    ).select(
        pl.when(pl.col("n") == 1)
        .then(pl.col("token"))
        .when(pl.col("n") == 2)
        .then(pl.concat_str("token", "second", separator=" "))
        .otherwise(pl.concat_str("token", "second", "third", separator=" "))
    )
    best = (
        chosen.select("doc", "score")
        .with_columns(text=text.to_series())
        .sort(["doc", "score", "text"], descending=[False, True, False])
        .group_by("doc", maintain_order=True)
        .agg(keyphrases=pl.col("text").head(top))
    )
    ids = texts.select("paper_id", doc=pl.int_range(pl.len(), dtype=pl.UInt32))
    return ids.join(best, on="doc", how="inner").select("paper_id", "keyphrases")


# A token's hash keyed by its text's row: the row in the top 16 bits (a slice holds
# _TEXTS_PER_SLICE texts), 48 bits of the hash below. Two of a text's ~130 distinct words
# (or ~100 candidates) share those bits with odds of about 3e-11.
_DOC_BITS = np.uint64(48)
_HASH_DROP = np.uint64(16)
# Odd multipliers mixing a phrase's three word hashes into one.
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal values of `values` begins."""
    if len(values) == 0:
        return np.empty(0, np.int64)
    return np.flatnonzero(np.r_[True, values[1:] != values[:-1]])


def _chosen_candidates(
    doc: np.ndarray, word: np.ndarray, is_break: np.ndarray, top: int
) -> pl.DataFrame:
    """(doc, score, row, n) of the candidates scoring at least their text's top-th best,
    from tokens in text order: each token's text (doc), hash (word) and whether it breaks
    a phrase. `row` is the first word's token, `n` the phrase's words. The same rules in
    Polars (grouping and windows over the tokens' strings) took 7.9-8.7 CPU seconds for
    the 54,000 papers of 1,000 digests, in NumPy 5.7-6.4, for the same keyphrases."""
    # Tokens stay in text order, so one running count numbers the phrases of every text,
    # and the words of a phrase are consecutive.
    phrase = np.cumsum(is_break)
    row = np.flatnonzero(~is_break)
    starts = _run_starts(phrase[row])
    lengths = np.diff(np.r_[starts, len(row)])
    n = np.repeat(lengths, lengths)
    row, n = row[n <= 3], n[n <= 3]
    hashes, in_doc = word[row], doc[row].astype(np.uint64) << _DOC_BITS
    _, group, size = np.unique(
        in_doc | (hashes >> _HASH_DROP), return_inverse=True, return_counts=True
    )
    freq = size[group]  # how often each word occurs in its text, in phrases of 1-3 words
    # Each phrase from its first word and the one or two after it.
    first = _run_starts(phrase[row])
    n, after = n[first], len(row) - 1
    two, three = n >= 2, n >= 3
    second, third = np.minimum(first + 1, after), np.minimum(first + 2, after)
    mean_freq = (freq[first] + np.where(two, freq[second], 0) + np.where(three, freq[third], 0)) / n
    row, phrase, in_doc = row[first], phrase[row[first]], in_doc[first]
    # The title: a text's first four phrase numbers, counted from its first candidate.
    texts = _run_starts(in_doc)
    in_title = phrase <= np.repeat(phrase[texts], np.diff(np.r_[texts, len(phrase)])) + 3
    words = (
        hashes[first] * _MIX[0]
        + np.where(two, hashes[second] * _MIX[1] + np.uint64(1), np.uint64(0))
        + np.where(three, hashes[third] * _MIX[2] + np.uint64(2), np.uint64(0))
    )
    # A candidate is a phrase of a text: its occurrences share their text, words, n and
    # mean frequency; its earliest spells it.
    _, earliest, candidate, times = np.unique(
        in_doc | (words >> _HASH_DROP), return_index=True, return_inverse=True, return_counts=True
    )
    titled = np.bincount(candidate, weights=in_title, minlength=len(times)) > 0
    n = n[earliest]
    score = (
        mean_freq[earliest]
        * times.astype(np.float64)
        * np.where(n > 1, 2.0, 1.0)
        * np.where(titled, 2.0, 1.0)
    )
    row = row[earliest]
    candidates = pl.DataFrame({"doc": doc[row], "score": score, "row": row, "n": n})
    # Only candidates scoring at least a text's top-th best can be chosen: sorting the few
    # left, not all (204,000 for 5,000 papers).
    return candidates.filter(pl.col("score") >= pl.col("score").top_k(top).min().over("doc"))


# Bump when a rule above changes: published rows of an older version are recomputed.
# 3: a trailing-comment rule no longer cuts an abstract at an escaped percent (text.py).
ENRICHMENT_VERSION = 3
ENRICHED_COLUMNS = [
    "abstract",
    "links",
    "github_repo",
    "has_code",
    "acronym",
    "topics",
    "keyphrases",
    "n_words",
    "enrichment_version",
]
_TEXT = ["paper_id", "title", "abstract_raw"]


def sharing_abstracts(papers: F) -> F:
    """`papers` (as published) whose cleaned abstract is the raw abstract's string where
    the two are equal, as an enrichment makes them: read from Parquet, the two columns
    are separate copies (850 MB each for the 541,222 papers of 10,000 digests). Of a
    LazyFrame collected by the streaming engine, a copy is let go a morsel at a time."""
    columns = (
        papers.collect_schema().names() if isinstance(papers, pl.LazyFrame) else papers.columns
    )
    if not {"abstract", "abstract_raw"} <= set(columns):
        return papers
    raw, cleaned = pl.col("abstract_raw"), pl.col("abstract")
    return papers.with_columns(abstract=pl.when(cleaned == raw).then(raw).otherwise(cleaned))


def reusable(papers: pl.DataFrame, previous: pl.DataFrame | None) -> pl.Series:
    """Whether each paper of `papers` (paper_id, title, abstract_raw) can keep the columns
    `previous` (the published papers) has for it: the same title and abstract, enriched
    by the current rules. Such a paper's cleaned abstract is the previous one too."""
    current = _current(papers, previous)
    if current is None:
        return pl.Series("reusable", [False] * papers.height, dtype=pl.Boolean)
    return unchanged(papers, current, ["title", "abstract_raw"])


def _current(papers: pl.DataFrame, previous: pl.DataFrame | None) -> pl.DataFrame | None:
    """The rows of `previous` enriched by the current rules, or None if it has none."""
    if previous is None or not set(_TEXT + ENRICHED_COLUMNS) <= set(previous.columns):
        return None
    current = previous.select(_TEXT + ENRICHED_COLUMNS)
    if not (current["enrichment_version"] == ENRICHMENT_VERSION).all():  # else no copy
        current = current.filter(pl.col("enrichment_version") == ENRICHMENT_VERSION)
    enriched = empty_frame(PaperSchema).select(ENRICHED_COLUMNS).schema
    return current if current.schema == {**papers.select(_TEXT).schema, **enriched} else None


def enrich_papers(
    papers: pl.DataFrame, previous: pl.DataFrame | None = None, reuse: pl.Series | None = None
) -> pl.DataFrame:
    """Enrichment columns for a frame with paper_id, title and abstract_raw (the latest
    abstract as written), sorted by paper_id. A paper whose title and abstract are those
    `previous` (the published papers) has, enriched by the current rules, keeps its
    columns: the work is proportional to what changed. `reuse`: reusable(papers,
    previous), when the caller has it already."""
    return enrich_papers_alongside(papers, previous, reuse)[0]


def enrich_papers_alongside(
    papers: pl.DataFrame,
    previous: pl.DataFrame | None = None,
    reuse: pl.Series | None = None,
    alongside: Callable[[pl.DataFrame], T] | None = None,
) -> tuple[pl.DataFrame, Future[T] | None]:
    """enrich_papers, and `alongside` started on another thread once the abstracts are
    cleaned, to run while the keyphrases are computed: it is given (paper_id, title,
    abstract) of the papers, the abstract cleaned. Its future is returned unresolved, so
    the caller can go on with what does not need it. Keyphrases are mostly
    single-threaded string work, so on two cores what runs alongside costs little more
    time (related papers for the full build of 1,000 digests: 9.0 s for both side by
    side, 10.4 s one after the other)."""
    current = _current(papers, previous)
    if current is None:
        reused, fresh = [], papers
    else:
        same = reusable(papers, previous) if reuse is None else reuse
        reused = [
            papers.filter(same).join(
                current.drop("title", "abstract_raw"), on="paper_id", maintain_order="left"
            )
        ]
        fresh = papers.filter(~same)
    # Related papers need only the cleaned abstracts: started before the other columns
    # are derived (adding a digest to 1,000, 0.03 s sooner on the build's longest path).
    fresh = _with_clean_abstracts(fresh)
    other = None
    if alongside is not None:
        texts = pl.concat(
            [frame.select("paper_id", "title", "abstract") for frame in [*reused, fresh]],
            how="vertical",
        ).sort("paper_id")
        pool = ThreadPoolExecutor(max_workers=1)
        other = pool.submit(alongside, texts)
        pool.shutdown(wait=False)  # its thread ends with its one task
    try:
        fresh = _with_keyphrases(_with_derived_columns(fresh))
    except BaseException:
        if other is not None:  # no thread outlives a failed call
            wait([other])
        raise
    return sorted_by(pl.concat([*reused, fresh], how="vertical"), ["paper_id"]), other


def _with_clean_abstracts(papers: pl.DataFrame) -> pl.DataFrame:
    """`papers` without their enrichment columns, but for the cleaned abstract: cleaned in
    one piece (only those holding debris are rewritten; the others share the raw strings)."""
    return papers.drop(ENRICHED_COLUMNS, strict=False).with_columns(
        abstract=clean_abstract_expr("abstract_raw")
    )


def _with_derived_columns(papers: pl.DataFrame) -> pl.DataFrame:
    """Every enrichment column but the keyphrases, beside the columns of `papers` (with
    their cleaned abstracts), computed a slice at a time and set beside them rather than
    concatenated from slices: taking rows from a column in pieces copies its strings, and
    the papers are joined and sorted on."""
    return papers.hstack(by_slices(papers.select("title", "abstract"), _derived_columns))


def _derived_columns(papers: pl.DataFrame) -> pl.DataFrame:
    """The columns derived from the title and the cleaned abstract."""
    # The topics apart: their rules run side by side as columns of their own (54,000
    # papers: the enrichment columns 1.0-1.1 s, not 1.4-1.6 s with the topics among them).
    derived = (
        papers.lazy()
        .with_columns(links=links_expr())
        .select(
            "links",
            github_repo=github_repo_expr(pl.col("links")),
            has_code=pl.col("links")
            .list.eval(pl.element().struct.field("kind") == "code")
            .list.any(),
            acronym=acronym_expr(),
            n_words=pl.col("abstract").str.count_matches(r"\S+").cast(pl.Int32),
            enrichment_version=pl.lit(ENRICHMENT_VERSION, pl.Int32),
        )
        .collect()
    )
    return derived.insert_column(1, topics_of(papers))


def _with_keyphrases(papers: pl.DataFrame) -> pl.DataFrame:
    # The texts of a slice of papers at a time (all at once, those of 10,000 digests took
    # 870 MB), each slice's keyphrases in its papers' order, set beside them (see
    # _with_derived_columns).
    found = by_slices(
        papers.select("paper_id", "title", "abstract"), _keyphrases_in_order, _TEXTS_PER_SLICE
    )
    papers = papers.with_columns(found.to_series())
    base = [c for c in papers.columns if c not in ENRICHED_COLUMNS]
    return papers.select(*base, *ENRICHED_COLUMNS)


def _keyphrases_in_order(papers: pl.DataFrame) -> pl.DataFrame:
    """(keyphrases) of each of `papers` (paper_id, title, abstract), in their order."""
    texts = papers.select("paper_id", text=pl.format("{}. {}", "title", "abstract"))
    found = texts.select("paper_id").join(
        keyphrases(texts), on="paper_id", how="left", maintain_order="left"
    )
    return found.select(pl.coalesce("keyphrases", pl.lit([], pl.List(pl.String))))
