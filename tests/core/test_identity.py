import datetime as dt

import polars as pl

from pipelines.core.identity import assign_paper_ids, fold_title
from schemas.tables import PaperSchema, empty_frame
from tests.conftest import abstract_for

D1, D2 = dt.date(2025, 3, 1), dt.date(2025, 3, 2)


def entries(*rows):
    return pl.DataFrame(
        [
            {
                "digest_id": f"{i:064x}",
                "digest_date": d,
                "position": i + 1,
                "title": t,
                "abstract": a,
            }
            for i, (d, t, a) in enumerate(rows)
        ]
    )


def test_fold_title_ignores_case_unicode_forms_punctuation_and_spacing():
    base = fold_title("LoRA-GA: Low-Rank Adaptation")
    for variant in [
        "lora ga  low rank adaptation",
        "ＬｏＲＡ–GA: Low‐Rank Adaptation",
        "LoRA-GA : Low-Rank  Adaptation",
        "“LoRA-GA”: low-rank adaptation",
    ]:
        assert fold_title(variant) == base
    assert fold_title("Scaling Laws") != fold_title("Scaling Law")


def test_same_title_same_abstract_is_one_paper():
    abstract = abstract_for("retrieval")
    out = assign_paper_ids(
        entries((D1, "Retrieval Is All", abstract), (D2, "retrieval is all.", abstract)),
        empty_frame(PaperSchema),
    )
    assert out["paper_id"].n_unique() == 1
    assert out["match_reason"].to_list() == ["first_seen", "exact"]


def test_same_title_clearly_different_abstracts_are_two_papers():
    out = assign_paper_ids(
        entries(
            (D1, "Attention", abstract_for("machine translation")),
            (
                D2,
                "Attention",
                "A totally different study of human visual attention in "
                "infants. We run eye tracking experiments. Babies look at faces first.",
            ),
        ),
        empty_frame(PaperSchema),
    )
    assert out["paper_id"].n_unique() == 2


def test_revised_abstract_merges():
    original = abstract_for("robust training", 4)
    revised = original.replace("several public", "five public").replace("new method", "method")
    out = assign_paper_ids(
        entries((D1, "Robust Training", original), (D2, "Robust Training", revised)),
        empty_frame(PaperSchema),
    )
    assert out["paper_id"].n_unique() == 1
    assert out["match_reason"][1] == "title+similar_abstract"


def test_known_ids_are_kept_even_when_a_same_titled_paper_lands_earlier():
    first = assign_paper_ids(
        entries((D2, "Attention", abstract_for("translation"))), empty_frame(PaperSchema)
    )
    known = first.select("paper_id", "title_key", "abstract")
    later = assign_paper_ids(
        entries(
            (
                D1,
                "Attention",
                "Eye tracking of infants shows faces win. We measure gaze. "
                "Faces are looked at first.",
            ),
            (D2, "Attention", abstract_for("translation")),
        ),
        known,
    )
    assert later.filter(pl.col("digest_date") == D2)["paper_id"][0] == first["paper_id"][0]
    assert later["paper_id"].n_unique() == 2
