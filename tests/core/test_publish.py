"""Publishing without a lock: a publisher whose commit loses the race starts over on top
of the winner's release (Delta's conditional commits decide), on real Delta tables."""

import datetime as dt

import polars as pl

from pipelines.core.build import Previous, build_tables
from pipelines.core.parsing import parse_digest
from pipelines.core.publish import (
    _attempt,
    complete_changelog,
    publish_release,
    read_table,
    releases,
)
from pipelines.core.staging import stage_digest
from pipelines.core.warehouse import WarehousePaths
from tests.conftest import abstract_for, digest_text

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def tables_for(*days: int) -> dict[str, pl.DataFrame]:
    staged = [
        stage_digest(
            parse_digest(
                digest_text(f"Mar {day}", [(f"Paper {day}", abstract_for(str(day)))]).encode(),
                f"d{day}.txt",
                T0,
            )
        )
        for day in days
    ]
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
