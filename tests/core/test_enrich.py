import io
import re
from collections import Counter

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.enrich import (
    acronym,
    enrich_papers,
    extract_links,
    reusable,
    sharing_abstracts,
)


def test_links_lose_trailing_punctuation_braces_and_placeholders():
    text = (
        "Code: https://github.com/harryjo97/GDSS. See https://x.org/a_(b) and "
        "https://github.com/SKDDJ/LoLDU{https://github.com/SKDDJ/LoLDU}. Page: "
        "https://gohyojun15.github.io/ANT_diffusion/{url}. (https://github.com/Facico/DLF.)"
    )
    assert [link["url"] for link in extract_links(text)] == [
        "https://github.com/harryjo97/GDSS",
        "https://x.org/a_(b)",
        "https://github.com/SKDDJ/LoLDU",
        "https://gohyojun15.github.io/ANT_diffusion/",
        "https://github.com/Facico/DLF",
    ]


def test_links_have_kinds():
    text = (
        "https://github.com/a/b https://gitlab.com/c/d https://lab.github.io/proj "
        "https://huggingface.co/datasets/x/y https://huggingface.co/org/model-7B "
        "https://huggingface.co/spaces/org/demo https://huface.online/YiDuo/Llama-8B "
        "https://example.org/paper"
    )
    assert [link["kind"] for link in extract_links(text)] == [
        "code",
        "code",
        "project_page",
        "dataset",
        "model",
        "project_page",
        "model",
        "other",
    ]


def test_acronym_from_title_prefix():
    assert acronym("TAME: Task Agnostic Continual Learning using Multiple Experts") == "TAME"
    assert acronym("LoRA-GA: Low-Rank Adaptation with Gradient Approximation") == "LoRA-GA"
    assert acronym("Upsample or Upweight? Balanced Training") is None
    assert acronym("on the other hand: a study") is None


def test_acronym_from_the_abstract_definition():
    title = "A Scalable Second-order Optimizer"
    assert acronym(title, "In this paper, we propose Sophia, Second-order Clipped ...") == "Sophia"
    assert acronym(title, "We introduce DMD2, a set of techniques.") == "DMD2"
    assert acronym(title, "We propose a Pareto Domain Adaptation (ParetoDA) approach.") == (
        "ParetoDA"
    )
    assert acronym(title, "a new optimizer called LAMB; we then provide analysis") == "LAMB"
    # A field's abbreviation is not the paper's name; neither is an emphasised word.
    assert acronym(title, "We propose a reinforcement learning (RL) based method.") is None
    assert acronym(title, "We propose to enhance LoRA by initializing weights.") is None
    assert acronym(title, "We present a simple solution to this problem.") is None


def papers(**columns):
    base = {"paper_id": ["p1"], "title": ["TAME: X"], "abstract_raw": ["Two words."]}
    return pl.DataFrame(base | columns)


def test_enrich_papers_cleans_the_abstract_and_keeps_it_raw():
    raw = "We gain 45\\% in  accuracy. Code at {url}. Data {here.} is open. % TODO cite"
    out = enrich_papers(papers(abstract_raw=[raw])).row(0, named=True)
    assert out["abstract_raw"] == raw
    assert out["abstract"] == "We gain 45% in accuracy. Code at. Data is open."
    assert out["n_words"] == 10


def test_enrich_papers_adds_every_column():
    out = enrich_papers(
        papers(
            title=["TAME: Continual Learning with Experts"],
            abstract_raw=[
                "Continual learning suffers from catastrophic forgetting. "
                "See https://github.com/a/b.git."
            ],
        )
    ).row(0, named=True)
    assert out["links"] == [{"url": "https://github.com/a/b.git", "kind": "code"}]
    assert out["github_repo"] == "a/b"
    assert out["has_code"] is True
    assert out["acronym"] == "TAME"
    assert out["topics"] == ["continual_learning"]
    assert 1 <= len(out["keyphrases"]) <= 5
    assert any("continual" in phrase.lower() for phrase in out["keyphrases"])


def test_keyphrases_are_runs_of_at_most_three_words_between_breaks():
    """Stopwords, punctuation, numbers, single letters and letters outside a-z break a
    phrase; a run of more than three words is no keyphrase; a title phrase ranks first."""
    from pipelines.core.enrich import keyphrases

    text = (
        "Sparse Mixture Routing. Sparse mixture routing improves training and q inference "
        "é speedups 3 gains, self-supervised x+y probes zeta-net. Graph-based probes."
    )
    found = keyphrases(pl.DataFrame({"paper_id": ["p1"], "text": [text]}), top=20)
    assert found["paper_id"].to_list() == ["p1"]
    assert found["keyphrases"][0].to_list() == [
        "sparse mixture routing",  # in the title: doubled, and a phrase: doubled
        "graph-based probes",  # a word of two parts is one word
        "inference",  # between a single letter and a letter outside a-z
        "gains",
        "speedups",
    ]


def test_unchanged_papers_keep_their_columns_and_changed_ones_are_recomputed():
    first = enrich_papers(papers(title=["TAME: A"], abstract_raw=["Continual learning."]))
    tampered = first.with_columns(acronym=pl.lit("KEPT"))  # proves the row was reused
    again = enrich_papers(papers(title=["TAME: A"], abstract_raw=["Continual learning."]), tampered)
    assert again["acronym"][0] == "KEPT"
    changed = enrich_papers(papers(title=["TAME: A"], abstract_raw=["Other text."]), tampered)
    assert changed["acronym"][0] == "TAME"
    retitled = enrich_papers(
        papers(title=["TAME: B"], abstract_raw=["Continual learning."]), tampered
    )
    assert retitled["acronym"][0] == "TAME"
    both = papers(
        paper_id=["p0", "p1"],
        title=["ReNO: B", "TAME: A"],
        abstract_raw=["New.", "Continual learning."],
    )
    mixed = enrich_papers(both, tampered)
    assert mixed.select("paper_id", "acronym").rows() == [("p0", "ReNO"), ("p1", "KEPT")]
    assert reusable(both, tampered).to_list() == [False, True]
    assert enrich_papers(both, tampered, reuse=pl.Series([False, False]))["acronym"][1] == "TAME"
    older_rules = tampered.with_columns(enrichment_version=pl.lit(1, pl.Int32))
    recomputed = enrich_papers(
        papers(title=["TAME: A"], abstract_raw=["Continual learning."]), older_rules
    )
    assert recomputed["acronym"][0] == "TAME"
    assert not reusable(both, older_rules).any() and not reusable(both, None).any()


def test_alongside_is_given_every_papers_cleaned_text_and_its_result_returned():
    from pipelines.core.enrich import enrich_papers_alongside

    first = enrich_papers(papers(title=["TAME: A"], abstract_raw=["Continual learning \\& more."]))
    first = first.with_columns(abstract=pl.lit("Kept as published."))  # proves p1 is reused
    both = papers(
        paper_id=["p1", "p0"],
        title=["TAME: A", "ReNO: B"],
        abstract_raw=["Continual learning \\& more.", "New  \\& text."],
    )
    enriched, alongside = enrich_papers_alongside(both, first, alongside=lambda texts: texts)
    given = alongside.result()
    assert given.rows() == [
        ("p0", "ReNO: B", "New & text."),
        ("p1", "TAME: A", "Kept as published."),
    ]
    assert enriched.select(given.columns).equals(given)
    assert enriched.equals(enrich_papers(both, first))
    assert enrich_papers_alongside(both, first)[1] is None


def test_keyphrases_break_ties_by_text_at_the_last_place_too():
    """The first four phrases of a text are its title's (score doubled); the other three
    tie for the fifth place, which goes to the first of them by text."""
    from pipelines.core.enrich import keyphrases

    text = "Zeta, eta, alpha, gamma, epsilon, delta, beta."
    found = keyphrases(pl.DataFrame({"paper_id": ["p1"], "text": [text]}), top=5)
    assert found["keyphrases"][0].to_list() == ["alpha", "eta", "gamma", "zeta", "beta"]


def _rake_by_hand(text: str, top: int) -> list[str]:
    """The keyphrase rules of one text, in plain Python: what `keyphrases` vectorizes."""
    from pipelines.core.enrich import _STOPWORDS, _TOKEN

    stopwords, breaks, phrases, run = set(_STOPWORDS), 0, [], []
    for token in re.findall(_TOKEN, (text + " .").lower()):
        if "a" <= token[0] <= "z" and len(token) >= 2 and token not in stopwords:
            run.append(token)
            continue
        if run:
            phrases.append((breaks, tuple(run)))  # numbered by the breaks before it
        breaks, run = breaks + 1, []
    candidates = [(number, words) for number, words in phrases if len(words) <= 3]
    if not candidates:
        return []
    freq = Counter(word for _, words in candidates for word in words)
    first = candidates[0][0]
    times, in_title = Counter(words for _, words in candidates), {}
    for number, words in candidates:
        in_title[words] = in_title.get(words, False) or number <= first + 3
    scores = {
        " ".join(words): sum(freq[w] for w in words)
        / len(words)
        * times[words]
        * (2.0 if len(words) > 1 else 1.0)
        * (2.0 if in_title[words] else 1.0)
        for words in times
    }
    return sorted(scores, key=lambda phrase: (-scores[phrase], phrase))[:top]


_WORDS = ["graph", "sparse", "the", "of", "a", "x", "model", "gpt-4", "self-supervised", "é"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(st.sampled_from(_WORDS), st.sampled_from([".", ",", "(", ")", "3", "2.5"])),
            max_size=40,
        ).map(" ".join),
        max_size=6,
    )
)
def test_keyphrases_are_the_rules_applied_to_each_text(texts):
    """Many texts at once (the rows are one array of tokens), each with the phrases the
    rules give it alone; a text without a candidate has none."""
    from pipelines.core.enrich import keyphrases

    frame = pl.DataFrame({"paper_id": [f"p{i}" for i in range(len(texts))], "text": texts})
    found = dict(keyphrases(frame, top=5).iter_rows())
    expected = {f"p{i}": _rake_by_hand(text, 5) for i, text in enumerate(texts)}
    assert found == {paper: phrases for paper, phrases in expected.items() if phrases}


def test_each_papers_columns_are_its_own_whatever_the_slices(monkeypatch):
    from pipelines.core import enrich, frames
    from pipelines.core.enrich import keyphrases
    from tests.conftest import abstract_for

    topics = ["graph pooling", "speech recognition", "protein folding", "image segmentation"]
    many = pl.DataFrame(
        {
            "paper_id": [f"p{i}" for i in range(len(topics) * 2)],
            "title": [f"{t.title()} Study {i}" for i, t in enumerate(topics * 2)],
            "abstract_raw": [
                abstract_for(t) + (" See https://github.com/o/r." if i % 3 == 0 else "")
                for i, t in enumerate(topics * 2)
            ],
        }
    )
    whole = enrich_papers(many)
    # Columns made a few rows at a time are set beside the right papers.
    monkeypatch.setattr(
        enrich, "by_slices", lambda frame, step, rows=0: frames.by_slices(frame, step, 3)
    )
    sliced = enrich_papers(many)
    assert sliced.equals(whole)
    alone = [enrich_papers(many.slice(i, 1)) for i in range(many.height)]
    assert sliced.equals(pl.concat(alone))
    texts = many.select("paper_id", text=pl.format("{}. {}", "title", "abstract_raw"))
    expected = dict(keyphrases(texts).iter_rows())
    assert dict(sliced.select("paper_id", "keyphrases").iter_rows()) == expected


def test_enriching_papers_that_carry_enrichment_columns_computes_them_again():
    first = enrich_papers(papers(abstract_raw=["Sparse attention for long documents."]))
    stale = first.with_columns(links=pl.lit([{"url": "https://x.org", "kind": "other"}]))
    assert enrich_papers(stale).equals(first)


def test_published_papers_sharing_abstracts_keep_every_cleaned_abstract():
    raws = ["Plain text.", "Gains of 45\\% here. % TODO", None]
    enriched = enrich_papers(
        pl.DataFrame({"paper_id": ["a", "b", "c"], "title": ["A", "B", "C"], "abstract_raw": raws})
    )
    # As read back from Parquet: each column its own copy of the strings.
    published = pl.read_parquet(_parquet_bytes(enriched))
    shared = sharing_abstracts(published)
    assert shared.equals(published)
    assert shared["abstract"].to_list() == ["Plain text.", "Gains of 45% here.", None]


def _parquet_bytes(frame: pl.DataFrame) -> io.BytesIO:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    buffer.seek(0)
    return buffer
