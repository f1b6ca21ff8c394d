"""Publishing without a lock: a publisher whose commit loses the race starts over on top
of the winner's release (Delta's conditional commits decide), on real Delta tables."""

import datetime as dt
import threading

import duckdb
import polars as pl

from pipelines.core import publish
from pipelines.core.build import Previous, build_from_staging, build_tables
from pipelines.core.diff import diff_papers
from pipelines.core.hashing import keyed_row_hashes
from pipelines.core.parsing import parse_digest
from pipelines.core.publish import (
    _attempt,
    _overwrite,
    changes_of,
    complete_changelog,
    latest_release,
    previous_build,
    publish_release,
    read_release_table,
    read_table,
    releases,
)
from pipelines.core.staging import StagedDigest, stage_digest
from pipelines.core.warehouse import WarehousePaths
from tests.conftest import abstract_for, digest_text

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def staged_day(day: int, entries: list[tuple[str, str]]) -> list[StagedDigest]:
    text = digest_text(f"Mar {day}", entries).encode()
    return [stage_digest(parse_digest(text, f"d{day}.txt", T0))]


def staged_for(*days: int) -> list[StagedDigest]:
    return [s for day in days for s in staged_day(day, [(f"Paper {day}", abstract_for(str(day)))])]


def tables_for(*days: int) -> dict[str, pl.DataFrame]:
    staged = staged_for(*days)
    return build_tables(
        pl.concat([s.digest for s in staged]),
        pl.concat([s.entries for s in staged]),
        pl.concat([s.quarantine for s in staged]),
        Previous.nothing(),
    )


def test_a_publisher_that_loses_the_commit_race_starts_over_on_the_winners_release(tmp_path):
    paths = WarehousePaths(tmp_path / "warehouse")
    assert publish_release(paths, tables_for(1))["release"] == 1
    attempts = []

    def rebuild_if_stale(built):
        # Runs after this publisher took its snapshot of `releases`: another run
        # publishing now is exactly the race a lock would otherwise prevent.
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            assert publish_release(paths, tables_for(1, 2))["release"] == 2
            return built  # stale, as a run that did not notice would be
        return tables_for(1, 2, 3)  # the retry sees everything staged meanwhile

    row = publish_release(paths, tables_for(1, 3), rebuild_if_stale=rebuild_if_stale)
    assert attempts == [1, 2]  # the first commit failed; the second went on top
    assert row["release"] == 3 and row["papers_rows"] == 3
    published = releases(paths)
    assert published["release"].to_list() == [1, 2, 3]
    assert published["papers_rows"].to_list() == [1, 2, 3]
    # the loser wrote no changelog rows for the number it lost
    changes = read_table(paths, "paper_changes").sort("release", "title")
    assert changes.select("release", "change", "title").rows() == [
        (1, "added", "Paper 1"),
        (2, "added", "Paper 2"),
        (3, "added", "Paper 3"),
    ]


def test_nothing_changed_publishes_nothing_and_writes_no_changelog(tmp_path):
    paths = WarehousePaths(tmp_path / "warehouse")
    publish_release(paths, tables_for(1, 2))
    assert publish_release(paths, tables_for(1, 2)) is None
    assert releases(paths)["release"].to_list() == [1]
    assert read_table(paths, "paper_changes")["release"].to_list() == [1, 1]


def test_releases_committed_without_their_changelog_get_it_from_the_next_run(tmp_path):
    paths = WarehousePaths(tmp_path / "warehouse")
    # Two commits whose runs died before writing their changelogs (as after a SIGKILL).
    row, _ = _attempt(paths, tables_for(1), None, None, False)
    assert row["release"] == 1
    row, _ = _attempt(paths, tables_for(1, 2), paths.delta("releases"), None, False)
    assert row["release"] == 2
    assert not paths.is_table("paper_changes")
    complete_changelog(paths)
    complete_changelog(paths)  # twice: the same rows, once
    changes = read_table(paths, "paper_changes").sort("release")
    assert changes.select("release", "change", "title").rows() == [
        (1, "added", "Paper 1"),
        (2, "added", "Paper 2"),
    ]


def test_a_release_takes_the_papers_diff_its_build_kept_against_the_same_release(
    tmp_path, monkeypatch
):
    paths = WarehousePaths(tmp_path / "warehouse")
    paths.staging.write(staged_for(1, 2))
    publish_release(paths, build_from_staging(paths.staging, previous_build(paths)))
    first_papers = read_table(paths, "papers")
    paths.staging.write(staged_for(3))
    tables = build_from_staging(paths.staging, previous_build(paths))

    def not_read_again(*args):
        raise AssertionError("the build already diffed the papers against release 1")

    with monkeypatch.context() as patched:
        patched.setattr(publish, "readable_papers", not_read_again)
        row = publish_release(paths, tables)
    assert row["release"] == 2 and row["papers_added"] == 1
    assert changes_of(paths, 2).equals(diff_papers(first_papers, tables["papers"]))

    # A kept diff against another release is not taken: the release diffs for itself.
    paths.staging.write(staged_for(4))
    tables = build_from_staging(paths.staging, previous_build(paths))
    papers_hash = publish.table_hash(tables["papers"], publish.TABLE_KEYS["papers"])
    [kept] = paths.staging.storage.files("staging/changes")
    assert kept == f"2-{papers_hash}.parquet"
    paths.staging.storage.delete(f"staging/changes/{kept}")
    paths.staging.save_paper_changes(1, papers_hash, changes_of(paths, 2))
    row = publish_release(paths, tables)
    assert row["release"] == 3
    assert changes_of(paths, 3)["title"].to_list() == ["Paper 4"]
    # Published, release 3 leaves no kept diff against an earlier release.
    assert paths.staging.storage.files("staging/changes") == []


def test_papers_are_rewritten_from_the_earliest_first_seen_a_release_changes(tmp_path):
    paths = WarehousePaths(tmp_path / "warehouse")

    def publish(staged: list[StagedDigest]) -> tuple[dict, str | None]:
        paths.staging.write(staged)
        tables = build_from_staging(paths.staging, previous_build(paths))
        row = publish_release(paths, tables)
        published = read_release_table(paths, row, "papers")
        assert published.sort("paper_id").equals(tables["papers"].sort("paper_id"))
        [commit] = paths.delta("papers").history(1)
        return row, commit["operationParameters"].get("predicate")

    def files(row: dict) -> set[str]:
        return set(paths.delta("papers", row["papers_version"]).file_uris())

    first, _ = publish(staged_for(1, 2, 3))
    # A new day's papers: only papers first seen from that day on are written.
    second, predicate = publish(staged_for(4))
    assert predicate is not None and "first_seen >=" in predicate
    assert files(first) < files(second)  # release 1's file is kept as it was
    # A run that wrote the table and died before its release row: the next release does
    # not build on that version, it writes the whole table.
    _overwrite(paths, "papers", tables_for(9)["papers"])
    _, predicate = publish(staged_for(5))
    assert predicate is None
    # An older day replaced by a later file: rewritten from that day on, Paper 2 gone.
    revised = digest_text("Mar 2", [("Paper 2 revised", abstract_for("2 revised"))])
    row, predicate = publish([stage_digest(parse_digest(revised.encode(), "d2b.txt", T0 + HOUR))])
    assert predicate is not None
    titles = set(read_release_table(paths, row, "papers")["title"])
    assert titles == {"Paper 1", "Paper 2 revised", "Paper 3", "Paper 4", "Paper 5"}


def test_a_whole_papers_table_keeps_its_latest_days_in_files_of_their_own(tmp_path):
    paths = WarehousePaths(tmp_path / "warehouse")

    def staged(label: str, title: str) -> StagedDigest:
        text = digest_text(label, [(title, abstract_for(title))])
        return stage_digest(parse_digest(text.encode(), f"{title}.txt", T0))

    def files_by_title(row: dict) -> dict[str, set[str]]:
        table = paths.delta("papers", row["papers_version"])
        return {file: set(pl.read_parquet(file)["title"]) for file in paths.data_files(table)}

    paths.staging.write([staged("Jan 5", "Old paper"), staged("Mar 1", "Recent paper")])
    tables = build_from_staging(paths.staging, previous_build(paths))
    first = publish_release(paths, tables)
    # Two commits, of which the release records the second: the older papers, then the
    # papers of the latest days appended in a file of their own.
    assert first["papers_version"] == paths.delta("papers").version() == 1
    assert sorted(map(sorted, files_by_title(first).values())) == [["Old paper"], ["Recent paper"]]
    published = read_release_table(paths, first, "papers")
    assert published.sort("paper_id").equals(tables["papers"].sort("paper_id"))
    # The next day is written from its own cut, which falls among the recent files only.
    paths.staging.write([staged("Mar 2", "Next paper")])
    second = publish_release(paths, build_from_staging(paths.staging, previous_build(paths)))
    before, after = files_by_title(first), files_by_title(second)
    old_file = next(f for f, titles in before.items() if titles == {"Old paper"})
    assert old_file in after and after[old_file] == {"Old paper"}
    titles = set(read_release_table(paths, second, "papers")["title"])
    assert titles == {"Old paper", "Recent paper", "Next paper"}


def test_many_papers_are_written_once_the_other_tables_are(tmp_path, monkeypatch):
    events: list[str] = []
    real_overwrite, real_write_papers = publish._overwrite, publish._write_papers

    def overwrite(paths, name, frame, **options):
        events.append(f"start {name}")
        try:
            return real_overwrite(paths, name, frame, **options)
        finally:
            events.append(f"end {name}")

    def write_papers(*args):
        events.append("start papers")
        try:
            return real_write_papers(*args)
        finally:
            events.append("end papers")

    monkeypatch.setattr(publish, "_overwrite", overwrite)
    monkeypatch.setattr(publish, "_write_papers", write_papers)
    others = {"digests", "appearances", "quarantine", "related_papers"}
    # Three papers are more than two: written after the others.
    monkeypatch.setattr(publish, "PAPERS_WRITTEN_ALONGSIDE_MAX", 2)
    assert publish_release(WarehousePaths(tmp_path / "many"), tables_for(1, 2, 3)) is not None
    papers_start = events.index("start papers")
    assert {e.split()[1] for e in events[:papers_start] if e.startswith("end")} == others
    assert all(e.endswith(" papers") for e in events[papers_start:])
    # Up to that many, side by side with them: on one thread each, all started at once.
    events.clear()
    monkeypatch.setattr(publish, "PAPERS_WRITTEN_ALONGSIDE_MAX", 3)
    started = threading.Barrier(len(others) + 1, timeout=30)

    def write_papers_meeting_the_others(*args):
        started.wait()  # broken, and raising, unless every table's write started meanwhile
        return write_papers(*args)

    def overwrite_meeting_the_papers(paths, name, frame, **options):
        if name != "papers":  # the papers' own writes go through here too
            started.wait()
        return overwrite(paths, name, frame, **options)

    monkeypatch.setattr(publish, "_overwrite", overwrite_meeting_the_papers)
    monkeypatch.setattr(publish, "_write_papers", write_papers_meeting_the_others)
    assert publish_release(WarehousePaths(tmp_path / "few"), tables_for(1, 2, 3)) is not None
    assert {e.split()[1] for e in events if e.startswith("end")} == {*others, "papers"}


def test_a_whole_papers_table_is_written_in_first_seen_order_a_piece_at_a_time(
    tmp_path, monkeypatch
):
    paths = WarehousePaths(tmp_path / "warehouse")
    monkeypatch.setattr(publish, "_PAPERS_PER_COMMIT", 2)
    monkeypatch.setattr(publish, "_RECENT_DAYS", 2)  # Mar 7-9 are the latest days
    tables = tables_for(9, 3, 7, 1, 5, 2, 8)
    assert not tables["papers"]["first_seen"].is_sorted()  # held in paper_id order
    row = publish_release(paths, tables)
    # The four older papers in two pieces, then the three recent ones: three commits.
    assert row["papers_version"] == paths.delta("papers").version() == 2
    table = paths.delta("papers", row["papers_version"])
    files = sorted(
        (pl.read_parquet(file) for file in paths.data_files(table)),
        key=lambda frame: frame["first_seen"].min(),
    )
    assert [frame["first_seen"].dt.day().to_list() for frame in files] == [
        [1, 2],
        [3, 5],
        [7, 8, 9],
    ]
    published = read_release_table(paths, row, "papers")
    assert published.sort("paper_id").equals(tables["papers"])


def _race_to_create(paths: WarehousePaths) -> tuple[dict[str, int], list[str]]:
    """Two runs overwrite (create) the digests table at once: the versions they wrote,
    and the runs whose commit failed."""
    import threading

    from deltalake.exceptions import CommitFailedError

    both_ready = threading.Barrier(2)
    versions, failed = {}, []

    def write(run: str) -> None:
        frame = pl.DataFrame({"digest_id": [f"d{n}" for n in range(10)], "run": run})
        both_ready.wait()
        try:
            versions[run] = _overwrite(paths, "digests", frame)
        except CommitFailedError:
            failed.append(run)

    runs = [threading.Thread(target=write, args=(run,)) for run in "ab"]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    return versions, failed


def test_two_runs_creating_a_table_at_once_never_publish_both_runs_rows(tmp_path):
    """A retried overwrite that lost the race to create a table was committed on top of
    the winner's, keeping both runs' rows (19 rounds of 20 here); each run's write must
    instead fail (publishing then starts over) or hold its own rows only."""
    for attempt in range(10):
        paths = WarehousePaths(tmp_path / f"warehouse-{attempt}")
        versions, failed = _race_to_create(paths)
        assert len(versions) + len(failed) == 2 and versions
        for run, version in versions.items():
            written = read_table(paths, "digests", version)
            assert written["run"].to_list() == [run] * 10, attempt


def test_a_write_returns_the_version_it_made_when_another_run_commits_right_after(
    tmp_path, monkeypatch
):
    paths = WarehousePaths(tmp_path / "warehouse")
    ours = pl.DataFrame({"digest_id": ["d1"], "run": ["ours"]})
    assert _overwrite(paths, "digests", ours) == 0
    real_write = pl.DataFrame.write_delta

    def then_another_run(frame, target, **kwargs):
        real_write(frame, target, **kwargs)
        real_write(ours.with_columns(run=pl.lit("theirs")), paths.table("digests"), mode="append")

    monkeypatch.setattr(pl.DataFrame, "write_delta", then_another_run)
    assert _overwrite(paths, "digests", ours) == 1
    assert read_table(paths, "digests", 1)["run"].to_list() == ["ours"]
    assert sorted(read_table(paths, "digests")["run"]) == ["ours", "theirs"]  # version 2


def test_a_previous_build_reads_what_matching_does_not_need_while_it_matches(tmp_path):
    paths = WarehousePaths(tmp_path / "warehouse")
    paths.staging.write(staged_for(1, 2, 3))
    first = publish_release(paths, build_from_staging(paths.staging, previous_build(paths)))
    previous = previous_build(paths)
    assert previous.papers is None and previous.still_reading is not None
    settled = previous.settled()
    assert settled.still_reading is None and settled.settled() is settled
    # The papers by reference: every row but for its abstracts, and the release's files.
    published = read_release_table(paths, first, "papers")
    by_reference = settled.published_papers
    assert settled.papers is None and by_reference is not None
    assert by_reference.light.equals(published.drop("abstract", "abstract_raw"))
    assert by_reference.scan.collect().equals(published)
    assert by_reference.rows_of(published["paper_id"].tail(1)).equals(published.tail(1))
    # The row hashes kept with the release hash its papers as table_hash does.
    hashes = by_reference.row_hashes.sort("paper_id")
    assert hashes.equals(keyed_row_hashes(published, ["paper_id"]).sort("paper_id"))
    assert settled.related.equals(read_release_table(paths, first, "related_papers"))


def test_many_published_papers_are_read_once_matching_is_done(tmp_path, monkeypatch):
    paths = WarehousePaths(tmp_path / "warehouse")
    paths.staging.write(staged_for(1, 2, 3))
    first = publish_release(paths, build_from_staging(paths.staging, previous_build(paths)))
    reads = []
    read_papers = publish._papers_by_reference

    def recorded(*args):
        reads.append(args)
        return read_papers(*args)

    monkeypatch.setattr(publish, "_papers_by_reference", recorded)
    monkeypatch.setattr(publish, "PAPERS_READ_ALONGSIDE_MAX", 2)  # fewer than the 3 published
    previous = previous_build(paths)
    assert reads == []  # not while matching runs
    papers = previous.settled().published_papers.scan.collect()
    assert len(reads) == 1
    assert papers.equals(read_release_table(paths, first, "papers"))


def test_unreadable_published_papers_are_made_again_with_their_ids(tmp_path, monkeypatch):
    paths = WarehousePaths(tmp_path / "warehouse")
    paths.staging.write(staged_for(1, 2))
    first = publish_release(paths, build_from_staging(paths.staging, previous_build(paths)))
    paths.staging.write(staged_for(3))

    def unreadable(*args):
        raise OSError("a data file of papers is missing")

    monkeypatch.setattr(publish, "_papers_by_reference", unreadable)
    tables = build_from_staging(paths.staging, previous_build(paths))
    before = read_release_table(paths, first, "papers").select("paper_id", "title")
    made = tables["papers"].select("paper_id", "title")
    assert made.join(before, on=["paper_id", "title"], how="semi").height == before.height == 2
    assert sorted(made["title"]) == ["Paper 1", "Paper 2", "Paper 3"]


def test_tables_checkpoint_often_keep_their_logs_and_releases_stay_few_files(tmp_path, monkeypatch):
    monkeypatch.setattr(publish, "MAX_RELEASE_FILES", 3)
    paths = WarehousePaths(tmp_path / "warehouse")
    for day in range(1, 13):
        publish_release(paths, tables_for(*range(1, day + 1)))
    for name in ("digests", "papers", "related_papers", "paper_changes", "releases"):
        table = paths.delta(name)
        assert table.metadata().configuration == publish.TABLE_PROPERTIES, name
    log = {p.name for p in (tmp_path / "warehouse/tables/releases/_delta_log").iterdir()}
    assert "_last_checkpoint" in log and "00000000000000000000.json" in log
    # A small file per release, merged past MAX_RELEASE_FILES; every row still there.
    assert len(paths.delta("releases").file_uris()) <= 3
    assert releases(paths)["release"].to_list() == list(range(1, 13))
    con = duckdb.connect(str(paths.catalog), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM releases").fetchone() == (12,)
    finally:
        con.close()


def test_tables_made_before_their_properties_get_them_at_the_next_release(tmp_path, monkeypatch):
    paths = WarehousePaths(tmp_path / "warehouse")
    with monkeypatch.context() as before:
        before.setattr(publish, "TABLE_PROPERTIES", {})
        first = publish_release(paths, tables_for(1, 2))
    assert paths.delta("papers").metadata().configuration == {}
    second = publish_release(paths, tables_for(1, 2, 3))
    assert second["release"] == first["release"] + 1
    for name in ("digests", "papers", "quarantine", "paper_changes", "releases"):
        assert paths.delta(name).metadata().configuration == publish.TABLE_PROPERTIES, name
    papers = read_release_table(paths, second, "papers")
    assert sorted(papers["title"]) == ["Paper 1", "Paper 2", "Paper 3"]


def published_and_another_day(tmp_path) -> WarehousePaths:
    """Four days published; a fifth staged, with a new paper and paper 2 revised."""
    paths = WarehousePaths(tmp_path / "warehouse")
    paths.staging.write(staged_for(1, 2, 3, 4))
    publish_release(paths, build_from_staging(paths.staging, previous_build(paths)))
    revised = abstract_for("2", 4)  # a sentence more: the same paper, revised
    paths.staging.write(staged_day(5, [("Paper 5", abstract_for("5")), ("Paper 2", revised)]))
    return paths


def test_an_add_reads_whole_only_the_published_papers_it_does_not_keep(tmp_path, monkeypatch):
    from pipelines.core.build import PublishedPapers
    from pipelines.core.hashing import table_hash

    paths = published_and_another_day(tmp_path)
    published = read_release_table(paths, latest_release(paths), "papers")
    read_whole = []
    rows_of = PublishedPapers.rows_of

    def recorded(self, ids):
        read_whole.append(sorted(ids))
        return rows_of(self, ids)

    monkeypatch.setattr(PublishedPapers, "rows_of", recorded)
    tables = build_from_staging(paths.staging, previous_build(paths), papers_by_reference=True)
    # Only paper 2, revised, was read whole; the others are read from their files when
    # the papers are (they were not, to hash them: their row hashes were kept).
    paper_2 = published.filter(pl.col("title") == "Paper 2")["paper_id"].to_list()
    assert read_whole == [paper_2]
    papers = tables["papers"]
    assert isinstance(papers, pl.LazyFrame)
    whole = papers.collect().sort("paper_id")
    assert whole.height == 5 and whole.select(pl.col("paper_id").is_unique().all()).item()
    # The same papers as when read whole, and as a build from nothing makes them.
    in_one_frame = build_from_staging(paths.staging, previous_build(paths))["papers"]
    assert whole.equals(in_one_frame.sort("paper_id"))
    staged = paths.staging
    afresh = build_tables(
        staged.read("digest"), staged.read("entries"), staged.read("quarantine"), Previous.nothing()
    )["papers"]
    assert whole.equals(afresh.sort("paper_id"))
    # Its hash, from the kept row hashes and the rows made, is that of its rows.
    assert table_hash(papers, ["paper_id"]) == table_hash(whole.clone(), ["paper_id"])
    # Published: the table holds those rows, and the release their hash and count.
    row = publish_release(paths, tables)
    assert row["release"] == 2 and row["papers_rows"] == 5
    assert (row["papers_added"], row["papers_updated"]) == (1, 1)
    after = read_release_table(paths, row, "papers")
    assert after.sort("paper_id").equals(whole)
    assert row["papers_hash"] == table_hash(after, ["paper_id"])


def test_an_add_whose_kept_row_hashes_are_gone_hashes_the_kept_rows_read(tmp_path):
    from pipelines.core.hashing import table_hash

    paths = published_and_another_day(tmp_path)
    for name in paths.storage.files("staging/papers"):
        paths.storage.delete(f"staging/papers/{name}")
    tables = build_from_staging(paths.staging, previous_build(paths), papers_by_reference=True)
    assert table_hash(tables["papers"], ["paper_id"]) == table_hash(
        tables["papers"].collect(), ["paper_id"]
    )
    # Kept again for the next build, then only the published papers' once published.
    row = publish_release(paths, tables)
    assert paths.staging.paper_row_hashes(row["papers_hash"]).height == 5
    assert len(paths.storage.files("staging/papers")) == 1


def test_a_previous_build_read_ahead_is_taken_while_its_release_is_the_latest(tmp_path):
    paths = WarehousePaths(tmp_path / "warehouse")
    paths.staging.write(staged_for(1, 2))
    first = publish_release(paths, build_from_staging(paths.staging, previous_build(paths)))
    publish.read_ahead(paths, first)
    ahead = publish._READ_AHEAD[paths.root][1].result()
    assert previous_build(paths) is ahead and ahead.release == 1
    assert paths.root not in publish._READ_AHEAD  # taken once
    # Read ahead for a release no longer the latest: read again for the latest.
    publish.read_ahead(paths, first)
    paths.staging.write(staged_for(3))
    second = publish_release(paths, build_from_staging(paths.staging, previous_build(paths)))
    assert second["release"] == 2
    publish.read_ahead(paths, first)
    stale = publish._READ_AHEAD[paths.root][1].result()
    previous = previous_build(paths)
    assert previous is not stale and previous.release == 2
