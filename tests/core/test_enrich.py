import polars as pl

from pipelines.core.enrich import acronym, enrich_papers, extract_links, github_repo


def test_links_lose_trailing_punctuation_and_braces():
    text = (
        "Code: https://github.com/harryjo97/GDSS. See https://x.org/a_(b) and "
        "https://github.com/SKDDJ/LoLDU{https://github.com/SKDDJ/LoLDU}."
    )
    assert extract_links(text) == [
        "https://github.com/harryjo97/GDSS",
        "https://x.org/a_(b)",
        "https://github.com/SKDDJ/LoLDU",
    ]


def test_github_repo_from_deep_link():
    links = [
        "https://github.com/tensorflow/addons/blob/master/tensorflow_addons/optimizers/lamb.py"
    ]
    assert github_repo(links) == "tensorflow/addons"
    assert github_repo(["https://example.org/x"]) is None


def test_acronym_from_title_prefix():
    assert acronym("TAME: Task Agnostic Continual Learning using Multiple Experts") == "TAME"
    assert acronym("LoRA-GA: Low-Rank Adaptation with Gradient Approximation") == "LoRA-GA"
    assert acronym("Upsample or Upweight? Balanced Training") is None
    assert acronym("on the other hand: a study") is None


def test_enrich_papers_adds_columns():
    out = enrich_papers(
        pl.DataFrame({"title": ["TAME: X"], "abstract": ["Two words. See https://github.com/a/b."]})
    )
    assert out.row(0, named=True) == {
        "title": "TAME: X",
        "abstract": "Two words. See https://github.com/a/b.",
        "links": ["https://github.com/a/b"],
        "github_repo": "a/b",
        "acronym": "TAME",
        "n_words": 4,
    }
