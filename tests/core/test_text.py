import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.text import (
    SPACING,
    abstract_key_expr,
    clean_abstract,
    clean_abstract_expr,
    fold_abstract,
    fold_title,
    title_key_expr,
    title_words_expr,
)


def test_fold_title_ignores_case_unicode_forms_punctuation_and_spacing():
    base = fold_title("LoRA-GA: Low-Rank Adaptation for Efficient Fine-Tuning")
    for variant in [
        "lora ga  low rank adaptation for efficient fine tuning",
        "ＬｏＲＡ–GA: Low‐Rank Adaptation for Eﬃcient Fine-Tuning",  # full width, ligature
        "LoRA-GA : Low-Rank  Adaptation for Efficient Fine-Tuning.",
        "“LoRA-GA”: low-rank adaptation for efficient finetuning",
        "LoRA—GA:\u00a0Low-Rank Adaptation for Efficient Fine-Tuning",
    ]:
        assert fold_title(variant) == base, variant
    assert fold_title("Schrödinger Bridges") == fold_title("Schrodinger Bridges")
    assert fold_title("Scaling Laws") != fold_title("Scaling Law")


def test_a_column_of_titles_folds_each_row_as_if_alone():
    # ASCII rows are only lower-cased; the others decomposed: each must land in its row.
    titles = ["Schrödinger Bridges", "Plain ASCII", "Eﬃcient ＦＵＬＬ-width", None, "Ça Va"]
    folded = pl.DataFrame({"t": titles}).select(
        key=title_key_expr("t"), words=title_words_expr("t")
    )
    assert folded["key"].to_list() == [
        "schrodingerbridges",
        "plainascii",
        "efficientfullwidth",
        None,
        "cava",
    ]
    assert folded["words"].to_list() == [
        "schrodinger bridges",
        "plain ascii",
        "efficient full width",
        None,
        "ca va",
    ]


def test_clean_abstract_removes_latex_and_scraping_debris():
    assert clean_abstract("a 96.4\\% gain") == "a 96.4% gain"
    assert clean_abstract("see https://x.io/{url}. done") == "see https://x.io/. done"
    assert clean_abstract("code {here.} now") == "code now"
    assert clean_abstract("prior work~nichani2023provable shows") == (
        "prior work nichani2023provable shows"
    )
    assert clean_abstract("ends here. % a stray comment") == "ends here."
    assert clean_abstract("by 69.06%, while") == "by 69.06%, while"  # a real percent stays
    # An escaped percent after a space is text, not the start of a comment.
    escaped = "We improve accuracy by 5 \\% over the baselines. Code is open."
    assert clean_abstract(escaped) == "We improve accuracy by 5 % over the baselines. Code is open."


def test_fold_abstract_uses_the_cleaned_text():
    assert fold_abstract("We  gain 45\\% {url}.") == fold_abstract("we gain 45%.")


def test_the_matching_key_keeps_the_rule_published_paper_ids_were_minted_with():
    # Its comment rule runs after the unescaping, as it did: the key of this abstract
    # stops at the percent, and a rebuild from scratch mints the ids it minted.
    escaped = "We improve accuracy by 5 \\% over the baselines. Code is open."
    assert fold_abstract(escaped) == "we improve accuracy by 5"
    assert fold_abstract("We  gain 45\\% here. % a stray comment") == "we gain 45% here."


# Pieces of the debris the rules remove, and of the text around it.
_PIECES = [
    "a", "We", " ", "  ", "\t", "\n", "\u00a0", ".", ",", ":", "~", "%", "\\%", "\\&", "\\_",
    "\\", "{", "}", "{url}", "{here.}", "{link}", "\\emph{", "\\textbf{new}", "(", ")", "x2",
]  # fmt: skip


@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join), max_size=20))
@settings(max_examples=300, deadline=None)
def test_an_abstract_without_debris_is_taken_as_it_is_and_the_others_cleaned(texts):
    from pipelines.core.text import _DEBRIS, _without

    # Only the rows a rule can change are rewritten: the result is every rule run on
    # every row, nulls included.
    column = pl.DataFrame({"a": [*texts, None]}, schema={"a": pl.String})
    every_rule = column.select(_without("a", _DEBRIS)).to_series()
    assert column.select(clean_abstract_expr("a")).to_series().equals(every_rule)


@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join), max_size=20))
@settings(max_examples=300, deadline=None)
def test_the_matching_key_of_an_abstract_without_debris_skips_the_rules_with_the_same_key(texts):
    from pipelines.core.text import _KEY_DEBRIS, _nfkc, _without

    # The key of every row is the one its every rule gives (the ids of published papers
    # were minted from it), whichever rows the rules were skipped for.
    column = pl.DataFrame({"a": [*texts, None]}, schema={"a": pl.String})
    every_rule = column.select(
        _without("a", _KEY_DEBRIS)
        .map_batches(_nfkc, return_dtype=pl.String)
        .str.to_lowercase()
        .str.replace_all(SPACING, " ")
        .str.strip_chars()
    ).to_series()
    assert column.select(abstract_key_expr("a")).to_series().equals(every_rule)
