import datetime as dt

import polars as pl
import pytest

from pipelines.core.identity import assign_paper_ids
from tests.conftest import abstract_for, abstract_loader

D1, D2, D3 = dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)
LONG = abstract_for("sparse attention", 4)


def entries(*rows):
    return pl.DataFrame(
        [
            {
                "digest_id": f"{i:064x}",
                "digest_date": d,
                "position": 1,
                "title": t,
                "abstract": a,
            }
            for i, (d, t, a) in enumerate(rows)
        ],
        schema_overrides={"position": pl.Int32},
    )


def reasons(out):
    return out.sort("digest_date")["match_reason"].to_list()


def test_same_title_same_abstract_is_one_paper():
    out = assign_paper_ids(entries((D1, "Retrieval Is All", LONG), (D2, "Retrieval Is All", LONG)))
    assert out["paper_id"].n_unique() == 1
    assert reasons(out) == ["first_seen", "exact"]


def test_title_spelling_variants_merge_and_say_why():
    out = assign_paper_ids(
        entries(
            (D1, "Retrieval-Augmented Fine-Tuning", LONG),
            (D2, "retrieval augmented fine‐tuning.", LONG),
            (D3, "Retreival-Augmented Fine-Tuning", LONG),  # a typo
        )
    )
    assert out["paper_id"].n_unique() == 1
    assert reasons(out) == ["first_seen", "normalized_title", "fuzzy_title+abstract"]


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
        )
    )
    assert out["paper_id"].n_unique() == 2


def test_revised_abstract_merges():
    revised = LONG.replace("several public", "five public").replace("new method", "method")
    out = assign_paper_ids(entries((D1, "Robust Training", LONG), (D2, "Robust Training", revised)))
    assert out["paper_id"].n_unique() == 1
    assert reasons(out) == ["first_seen", "revised_abstract"]


def test_identical_long_abstract_under_another_title_is_the_same_paper():
    out = assign_paper_ids(
        entries((D1, "Sparse Attention Works", LONG), (D2, "Why Sparse Attention Wins", LONG))
    )
    assert out["paper_id"].n_unique() == 1
    assert reasons(out) == ["first_seen", "same_abstract"]


def test_titles_a_typo_apart_with_different_abstracts_stay_apart():
    out = assign_paper_ids(
        entries(
            (D1, "Scaling Laws for Sparse Models", abstract_for("sparse models", 4)),
            (D2, "Scaling Laws for Sparse Modes", abstract_for("vibration modes", 4)),
        )
    )
    assert out["paper_id"].n_unique() == 2


def test_published_ids_never_change_and_new_entries_join_them():
    published = entries((D2, "Attention", abstract_for("translation"))).with_columns(
        paper_id=pl.lit("p00000000000abcd")  # whatever rule minted it, it stays
    )
    later = assign_paper_ids(
        entries(
            (D2, "Attention", abstract_for("translation")),
            (D1, "attention.", abstract_for("translation")),  # an older digest, backfilled
            (D3, "Attention", "Eye tracking of infants shows faces win. We measure gaze."),
        ),
        published.select("digest_id", "position", "title", "paper_id"),
    )
    ids = dict(later.select("digest_date", "paper_id").iter_rows())
    assert ids[D2] == ids[D1] == "p00000000000abcd"
    assert ids[D3] != "p00000000000abcd"
    # Only the entry at the published place is published as it is: the one joining its
    # paper is not (a build makes that paper again).
    published_as_is = dict(later.select("digest_date", "published_as_is").iter_rows())
    assert published_as_is == {D1: False, D2: True, D3: False}


def test_a_published_id_is_kept_only_by_the_title_published_at_its_place():
    # Another parser may read another title at the same digest and position: that entry
    # is matched afresh, as any new one is.
    published = entries((D1, "Attention", abstract_for("translation"))).with_columns(
        paper_id=pl.lit("p00000000000abcd"), match_reason=pl.lit("first_seen")
    )
    again = assign_paper_ids(
        entries((D1, "Attention", abstract_for("translation"))),
        published.select("digest_id", "position", "title", "paper_id", "match_reason"),
    )
    assert again["paper_id"].to_list() == ["p00000000000abcd"]
    assert again["published_as_is"].to_list() == [True]
    other = assign_paper_ids(
        entries((D1, "Eye Tracking", "Eye tracking of infants shows faces win. We measure.")),
        published.select("digest_id", "position", "title", "paper_id", "match_reason"),
    )
    assert other["paper_id"].to_list() != ["p00000000000abcd"]
    assert other["match_reason"].to_list() == ["first_seen"]
    assert other["published_as_is"].to_list() == [False]


def test_an_id_minted_already_is_minted_again_from_the_key_and_that_id(monkeypatch):
    import pipelines.core.identity as identity
    from pipelines.core.text import fold_abstract, fold_title

    real = identity.mint_paper_id

    def colliding(title_key, abstract_key):  # every first minting gives one id
        return (
            real(title_key, abstract_key) if abstract_key.endswith("pcollision") else "pcollision"
        )

    monkeypatch.setattr(identity, "mint_paper_id", colliding)
    birds, geese = abstract_for("bird migration"), abstract_for("goose navigation")
    out = assign_paper_ids(entries((D1, "Birds Migrate", birds), (D2, "Geese Navigation", geese)))
    # The first new paper takes the id; the second is minted again, as is a new paper
    # whose id a published paper holds.
    again = real(fold_title("Geese Navigation"), fold_abstract(geese) + "pcollision")
    assert out.sort("digest_date")["paper_id"].to_list() == ["pcollision", again]
    published = entries((D1, "Birds Migrate", birds)).with_columns(paper_id=pl.lit("pcollision"))
    later = assign_paper_ids(
        entries((D1, "Birds Migrate", birds), (D3, "Geese Navigation", geese)),
        published.select("digest_id", "position", "title", "paper_id"),
    )
    assert later.sort("digest_date")["paper_id"].to_list() == ["pcollision", again]
    # Minted again into an id a published paper holds too: minted once more.
    monkeypatch.setattr(
        identity,
        "mint_paper_id",
        lambda title_key, key: (
            real(title_key, key) if key.endswith(again) else colliding(title_key, key)
        ),
    )
    owls = entries((D2, "Owls", abstract_for("owl hunting"))).with_columns(
        digest_id=pl.lit(f"{7:064x}"), paper_id=pl.lit(again)
    )
    both = pl.concat([published, owls])
    latest = assign_paper_ids(
        pl.concat(
            [
                both.drop("paper_id"),
                entries((D3, "Geese Navigation", geese)).with_columns(
                    digest_id=pl.lit(f"{8:064x}")
                ),
            ]
        ),
        both.select("digest_id", "position", "title", "paper_id"),
    )
    thrice = real(fold_title("Geese Navigation"), fold_abstract(geese) + again)
    assert latest.sort("digest_date", "title")["paper_id"].to_list() == [
        "pcollision",
        again,
        thrice,
    ]


def test_matching_in_steps_gives_the_ids_of_matching_at_once(tmp_path):
    from pipelines.core.parsing import parse_digest
    from pipelines.core.staging import stage_digest
    from pipelines.core.synthetic import generate_digests

    landed = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    days = [
        stage_digest(parse_digest(text.encode(), name, landed)).entries
        for name, text in generate_digests(6, seed=3, entries_per_digest=20)
    ]
    at_once = assign_paper_ids(pl.concat(days))
    first = assign_paper_ids(pl.concat(days[:3]))
    in_steps = assign_paper_ids(pl.concat(days), first)
    key = ["digest_id", "position"]
    assert at_once.sort(key)["paper_id"].to_list() == in_steps.sort(key)["paper_id"].to_list()
    assert at_once["paper_id"].n_unique() < at_once.height  # repeats were merged


def test_a_new_variant_finds_its_published_paper_through_the_indexes():
    revised = LONG.replace("several public", "five public")
    first = assign_paper_ids(
        entries(
            (D1, "Sparse Attention Transformers", LONG),
            (D1, "Sparse Attention Transformers", "Birds migrate by the stars. We tag geese."),
        )
    )
    assert first["paper_id"].n_unique() == 2  # a title collision: two papers
    published = first.select("digest_id", "position", "title", "paper_id", "match_reason")
    later = assign_paper_ids(
        pl.concat(
            [
                first.select("digest_id", "digest_date", "position", "title", "abstract"),
                entries((D2, "Sparse Atention Transformers", revised)).with_columns(
                    digest_id=pl.lit(f"{9:064x}")
                ),
            ]
        ),
        published,
    )
    new = later.filter(pl.col("digest_date") == D2).row(0, named=True)
    assert new["paper_id"] == first["paper_id"][0]  # the typo'd title, revised abstract
    assert new["match_reason"] == "fuzzy_title+abstract"
    assert later.filter(pl.col("digest_date") == D1)["paper_id"].to_list() == (
        first["paper_id"].to_list()
    )
    assert later.filter(pl.col("digest_date") == D1)["match_reason"].to_list() == [
        "first_seen",
        "first_seen",
    ]


def test_pairs_that_share_nothing_skip_the_matcher_without_changing_any_id(monkeypatch):
    import pipelines.core.identity as identity

    rows = [
        (D1, "Sparse Attention Transformers", LONG),
        (D2, "Sparse Attention Transformers", LONG),  # a repeat: shares its title
        (D2, "Sparse Atention Transformers", LONG.replace("several", "five")),  # a variant
        (D1, "Birds Migrate By The Stars", abstract_for("bird migration")),  # alone
        (D3, "Geese Navigation", abstract_for("goose navigation")),  # alone
    ]
    pairs = (
        assign_paper_ids(entries(*rows))
        .with_columns(
            abstract_key=identity.abstract_key_expr("abstract"),
            sentences=identity._sentences_expr("abstract"),
        )
        .unique(["title_key", "abstract_key"], maintain_order=True)
    )
    shown = pairs.select("title_key", "abstract_key", "sentences")
    alone = identity._alone(shown, identity.PaperIndex(), identity._sentence_counts(shown))
    assert dict(zip(pairs["title"], alone, strict=True)) == {
        "Sparse Attention Transformers": False,
        "Birds Migrate By The Stars": True,
        "Sparse Atention Transformers": False,
        "Geese Navigation": True,
    }
    fast = assign_paper_ids(entries(*rows))
    monkeypatch.setattr(
        identity, "_alone", lambda pairs, index, counts: pl.Series([False] * pairs.height)
    )
    assert fast.equals(assign_paper_ids(entries(*rows)))
    assert fast["paper_id"].n_unique() == 3


def test_a_sentence_said_twice_in_one_abstract_counts_once():
    import pipelines.core.identity as identity

    said_twice = "Sparse attention scales to long documents well. " * 2 + abstract_for("sparse")
    pairs = pl.DataFrame({"abstract": [said_twice, abstract_for("graphs")]}).select(
        sentences=identity._sentences_expr("abstract")
    )
    per_pair = (
        identity._pair_sentences(pairs)
        .group_by("row")
        .agg(n=pl.len(), distinct=pl.col("sentence").n_unique())
    )
    assert per_pair.height == 2 and (per_pair["n"] == per_pair["distinct"]).all()
    assert pairs["sentences"].list.len()[0] > per_pair.sort("row")["n"][0]  # it was there twice


def test_sentences_common_to_many_new_pairs_are_boilerplate_not_evidence(monkeypatch):
    import pipelines.core.identity as identity

    # Every abstract opens with the same two sentences (boilerplate once more than
    # MAX_PAPERS_PER_SENTENCE papers say them) and goes on about its own topic.
    boilerplate = (
        "This paper was accepted at a major venue this year. "
        "We thank the reviewers for their many helpful comments. "
    )
    n = identity.MAX_PAPERS_PER_SENTENCE + 2
    rows = [(D1, f"Study Number {i}", boilerplate + abstract_for(f"topic {i}")) for i in range(n)]
    rows.append((D2, "Study Number 3", boilerplate + abstract_for("topic 3")))  # a repeat
    out = assign_paper_ids(entries(*rows))
    assert out["paper_id"].n_unique() == n

    pairs = out.with_columns(
        abstract_key=identity.abstract_key_expr("abstract"),
        sentences=identity._sentences_expr("abstract"),
    ).unique(["title_key", "abstract_key"], maintain_order=True)
    pairs = pairs.select("title_key", "abstract_key", "sentences")
    counts = identity._sentence_counts(pairs)
    index = identity._index_of_candidates(
        out.clear(),
        identity.SentenceCache().frame,  # no known paper, so none of their sentences
        pairs,
        counts,
    )
    assert len(index.boilerplate) == 2
    # Sharing only boilerplate, every pair is alone (the repeat is its paper's pair).
    alone = identity._alone(pairs, index, counts)
    assert alone.len() == n and alone.all()
    monkeypatch.setattr(
        identity, "_alone", lambda pairs, index, counts: pl.Series([False] * pairs.height)
    )
    assert out.equals(assign_paper_ids(entries(*rows)))


def test_a_known_paper_saying_a_sentence_twice_holds_it_once():
    import pipelines.core.identity as identity

    shared = "We release a benchmark of twelve thousand annotated protein structures. "
    # Half the boilerplate threshold of known papers, each saying the shared sentence
    # twice: counted once a paper, with the new pair it is evidence, not boilerplate.
    n_known = identity.MAX_PAPERS_PER_SENTENCE // 2
    rows = [
        (D1, f"Known Study {i}", shared + abstract_for(f"topic {i}") + " " + shared)
        for i in range(n_known)
    ]
    known = assign_paper_ids(entries(*rows))
    latest = known.select("paper_id", sentences=identity._sentences_expr("abstract"))
    assert (latest["sentences"].list.len() > latest["sentences"].list.n_unique()).all()
    pairs = entries((D2, "A New Study", shared + abstract_for("a new topic"))).select(
        title_key=identity.title_key_expr("title"),
        abstract_key=identity.abstract_key_expr("abstract"),
        sentences=identity._sentences_expr("abstract"),
    )
    index = identity._index_of_candidates(known, latest, pairs, identity._sentence_counts(pairs))
    assert index.boilerplate == set()
    assert set(index.papers) == set(known["paper_id"])  # each a candidate, by that sentence
    # One known paper more past the threshold, and the sentence is boilerplate: no candidate.
    more = identity.MAX_PAPERS_PER_SENTENCE + 1 - n_known
    rows += [(D1, f"Other Study {i}", shared + abstract_for(f"other {i}")) for i in range(more)]
    known = assign_paper_ids(entries(*rows))
    latest = known.select("paper_id", sentences=identity._sentences_expr("abstract"))
    index = identity._index_of_candidates(known, latest, pairs, identity._sentence_counts(pairs))
    assert len(index.boilerplate) == 1 and index.papers == {}


def test_a_kept_sentence_cache_gives_the_same_ids_and_follows_the_latest_abstracts():
    from pipelines.core.identity import SentenceCache, _sentences_expr
    from pipelines.core.parsing import parse_digest
    from pipelines.core.staging import stage_digest
    from pipelines.core.synthetic import generate_digests

    landed = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    days = [
        stage_digest(parse_digest(text.encode(), name, landed)).entries
        for name, text in generate_digests(6, seed=5, entries_per_digest=20)
    ]
    cache = SentenceCache()
    first = assign_paper_ids(pl.concat(days[:3]), None, cache)
    published = first.select("digest_id", "position", "title", "paper_id", "match_reason")
    with_cache = assign_paper_ids(pl.concat(days), published, cache)
    without = assign_paper_ids(pl.concat(days), published)
    assert with_cache.equals(without)
    # The cache now holds the sentences of every paper's latest abstract, and only those.
    latest = with_cache.group_by("paper_id").agg(pl.col("abstract").last())
    expected = latest.select("paper_id", sentences=_sentences_expr("abstract"))
    assert (
        cache.frame.select("paper_id", "sentences")
        .sort("paper_id")
        .equals(expected.sort("paper_id"))
    )
    # Rows kept for other abstracts (a stale cache) are not used: the texts are hashed again.
    stale = SentenceCache(
        cache.frame.with_columns(
            pl.col("abstract_hash") + 1, sentences=pl.lit([], pl.List(pl.UInt64))
        )
    )
    assert assign_paper_ids(pl.concat(days), published, stale).equals(without)
    assert stale.frame.sort("paper_id").equals(cache.frame.sort("paper_id"))


def test_abstracts_left_unloaded_are_loaded_where_needed_and_give_the_same_ids():
    from pipelines.core.identity import SentenceCache, with_entry_keys

    earlier = entries(
        (D1, "Sparse Attention Transformers", LONG),
        (D1, "Bird Migration", abstract_for("bird migration by the stars")),
        (D1, "Protein Folding", abstract_for("protein folding in the cell")),
    )
    cache = SentenceCache()
    first = assign_paper_ids(earlier, None, cache)
    published = first.select("digest_id", "position", "title", "paper_id", "match_reason")
    later = entries(
        (D2, "Sparse Atention Transformers", LONG.replace("several public", "five public")),
        (D2, "Quantum Error Correction", abstract_for("quantum error correction")),
    ).with_columns(digest_id=pl.Series([f"{i:064x}" for i in (7, 8)]))
    every = with_entry_keys(pl.concat([earlier, later]))
    expected = assign_paper_ids(every, published, SentenceCache(cache.frame))

    load, asked = abstract_loader(every)

    unloaded = every.with_columns(abstract=pl.lit(None, pl.String))
    lazily = assign_paper_ids(unloaded, published, SentenceCache(cache.frame), load)
    assert lazily.drop("abstract").equals(expected.drop("abstract"))
    assert lazily["paper_id"].n_unique() == 4  # the revision joined its paper
    # Loaded: the new entries and the entry of the paper one joins.
    loaded = pl.concat(asked).join(every, on=["digest_id", "position"])["title"]
    assert sorted(loaded.unique()) == [
        "Quantum Error Correction",
        "Sparse Atention Transformers",
        "Sparse Attention Transformers",
    ]
    # What was loaded is not held on to: the entries come back as they were given.
    assert lazily["abstract"].null_count() == lazily.height
    with pytest.raises(ValueError, match="lack their abstract"):
        assign_paper_ids(unloaded, published, SentenceCache(cache.frame))


def test_sentence_counts_are_the_pairs_holding_each_sentence():
    import random

    import pipelines.core.identity as identity

    rng = random.Random(3)
    sentences = [[rng.randrange(40) for _ in range(rng.randrange(6))] for _ in range(300)]
    pairs = pl.DataFrame({"sentences": sentences}, schema={"sentences": pl.List(pl.UInt64)})
    counts = identity._sentence_counts(pairs)
    expected: dict[int, int] = {}
    for held in sentences:
        for sentence in set(held):  # a pair saying it twice holds it once
            expected[sentence] = expected.get(sentence, 0) + 1
    assert dict(counts.select("sentence", "n").iter_rows()) == expected
    assert counts["sentence"].is_unique().all()
