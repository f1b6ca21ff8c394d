"""Staging: parse results kept in packs, each digest read once, small packs merged."""

import datetime as dt

import polars as pl
import pytest

from pipelines.core import identity
from pipelines.core.identity import (
    ENTRY_KEYS_VERSION,
    assign_paper_ids,
    entry_keys,
    with_entry_keys,
)
from pipelines.core.parsing import parse_digest
from pipelines.core.staging import StagedDigest, StagingArea, stage_digests
from pipelines.core.storage import Storage
from tests.conftest import abstract_for, digest_text

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def _digests(n: int, first_day: int = 1) -> list[StagedDigest]:
    parsed = [
        parse_digest(
            # ... and a title left without its abstract: a quarantine row
            (
                digest_text(f"Mar {day}", [(f"Paper of day {day}", abstract_for(f"day{day}"))])
                + f"\nA title of day {day} with no abstract\n"
            ).encode(),
            f"2025-03-{day:02d}.txt",
            T0,
        )
        for day in range(first_day, first_day + n)
    ]
    return stage_digests(parsed)


@pytest.fixture
def staging(tmp_path) -> StagingArea:
    return StagingArea(Storage(str(tmp_path / "warehouse")))


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(pl.all())


def test_a_batch_is_one_pack_and_staged_digests_are_not_written_again(staging):
    first, second = _digests(3), _digests(2, first_day=4)
    assert staging.write(first) == [d.digest_id for d in first]
    assert staging.write([*first[:1], *second]) == [d.digest_id for d in second]
    assert staging.write(second) == []
    assert len(staging._packs()) == 2
    assert staging.digest_ids() == sorted(d.digest_id for d in first + second)
    everything = first + second
    for name in StagingArea.FILES:
        expected = pl.concat([getattr(d, name) for d in everything])
        assert expected.height > 0
        assert _sorted(staging.read(name)).equals(_sorted(expected))


def test_a_pack_without_its_marker_is_not_staged(staging):
    [pack_digest] = _digests(1)
    staging.write([pack_digest])
    [pack] = staging._packs()
    staging.storage.delete(f"staging/{pack}/{StagingArea.MARKER}.parquet")  # cut short
    assert staging.digest_ids() == []
    assert staging.read("entries").height == 0
    assert staging.write([pack_digest]) == [pack_digest.digest_id]  # staged again


def test_a_digest_two_runs_staged_is_read_once(staging, monkeypatch):
    digests = _digests(3)
    staging.write(digests[:2])
    # A second run listed the staging area before the first wrote, then staged 2 and 3.
    monkeypatch.setattr(staging, "digest_ids", lambda: [])
    staging.write(digests[1:])
    monkeypatch.undo()
    assert len(staging._packs()) == 2
    assert staging.digest_ids() == sorted(d.digest_id for d in digests)
    for name in StagingArea.FILES:
        expected = pl.concat([getattr(d, name) for d in digests])
        assert _sorted(staging.read(name)).equals(_sorted(expected))


def test_staged_ids_the_caller_read_are_not_read_again_and_a_stale_set_stages_twice(
    staging, monkeypatch
):
    digests = _digests(3)
    staging.write(digests[:2])
    monkeypatch.setattr(staging, "digest_ids", lambda: pytest.fail("the packs listed again"))
    assert staging.write(digests[:2], known={d.digest_id for d in digests[:2]}) == []
    # The ids read before another run staged digest 2: it is staged twice, read once.
    assert staging.write(digests[1:], known={digests[0].digest_id}) == [
        d.digest_id for d in digests[1:]
    ]
    monkeypatch.undo()
    assert len(staging._packs()) == 2
    for name in StagingArea.FILES:
        expected = pl.concat([getattr(d, name) for d in digests])
        assert _sorted(staging.read(name)).equals(_sorted(expected))


def test_small_packs_are_merged_once_there_are_many_and_big_ones_are_left(staging):
    staging.SMALL_PACK, staging.MAX_SMALL_PACKS = 3, 2
    big = _digests(3, first_day=20)
    staging.write(big)
    singles = _digests(3)
    for digest in singles[:2]:
        staging.write([digest])
    assert staging.compact() == 0  # two small packs: not yet
    # A digest staged before packs existed: a folder of its own, a pack of one.
    legacy = singles[2]
    for name in StagingArea.FILES:
        staging.storage.write_parquet(
            getattr(legacy, name), f"staging/digests/{legacy.digest_id}/{name}.parquet"
        )
    before = {name: _sorted(staging.read(name)) for name in StagingArea.FILES}
    assert len(staging._packs()) == 4

    assert staging.compact() == 3  # the three singles, the legacy one among them
    packs = staging._packs()
    assert len(packs) == 2 and all(p.startswith("packs/") for p in packs)
    assert staging.storage.files("staging/digests") == []  # the legacy folder is gone
    for name in StagingArea.FILES:
        assert _sorted(staging.read(name)).equals(before[name])
    assert staging.compact() == 0


def test_a_pack_merged_away_while_reading_is_read_again(staging, monkeypatch):
    staging.write(_digests(2))
    calls = []
    rows = staging._rows

    def vanishing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise FileNotFoundError("merged away by another run")
        return rows(*args, **kwargs)

    monkeypatch.setattr(staging, "_rows", vanishing)
    assert len(staging.digest_ids()) == 2
    assert len(calls) == 2


def test_word_counts_are_kept_in_pieces_and_merged_into_one_past_a_limit(staging):
    from pipelines.core.related import vocabulary_of, word_counts
    from tests.core.test_related import _long, papers

    before = papers()
    vocabulary = vocabulary_of(before).to_frame()
    staging.save_related_state("first", vocabulary, word_counts(before))
    [piece] = staging.count_pieces("first")
    # One paper's text changed: only its counts are written, in a piece of their own...
    after = before.with_columns(
        abstract=pl.when(pl.col("paper_id") == before["paper_id"][0])
        .then(pl.lit("Entirely different words about sparse retrieval."))
        .otherwise("abstract")
    )
    recounted = word_counts(after.head(1))
    staging.save_related_state("second", vocabulary, word_counts(after), (piece,), recounted)
    pieces = staging.count_pieces("second")
    assert len(pieces) == 2 and pieces[0] == piece
    staging.keep_related_state("second")  # as publishing its release does
    assert staging.related_state("first") is None  # the latest state only
    # ...and read back, the later piece wins for that paper.
    _, counts = staging.related_state("second")
    assert _long(counts).equals(_long(word_counts(after)))

    staging.MAX_COUNT_PIECES = 2  # past the limit, every count goes into one piece
    staging.save_related_state("third", vocabulary, word_counts(after), pieces, recounted)
    assert len(staging.count_pieces("third")) == 1
    assert _long(staging.related_state("third")[1]).equals(_long(word_counts(after)))
    staging.keep_related_state("third")
    # The vocabulary, the list of pieces, and a piece: its papers and its words.
    assert len(staging.storage.files("staging/related")) == 4


def test_word_counts_read_for_their_vocabulary_hold_only_the_words_it_weighs(staging):
    from pipelines.core.related import vocabulary_of, word_counts
    from tests.core.test_related import TOPICS_REVISITED, _long, papers

    before = papers(TOPICS_REVISITED)  # 24 papers: words in over half of them not weighed
    vocabulary = vocabulary_of(before)
    staging.save_related_state("first", vocabulary.to_frame(), word_counts(before))
    after = before.with_columns(  # one paper counted again, in a later piece
        abstract=pl.when(pl.col("paper_id") == before["paper_id"][0])
        .then(pl.lit("Entirely different words about sparse retrieval."))
        .otherwise("abstract")
    )
    pieces = (*staging.count_pieces("first"),)
    staging.save_related_state(
        "second", vocabulary.to_frame(), word_counts(after), pieces, word_counts(after.head(1))
    )
    read, weighed = staging.weighed_related_state("second")
    assert read.words.equals(vocabulary.words) and weighed.vocabulary is read
    every = _long(word_counts(after))
    common = vocabulary.common()
    assert common.len() > 0
    assert _long(weighed.counts).equals(every.filter(~pl.col("word").is_in(common.implode())))
    # Every paper is there, with the number of its rows read.
    assert weighed.counts.papers["paper_id"].sort().equals(after["paper_id"].sort())
    assert _long(weighed.read_all()).equals(every)
    assert staging.weighed_related_state("none") is None


def test_word_counts_written_to_a_file_as_counted_are_kept_as_a_piece(staging, monkeypatch):
    from pipelines.core.related import word_counts
    from tests.core.test_related import _long, _spilled_and_held, papers

    spilled, _ = _spilled_and_held(monkeypatch, papers())
    staging.save_related_state("key", spilled.vocabulary.to_frame(), spilled.counts)
    assert len(staging.count_pieces("key")) == 1
    vocabulary, counts = staging.related_state("key")
    assert vocabulary.drop("n_papers", "probe_hash").equals(spilled.vocabulary.words)
    assert _long(counts).equals(_long(word_counts(papers())))


def test_word_counts_kept_as_lists_by_an_earlier_version_are_read(staging):
    import json

    from pipelines.core.related import vocabulary_of, word_counts
    from tests.core.test_related import _long, papers

    counts = word_counts(papers())
    lists = _long(counts).group_by("paper_id").agg(words="word", tf="tf")  # as kept before
    no_words = pl.DataFrame({"paper_id": ["p" * 16], "words": [[]], "tf": [[]]}, lists.schema)
    write = staging.storage.write_parquet
    write(pl.concat([lists, no_words]), staging._related_file("counts/older.parquet"))
    write(vocabulary_of(papers()).to_frame(), staging._related_file("older.vocabulary.parquet"))
    staging.storage.write_bytes(
        staging._related_file("older.pieces.json"), json.dumps(["older.parquet"]).encode()
    )
    _, read = staging.related_state("older")
    assert _long(read).equals(_long(counts))
    assert read.papers.filter(pl.col("paper_id") == "p" * 16)["n"].to_list() == [0]
    _, weighed = staging.weighed_related_state("older")  # 12 papers: every word weighed
    assert _long(weighed.counts).equals(_long(counts))


def test_a_piece_of_word_counts_whose_files_disagree_is_not_used(staging):
    from pipelines.core.related import vocabulary_of, word_counts
    from tests.core.test_related import papers

    staging.save_related_state("key", vocabulary_of(papers()).to_frame(), word_counts(papers()))
    [words_file] = [f for f in staging.storage.files("staging/related/counts") if "words" in f]
    path = staging._related_file(f"counts/{words_file}")
    staging.storage.write_parquet(pl.read_parquet(staging.storage.uri(path)).head(5), path)
    assert staging.related_state("key") is None  # then related papers are computed in full
    assert staging.weighed_related_state("key") is None


SENTENCES = {"paper_id": pl.String, "abstract_hash": pl.UInt64, "sentences": pl.List(pl.UInt64)}


def _sentences(*papers: str) -> pl.DataFrame:
    """SentenceCache rows, one per paper."""
    return pl.DataFrame(
        {
            "paper_id": list(papers),
            "abstract_hash": [ord(p) for p in papers],
            "sentences": [[ord(p) * 7] for p in papers],
        },
        schema=SENTENCES,
    )


def test_sentence_hashes_are_kept_in_pieces_of_what_each_build_added(staging):
    folder = "staging/matching/sentences"

    def written() -> list[str]:  # the papers of every piece, as written
        files = [f"{folder}/{name}" for name in staging.storage.files(folder)]
        return sorted(staging.storage.read_parquet(files)["paper_id"])

    staging.save_sentences(_sentences("a", "b"))  # nothing kept yet: every row
    staging.save_sentences(_sentences("a", "b", "c"), staging.sentences())  # "c" alone
    assert len(staging.storage.files(folder)) == 2 and written() == ["a", "b", "c"]
    # Two runs that added the same rows: each row is read once.
    staging.save_sentences(_sentences("a", "b", "c"), _sentences("a", "b"))
    assert written() == ["a", "b", "c", "c"]
    assert staging.sentences().sort("paper_id").equals(_sentences("a", "b", "c"))
    staging.MAX_SENTENCE_PIECES = 3  # past the limit, all the rows in one piece
    staging.save_sentences(_sentences("a", "b", "c", "d"), staging.sentences())
    assert len(staging.storage.files(folder)) == 1 and written() == ["a", "b", "c", "d"]


def test_sentence_hashes_kept_in_one_file_by_an_earlier_version_are_read_and_merged(staging):
    legacy = "staging/matching/sentences.parquet"
    staging.storage.write_parquet(_sentences("a"), legacy)
    assert staging.sentences().equals(_sentences("a"))
    staging.MAX_SENTENCE_PIECES = 1
    staging.save_sentences(_sentences("a", "b"), staging.sentences())
    assert not staging.storage.exists(legacy)
    assert staging.sentences().sort("paper_id").equals(_sentences("a", "b"))


KEYS = list(entry_keys())  # title_key, abstract_hash, keys_version


def test_entries_are_staged_with_their_matching_keys(staging):
    staging.write(_digests(2))
    entries = staging.read("entries")
    assert entries["keys_version"].to_list() == [ENTRY_KEYS_VERSION] * 2
    assert entries["title_key"].to_list() == ["paperofday1", "paperofday2"]
    assert entries.select(KEYS).equals(entries.select(**entry_keys()))


def test_entries_staged_without_keys_or_under_another_version_have_them_computed(
    staging, monkeypatch
):
    old, other, current = _digests(1), _digests(1, first_day=2), _digests(1, first_day=3)
    # A pack staged before the keys were kept: written without their columns.
    staging._write_pack(
        {n: pl.concat([getattr(d, n) for d in old]) for n in StagingArea.FILES}
        | {"entries": old[0].entries.drop(KEYS)}
    )
    # A pack staged under another version of the keys, when the title key was the title.
    with monkeypatch.context() as patched:
        patched.setattr(identity, "ENTRY_KEYS_VERSION", ENTRY_KEYS_VERSION + 1)
        patched.setattr(identity, "title_key_expr", lambda column: pl.col(column))
        other = _digests(1, first_day=2)
    assert other[0].entries["title_key"].to_list() == ["Paper of day 2"]
    staging.write(other)
    staging.write(current)
    entries = staging.read("entries").sort("digest_date")
    assert len(staging._packs()) == 3
    assert entries["title_key"].to_list() == ["paperofday1", "paperofday2", "paperofday3"]
    assert entries.select(KEYS).equals(entries.select(**entry_keys()))
    # Merged with the small packs, the keys are kept as computed.
    StagingArea.MAX_SMALL_PACKS, max_small = 1, StagingArea.MAX_SMALL_PACKS
    try:
        assert staging.compact() == 3
    finally:
        StagingArea.MAX_SMALL_PACKS = max_small
    [merged] = staging._packs()
    kept = staging.storage.read_parquet([f"staging/{merged}/entries.parquet"]).sort("digest_date")
    assert kept.select(KEYS).equals(entries.select(KEYS))


def test_staged_keys_match_as_keys_computed_at_matching_would(staging):
    again = [  # the same papers in April
        parse_digest(
            digest_text(
                f"Apr {day}", [(f"Paper of day {day}", abstract_for(f"day{day}"))]
            ).encode(),
            f"2025-04-{day:02d}.txt",
            T0,
        )
        for day in (1, 2)
    ]
    entries = pl.concat([d.entries for d in _digests(3) + stage_digests(again)])
    with_keys = assign_paper_ids(entries).drop(KEYS)
    without = assign_paper_ids(entries.drop(KEYS)).drop(KEYS)
    assert with_keys.equals(without)
    assert with_keys["paper_id"].n_unique() == 3


def test_entries_are_read_without_abstracts_and_their_abstracts_loaded_on_demand(staging):
    old, digests = _digests(1), _digests(3, first_day=2)
    # A pack staged before the keys were kept, and a digest staged by two runs.
    staging._write_pack(
        {n: getattr(old[0], n) for n in StagingArea.FILES} | {"entries": old[0].entries.drop(KEYS)}
    )
    staging.write(digests[:2])
    staging._write_pack(
        {n: pl.concat([getattr(d, n) for d in digests[1:]]) for n in StagingArea.FILES}
    )
    whole = _sorted(staging.read("entries"))
    assert whole.height == 4

    entries, load = staging.entries_without_abstracts()
    assert entries.columns == whole.columns
    assert entries["abstract"].null_count() == 4
    unkeyed = pl.col("digest_id") == old[0].digest_id
    assert (
        _sorted(entries.drop("abstract"))
        .filter(~unkeyed)
        .equals(whole.drop("abstract").filter(~unkeyed))
    )
    # The unkeyed entry gets its keys, its abstract loaded to compute them.
    keyed = _sorted(with_entry_keys(entries, load))
    assert keyed.drop("abstract").equals(whole.drop("abstract"))
    assert keyed.filter(unkeyed).equals(whole.filter(unkeyed))
    wanted = whole.filter(pl.col("digest_date").dt.day() >= 3).select("digest_id", "position")
    expected = whole.join(wanted, on=["digest_id", "position"]).select(
        "digest_id", "position", "abstract"
    )
    assert _sorted(load(wanted)).equals(_sorted(expected))
    # Merged by another run since the entries were read: loaded from where they are now.
    StagingArea.MAX_SMALL_PACKS, max_small = 1, StagingArea.MAX_SMALL_PACKS
    try:
        assert staging.compact() == 4
    finally:
        StagingArea.MAX_SMALL_PACKS = max_small
    assert _sorted(load(wanted)).equals(_sorted(expected))
