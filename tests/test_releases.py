"""Releases people can trust: changelogs, time travel, crashes, concurrency, reproducibility."""

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines.core.card import card_for
from pipelines.core.publish import get_release, read_release_table, read_table, releases
from pipelines.core.warehouse import WarehousePaths
from pipelines.defs.inprocess import ingest
from schemas.tables import PUBLISHED_TABLES, TABLE_KEYS
from tests.conftest import (
    abstract_for,
    concurrent_ingests,
    set_mtime,
    two_overlapping_landings,
    write_digest,
)

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
BIN = Path(sys.executable).parent


def stock_duckdb(catalog: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(catalog), read_only=True)
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    return con


def test_three_releases_changelogs_and_time_travel(landing, warehouse):
    write_digest(
        landing,
        "d1.txt",
        "Mar 1",
        [("Alpha", abstract_for("alpha")), ("Beta", abstract_for("beta"))],
        T0,
    )
    ingest(landing, warehouse)
    write_digest(
        landing,
        "d2.txt",
        "Mar 2",
        [("Beta", abstract_for("beta")), ("Gamma", abstract_for("gamma"))],
        T0,
    )
    ingest(landing, warehouse)
    # a later file for Mar 1 supersedes d1: Alpha disappears
    write_digest(
        landing,
        "d1-fixed.txt",
        "Mar 1",
        [("Delta", abstract_for("delta"))],
        T0 + dt.timedelta(hours=1),
    )
    ingest(landing, warehouse)
    paths = WarehousePaths(warehouse)

    con = stock_duckdb(paths.catalog)
    changelog = con.execute(
        "SELECT release, change, title, coalesce(changed_columns, '') FROM paper_changes "
        "ORDER BY release, change, title"
    ).fetchall()
    assert changelog == [
        (1, "added", "Alpha", ""),
        (1, "added", "Beta", ""),
        (2, "added", "Gamma", ""),
        (2, "updated", "Beta", "last_seen, n_appearances"),
        (3, "added", "Delta", ""),
        (3, "removed", "Alpha", ""),
        (3, "updated", "Beta", "first_seen, n_appearances"),
    ]
    assert con.execute(
        "SELECT papers_added, papers_updated, papers_removed FROM releases ORDER BY release"
    ).fetchall() == [(2, 0, 0), (1, 1, 0), (1, 1, 1)]

    titles_of = {1: ["Alpha", "Beta"], 2: ["Alpha", "Beta", "Gamma"], 3: ["Beta", "Delta", "Gamma"]}
    for number, titles in titles_of.items():
        con.execute(f"USE r{number}")
        # Every table of every release, as that release published it (the catalog reads
        # each table's log forward through the releases' versions).
        for name in PUBLISHED_TABLES:
            in_catalog = (
                con.sql(f'SELECT * FROM "{name}"')  # noqa: S608
                .pl()
                .with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))  # not Etc/UTC
            )
            exact = read_release_table(paths, get_release(paths, number), name)
            key = TABLE_KEYS[name]
            assert_frame_equal(in_catalog.sort(key), exact.sort(key))
        assert sorted(con.sql("SELECT title FROM papers").pl()["title"]) == titles
        assert con.execute("SELECT max(release) FROM releases").fetchone()[0] == number
        assert con.execute("SELECT max(release) FROM paper_changes").fetchone()[0] == number
    con.close()

    card = card_for(paths, 3)
    assert "# Daily Papers dataset, release 3" in card
    assert "1 papers added, 1 updated, 1 removed" in card
    assert "| digests | 3 |" in card and "USE r3;" in card
    assert "d1-fixed.txt" in card and "superseded" in card
    assert "Folded title used for matching" in card  # column descriptions from the schemas


def test_sql_release_option_reads_the_release_schema(landing, warehouse):
    from typer.testing import CliRunner

    from pipelines.cli import app

    for day in (1, 2):
        write_digest(
            landing, f"d{day}.txt", f"Mar {day}", [(f"P{day}", abstract_for(f"{day}"))], T0
        )
        ingest(landing, warehouse)
    out = CliRunner().invoke(
        app,
        [
            "sql",
            "SELECT count(*) AS n FROM papers",
            "--release",
            "1",
            "--warehouse",
            str(warehouse),
            "-f",
            "csv",
        ],
    )
    assert out.exit_code == 0 and out.stdout.split() == ["n", "1"]


FAULT_POINTS = [
    "before_tables",
    "table_written:appearances",
    "table_written:papers",
    "before_release_row",
    "release_row_written",
    "catalog_written",
]


@pytest.mark.slow
def test_a_publish_killed_at_any_point_keeps_the_previous_release(landing, warehouse):
    write_digest(landing, "d1.txt", "Mar 1", [("Alpha", abstract_for("alpha"))], T0)
    ingest(landing, warehouse)
    paths = WarehousePaths(warehouse)
    env = {**os.environ, "PAPERS_LANDING_DIR": str(landing), "PAPERS_WAREHOUSE_DIR": str(warehouse)}
    for step, point in enumerate(FAULT_POINTS, start=2):
        write_digest(
            landing,
            f"d{step}.txt",
            f"Mar {step}",
            [(f"Paper {step}", abstract_for(f"topic {step}"))],
            T0,
        )
        killed = subprocess.run(
            [str(BIN / "papers"), "ingest"],
            env={**env, "PAPERS_FAULT_AT": point},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert killed.returncode == -9, (point, killed.stderr[-2000:])
        # the catalog opens and shows the previous release, whole
        con = stock_duckdb(paths.catalog)
        shown = con.execute("SELECT release FROM catalog_info").fetchone()[0]
        n_papers = con.execute("SELECT count(*) FROM papers").fetchone()[0]
        n_digests = con.execute("SELECT count(*) FROM digests").fetchone()[0]
        con.close()
        assert shown == step - 1, point
        assert (n_papers, n_digests) == (step - 1, step - 1), point
        # the next run completes the work
        done = subprocess.run(
            [str(BIN / "papers"), "ingest"], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, (point, done.stderr[-2000:])
        con = stock_duckdb(paths.catalog)
        assert con.execute(
            "SELECT release, (SELECT count(*) FROM papers) FROM catalog_info"
        ).fetchone() == (step, step), point
        con.close()
    numbers = releases(paths)["release"].to_list()
    assert numbers == list(range(1, len(FAULT_POINTS) + 2))  # no gap, no duplicate
    # each release's changelog written once, the killed ones' by the next run
    changes = read_table(paths, "paper_changes")
    assert changes.group_by("release").len().sort("release")["len"].to_list() == [1] * len(numbers)


@pytest.mark.slow
def test_two_concurrent_ingests_give_consistent_releases(tmp_path):
    warehouse = tmp_path / "warehouse"
    landings = two_overlapping_landings(tmp_path)
    concurrent_ingests(landings, {**os.environ, "PAPERS_WAREHOUSE_DIR": str(warehouse)})
    paths = WarehousePaths(warehouse)
    published = releases(paths)
    assert published["release"].to_list() == list(range(1, published.height + 1))
    latest = published.row(-1, named=True)
    papers = read_release_table(paths, latest, "papers")
    # every paper of both folders, once; the shared one counted on all ten dates
    assert papers.height == 11 and papers["paper_id"].n_unique() == 11
    shared = papers.filter(pl.col("title") == "Shared Paper").row(0, named=True)
    assert shared["n_appearances"] == 10
    assert read_release_table(paths, latest, "digests").height == 10
    con = stock_duckdb(paths.catalog)
    assert con.execute("SELECT count(*) FROM appearances").fetchone()[0] == 20
    con.close()


def test_same_files_in_any_landing_order_give_the_same_content_hash(seeds_dir, tmp_path):
    from tests.conftest import SEEDS_MTIME

    seeds = sorted(seeds_dir.glob("*.txt"))
    hashes = []
    for name, order, steps in (("forward", seeds, [5]), ("reverse", seeds[::-1], [2, 3])):
        landing, warehouse = tmp_path / name / "landing", tmp_path / name / "warehouse"
        landing.mkdir(parents=True)
        landed = 0
        for step in steps:  # land in batches, ingesting after each
            for seed in order[landed : landed + step]:
                set_mtime(Path(shutil.copy(seed, landing)), SEEDS_MTIME)
            landed += step
            ingest(landing, warehouse)
        hashes.append(releases(WarehousePaths(warehouse))["content_hash"][-1])
    assert hashes[0] == hashes[1]


def test_a_new_digest_updates_related_papers_with_the_vocabulary_of_the_last_release(
    landing, warehouse, monkeypatch
):
    from pipelines.core.related import Vocabulary, related_papers, vocabulary_of, word_counts
    from pipelines.core.staging import StagingArea
    from pipelines.core.synthetic import generate_digests
    from tests.core.test_related import _long

    *history, (last_name, last_text) = generate_digests(16, seed=3)
    for name, text in history:
        (landing / name).write_text(text, encoding="utf-8")
    ingest(landing, warehouse)
    paths = WarehousePaths(str(warehouse))
    [first_pieces] = [
        paths.staging.count_pieces(r["related_papers_hash"])
        for r in releases(paths).rows(named=True)
    ]
    (landing / last_name).write_text(last_text, encoding="utf-8")
    every_count_read = []
    read_every_count = StagingArea.related_state
    monkeypatch.setattr(
        StagingArea,
        "related_state",
        lambda *args, **kwargs: every_count_read.append(1) or read_every_count(*args, **kwargs),
    )
    ingest(landing, warehouse)
    monkeypatch.undo()
    assert every_count_read == []  # only the counts of the words weighed were read

    first, second = releases(paths).rows(named=True)
    # The word counts of release 1's papers were kept as they were, not written again:
    # release 2 added a piece with the counts of its new papers.
    pieces = paths.staging.count_pieces(second["related_papers_hash"])
    assert len(first_pieces) == 1 and pieces[0] == first_pieces[0] and len(pieces) == 2
    counts_folder = warehouse / "staging" / "related" / "counts"
    first_counts = pl.read_parquet(counts_folder / f"{pieces[0]}.papers.parquet")
    assert first_counts.height == first["papers_rows"]
    assert first["papers_rows"] < second["papers_rows"] <= 1.1 * first["papers_rows"]
    assert paths.staging.related_state(first["related_papers_hash"]) is None  # latest only
    vocabulary, counts = paths.staging.related_state(second["related_papers_hash"])
    vocabulary = Vocabulary.from_frame(vocabulary)
    # Within a tenth more papers, release 2 reused the word weights of release 1...
    first_papers = read_release_table(paths, first, "papers")
    assert vocabulary.n_papers == first["papers_rows"]
    assert vocabulary.words.equals(vocabulary_of(first_papers).words)
    # (Words in too many papers are not weighed: release 2 read only the others' counts.)
    assert vocabulary.common().len() > 0
    # ...its related papers are exactly those a full computation with them gives...
    papers = read_release_table(paths, second, "papers")
    published = read_release_table(paths, second, "related_papers")
    assert published.equals(related_papers(papers, vocabulary=vocabulary))
    assert published.height == 10 * second["papers_rows"]
    # ...and the word counts kept for the next build are those of its papers.
    assert _long(counts).equals(_long(word_counts(papers)))


def _rehash_vocabulary(related: Path) -> None:
    """Make the kept vocabulary look like one whose words another Polars hashed."""
    [kept] = related.glob("*.vocabulary.parquet")
    pl.read_parquet(kept).with_columns(pl.col("probe_hash") + 1).write_parquet(kept)


@pytest.mark.parametrize(
    "lose", [shutil.rmtree, _rehash_vocabulary], ids=["deleted", "hashed_otherwise"]
)
def test_a_lost_related_papers_state_costs_a_full_computation_not_a_wrong_table(
    landing, warehouse, lose
):
    from pipelines.core.related import Vocabulary, related_papers
    from pipelines.core.synthetic import generate_digests

    *history, (last_name, last_text) = generate_digests(16, seed=4)
    for name, text in history:
        (landing / name).write_text(text, encoding="utf-8")
    ingest(landing, warehouse)
    lose(warehouse / "staging" / "related")
    (landing / last_name).write_text(last_text, encoding="utf-8")
    ingest(landing, warehouse)

    paths = WarehousePaths(str(warehouse))
    latest = releases(paths).row(-1, named=True)
    vocabulary, _ = paths.staging.related_state(latest["related_papers_hash"])
    assert Vocabulary.from_frame(vocabulary).n_papers == latest["papers_rows"]  # counted afresh
    papers = read_release_table(paths, latest, "papers")
    assert read_release_table(paths, latest, "related_papers").equals(related_papers(papers))


def test_keeping_the_related_state_leaves_another_runs_unfinished_write_alone(warehouse):
    from pipelines.core.related import Vocabulary, vocabulary_of, word_counts
    from tests.core.test_related import papers

    staging = WarehousePaths(str(warehouse)).staging
    frames = (vocabulary_of(papers()).to_frame(), word_counts(papers()))
    staging.save_related_state("older", *frames)
    half_written = warehouse / "staging" / "related" / ".tmp-another-run"
    half_written.write_bytes(b"half")  # another run's state, not yet renamed into place
    staging.save_related_state("newer", *frames)
    # A build saving its state deletes no other: that one may be a concurrent build's,
    # about to publish. Once "newer" is published, the others go.
    assert staging.related_state("older") is not None
    staging.keep_related_state("newer")
    assert half_written.exists()
    assert staging.related_state("older") is None  # finished older states are pruned
    vocabulary, _ = staging.related_state("newer")
    assert Vocabulary.from_frame(vocabulary).n_papers == papers().height
