import datetime as dt
import weakref

import polars as pl

from pipelines.core.build import Previous, build_tables, digest_statuses
from pipelines.core.parsing import PARSER_VERSION, parse_digest
from pipelines.core.staging import StagingArea, stage_digest
from pipelines.core.validation import validate
from tests.conftest import abstract_for, abstract_loader, digest_text

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def staged(name, date_label, entries, landed):
    return stage_digest(parse_digest(digest_text(date_label, entries).encode(), name, landed))


def build(*digests):
    return build_tables(
        pl.concat([d.digest for d in digests]),
        pl.concat([d.entries for d in digests]),
        pl.concat([d.quarantine for d in digests]),
        Previous.nothing(),
    )


def test_later_file_for_same_date_supersedes_earlier():
    old = staged("a.txt", "Mar 14", [("Old Paper", abstract_for("old"))], T0)
    new = staged(
        "b.txt", "Mar 14", [("New Paper", abstract_for("new"))], T0 + dt.timedelta(hours=1)
    )
    tables = build(old, new)
    status = dict(tables["digests"].select("source_path", "status").iter_rows())
    assert status == {"a.txt": "superseded", "b.txt": "ingested"}
    assert (
        tables["digests"].filter(pl.col("source_path") == "a.txt")["superseded_by"][0]
        == new.digest_id
    )
    assert tables["papers"]["title"].to_list() == ["New Paper"]


def test_new_content_at_same_path_supersedes_old_content():
    old = staged("a.txt", "Mar 14", [("Old Paper", abstract_for("old"))], T0)
    new = staged(
        "a.txt", "Mar 15", [("New Paper", abstract_for("new"))], T0 + dt.timedelta(hours=1)
    )
    statuses = digest_statuses(pl.concat([old.digest, new.digest]))
    assert dict(statuses.select("digest_id", "status").iter_rows()) == {
        old.digest_id: "superseded",
        new.digest_id: "ingested",
    }


def test_rejected_replacement_does_not_supersede_good_data():
    good = staged("a.txt", "Mar 14", [("Good Paper", abstract_for("good"))], T0)
    broken = stage_digest(parse_digest(b"", "a.txt", T0 + dt.timedelta(hours=1)))
    tables = build(good, broken)
    assert sorted(tables["digests"]["status"].to_list()) == ["ingested", "rejected"]
    assert tables["papers"]["title"].to_list() == ["Good Paper"]
    assert tables["quarantine"]["reason"].to_list() == ["empty_file"]


def test_papers_aggregate_appearances():
    a = staged("a.txt", "Mar 14", [("P1", abstract_for("one")), ("P2", abstract_for("two"))], T0)
    b = staged("b.txt", "Mar 15", [("P2", abstract_for("two"))], T0)
    tables = build(a, b)
    p2 = tables["papers"].filter(pl.col("title") == "P2").row(0, named=True)
    assert (p2["first_seen"], p2["last_seen"], p2["n_appearances"]) == (
        dt.date(2025, 3, 14),
        dt.date(2025, 3, 15),
        2,
    )
    assert tables["appearances"].height == 3


def test_the_latest_abstract_and_title_win_and_every_spelling_is_kept():
    original = abstract_for("sparse attention", 4)
    revised = original.replace("several public", "five public") + " See {url}."
    a = staged("a.txt", "Mar 14", [("Sparse Attention Wins", original)], T0)
    b = staged("b.txt", "Mar 16", [("Sparse attention wins.", revised)], T0)
    c = staged("c.txt", "Mar 15", [("Sparse Attention  Wins", original)], T0)
    tables = build(a, b, c)
    [paper] = tables["papers"].rows(named=True)
    assert paper["abstract_raw"] == revised  # the latest digest's, whatever the landing order
    assert paper["abstract"] == revised.replace(" See {url}.", " See.")
    assert paper["title"] == "Sparse attention wins."
    assert paper["title_variants"] == [
        "Sparse Attention Wins",
        "Sparse Attention  Wins",
        "Sparse attention wins.",
    ]
    reasons = tables["appearances"].sort("digest_date")["match_reason"].to_list()
    assert reasons == ["first_seen", "normalized_title", "revised_abstract"]
    assert tables["related_papers"].height == 0  # one paper relates to nothing


def test_published_row_failing_its_schema_moves_to_quarantine_with_the_check_named():
    good = staged("a.txt", "Mar 14", [("Good Paper", abstract_for("good"))], T0)
    other = staged("b.txt", "Mar 15", [("Other Paper", abstract_for("other"))], T0)
    tampered = other.digest.with_columns(n_lines=pl.lit(99, pl.Int32))  # breaks nothing_lost
    tables = build_tables(
        pl.concat([good.digest, tampered]),
        pl.concat([good.entries, other.entries]),
        pl.concat([good.quarantine, other.quarantine]),
        Previous.nothing(),
    )
    assert tables["digests"]["source_path"].to_list() == ["a.txt"]
    [row] = tables["quarantine"].rows(named=True)
    assert row["stage"] == "schema:digests" and row["source_path"] == "b.txt"
    assert "nothing_lost" in row["message"]
    assert '"n_lines":99' in row["raw_text"]  # the rejected row itself is kept


def _rebuilt(published: dict, *digests, parser_version=PARSER_VERSION) -> dict[str, int]:
    """n_appearances by title of a build on top of `published` tables whose papers are
    marked (n_appearances 99): a paper that shows 99 was kept as published."""
    marked = published["papers"].with_columns(n_appearances=pl.lit(99, pl.Int32))
    previous = Previous(published["appearances"], marked, release=1, parser_version=parser_version)
    tables = build_tables(
        pl.concat([d.digest for d in digests]),
        pl.concat([d.entries for d in digests]),
        pl.concat([d.quarantine for d in digests]),
        previous,
    )
    # The kept papers come first, as published, then those made again: compared by id.
    scratch = build(*digests)["papers"]
    papers = tables["papers"].sort("paper_id")
    unmarked = papers.with_columns(n_appearances=scratch["n_appearances"])
    assert unmarked.equals(scratch)  # but for the mark, a build from scratch
    return dict(tables["papers"].select("title", "n_appearances").iter_rows())


def test_papers_whose_digests_did_not_change_are_kept_as_published():
    a = staged(
        "a.txt", "Mar 14", [("Kept", abstract_for("kept")), ("Again", abstract_for("again"))], T0
    )
    b = staged(
        "b.txt", "Mar 15", [("Again", abstract_for("again")), ("New", abstract_for("new"))], T0
    )
    assert _rebuilt(build(a), a, b) == {"Kept": 99, "Again": 2, "New": 1}
    # A digest superseded: the papers it listed are made again.
    b2 = staged("b2.txt", "Mar 15", [("Newer", abstract_for("newer"))], T0 + dt.timedelta(hours=1))
    assert _rebuilt(build(a, b), a, b, b2) == {"Kept": 99, "Again": 1, "Newer": 1}
    # Another parser may have read the same files otherwise: nothing is kept.
    assert _rebuilt(build(a), a, parser_version="0.0.0") == {"Kept": 1, "Again": 1}


def test_only_the_appearances_of_papers_made_again_are_checked_against_their_schema(
    monkeypatch,
):
    import pipelines.core.build as build_module

    checked_titles = {}

    def recording(frame, model, passed=None):
        if "title" in frame.columns:
            unpassed = frame if passed is None else frame.filter(~passed)
            checked_titles[model.__name__] = sorted(unpassed["title"])
        return validate(frame, model, passed)

    a = staged(
        "a.txt", "Mar 14", [("Kept", abstract_for("kept")), ("Again", abstract_for("again"))], T0
    )
    b = staged(
        "b.txt", "Mar 15", [("Again", abstract_for("again")), ("New", abstract_for("new"))], T0
    )
    published = build(a)
    monkeypatch.setattr(build_module, "validate", recording)
    tables = build_tables(
        pl.concat([a.digest, b.digest]),
        pl.concat([a.entries, b.entries]),
        pl.concat([a.quarantine, b.quarantine]),
        Previous(
            published["appearances"], published["papers"], release=1, parser_version=PARSER_VERSION
        ),
    )
    # "Kept" appeared in a.txt alone, published as it is; "Again" gained a day.
    assert checked_titles["AppearanceSchema"] == ["Again", "Again", "New"]
    assert checked_titles["PaperSchema"] == ["Again", "New"]
    assert tables["appearances"].height == 4 and tables["quarantine"].height == 0


def test_a_digest_listing_a_paper_twice_has_its_papers_made_again():
    # The same paper twice, the second time with a period (an exact repeat is quarantined).
    listed = [
        ("Twice", abstract_for("twice")),
        ("Other", abstract_for("other")),
        ("Twice.", abstract_for("twice")),
    ]
    a = staged("a.txt", "Mar 14", listed, T0)
    b = staged("b.txt", "Mar 15", [("Alone", abstract_for("alone"))], T0)
    assert build(a)["appearances"].height == 2
    # The second listing is no published appearance: it is matched again each build.
    assert _rebuilt(build(a, b), a, b) == {"Twice.": 1, "Other": 1, "Alone": 99}


def test_related_papers_alongside_the_keyphrases_or_after_them_are_the_same(monkeypatch):
    from pipelines.core import build as build_module

    a = staged("a.txt", "Mar 14", [("Graph Nets", abstract_for("graph networks"))], T0)
    b = staged(
        "b.txt",
        "Mar 15",
        [("Graph Nets Again", abstract_for("graph networks")), ("Speech", abstract_for("asr"))],
        T0,
    )
    alongside = build(a, b)
    monkeypatch.setattr(build_module, "ALONGSIDE_MAX_PAPERS", 0)
    after = build(a, b)
    assert alongside["related_papers"].height > 0
    for name in ("papers", "related_papers", "appearances"):
        assert alongside[name].equals(after[name])


def test_a_build_given_entries_without_abstracts_loads_those_it_needs_and_builds_the_same():
    from pipelines.core.build import _build

    a = staged(
        "a.txt", "Mar 14", [("Kept", abstract_for("kept")), ("Again", abstract_for("again"))], T0
    )
    b = staged("b.txt", "Mar 15", [("Other", abstract_for("other"))], T0)
    c = staged(
        "c.txt", "Mar 16", [("Again", abstract_for("again")), ("New", abstract_for("new"))], T0
    )

    def staged_rows(*staged_digests):
        return [pl.concat([getattr(d, n) for d in staged_digests]) for n in StagingArea.FILES]

    digests, entries, quarantine = staged_rows(a, b)
    published, kept = _build(digests, [entries], quarantine, Previous.nothing())
    previous = Previous(
        published["appearances"],
        published["papers"],
        sentences=kept.sentences.frame,  # else every paper's abstract is hashed again
        release=1,
        parser_version=PARSER_VERSION,
    )
    digests, entries, quarantine = staged_rows(a, b, c)
    expected = build_tables(digests, entries, quarantine, previous)
    load, asked = abstract_loader(entries)

    unloaded = entries.with_columns(abstract=pl.lit(None, pl.String))
    tables, _ = _build(digests, [unloaded], quarantine, previous, load)
    for name, frame in expected.items():
        assert tables[name].equals(frame), name
    # The papers made again are the new digest's: its entries and Again's earlier one.
    loaded = pl.concat(asked).join(entries, on=["digest_id", "position"])
    assert sorted(set(loaded["title"])) == ["Again", "New"]
    assert set(loaded["digest_id"]) == {a.digest_id, c.digest_id}


def test_a_full_build_from_entries_without_abstracts_loads_them_a_chunk_at_a_time(monkeypatch):
    import pipelines.core.build as build_module
    import pipelines.core.identity as identity

    days = [
        staged(
            f"{day}.txt",
            f"Mar {day}",
            # A revised abstract each day: matching compares abstracts, not only keys.
            [
                ("Sparse Attention", abstract_for("sparse attention") + f" Revision {day}."),
                (f"Paper {day}", abstract_for(f"topic {day}")),
                ("Shared Title", abstract_for(["protein folding", "bird migration"][day % 2])),
            ],
            T0,
        )
        for day in range(10, 16)
    ]
    digests, entries, quarantine = (
        pl.concat([getattr(d, n) for d in days]) for n in StagingArea.FILES
    )
    expected = build_tables(digests, entries, quarantine, Previous.nothing())
    monkeypatch.setattr(identity, "ENTRIES_PER_LOAD", 4)
    monkeypatch.setattr(build_module, "ENTRIES_PER_LOAD", 4)
    load, asked = abstract_loader(entries)

    unloaded = entries.with_columns(abstract=pl.lit(None, pl.String))
    tables, _ = build_module._build(digests, [unloaded], quarantine, Previous.nothing(), load)
    for name, frame in expected.items():
        assert tables[name].equals(frame), name
    assert tables["papers"]["abstract_raw"].null_count() == 0
    # Loaded a chunk at a time, never all at once: the keys of the 18 entries first, in
    # chunks of entries next to each other in date order; then the abstracts matching
    # compares (those under a title another pair has) and each paper's latest, by chunks
    # of their own.
    order = entries.sort("digest_date", "position").with_row_index("rank")
    ranks = [keys.join(order, on=["digest_id", "position"])["rank"] for keys in asked]
    assert [r.to_list() for r in ranks[:5]] == [
        list(range(start, min(start + 4, 18))) for start in (0, 4, 8, 12, 16)
    ]
    assert len(asked) > 5 and max(keys.height for keys in asked) <= 4


def test_the_entries_handed_to_a_build_are_let_go_before_enrichment(monkeypatch):
    import pipelines.core.build as build_module

    digests = [
        staged("a.txt", "Mar 14", [("Paper A", abstract_for("a"))], T0),
        staged("b.txt", "Mar 15", [("Paper B", abstract_for("b"))], T0),
    ]
    matched_entries, alive_at_enrichment = [], []
    real_match, real_enrich = build_module.assign_paper_ids, build_module.enrich_papers_alongside

    def match(entries, *args):
        matched_entries.append(weakref.ref(entries))
        return real_match(entries, *args)

    def enrich(*args, **kwargs):
        alive_at_enrichment.append(matched_entries[0]() is not None)
        return real_enrich(*args, **kwargs)

    monkeypatch.setattr(build_module, "assign_paper_ids", match)
    monkeypatch.setattr(build_module, "enrich_papers_alongside", enrich)
    handed = [pl.concat([d.entries for d in digests])]
    tables, _ = build_module._build(
        pl.concat([d.digest for d in digests]),
        handed,
        pl.concat([d.quarantine for d in digests]),
        Previous.nothing(),
    )
    # Matched, the entries are held by nothing: the build went on without them.
    assert handed == [] and alive_at_enrichment == [False]
    assert sorted(tables["papers"]["title"]) == ["Paper A", "Paper B"]
