"""The five real seed digests through the real Dagster graph, queried from the catalog."""

from pathlib import Path

import duckdb
import pytest

from pipelines.defs.inprocess import ingest


@pytest.fixture
def catalog(seeded_landing, warehouse, tmp_path, monkeypatch):
    outcome = ingest(seeded_landing, warehouse)
    assert outcome.published and outcome.release["release"] == 1
    monkeypatch.chdir(tmp_path)  # views must not depend on the working directory
    con = duckdb.connect(str(warehouse / "catalog.duckdb"), read_only=True)
    # Stock DuckDB: no extension may be installed or loaded behind our back.
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    yield con
    con.close()


def scalar(con, sql, params=()):
    return con.execute(sql, params).fetchone()[0]


def test_seed_figures(catalog):
    assert scalar(catalog, "SELECT sum(n_valid) FROM digests") == 325
    assert scalar(catalog, "SELECT count(*) FROM appearances") == 325
    assert scalar(catalog, "SELECT count(*) FROM papers") == 268
    assert scalar(catalog, "SELECT count(*) FROM digests") == 5
    assert scalar(catalog, "SELECT count(*) FROM digests WHERE status = 'ingested'") == 5
    assert scalar(catalog, "SELECT count(*) FROM quarantine") == 0
    assert scalar(catalog, "SELECT papers_added FROM releases WHERE release = 1") == 268


def test_just_one_byte_appears_four_times(catalog):
    n = scalar(
        catalog,
        "SELECT n_appearances FROM papers WHERE title LIKE ?",
        ["Just One Byte (per gradient):%"],
    )
    assert n == 4


def test_daily_papers_header_seed_parses_like_the_others(catalog):
    rows = catalog.execute(
        "SELECT source_path, n_header_lines, n_valid, n_quarantined, n_lines, digest_date "
        "FROM digests ORDER BY source_path"
    ).fetchall()
    by_name = {r[0][:3]: r for r in rows}
    assert by_name["001"][1] == 6  # the extra `Daily Papers` line
    assert all(r[1] == 5 for k, r in by_name.items() if k != "001")
    assert all(row[3] == 0 for row in rows)  # nothing quarantined
    assert by_name["001"][2] == 65 and by_name["001"][4] == 6 + 2 * 65
    assert str(by_name["000"][5]) == "2025-03-14"


def test_published_papers_pass_enrichment_basics(catalog):
    repo = scalar(
        catalog,
        "SELECT github_repo FROM papers WHERE title LIKE ?",
        ["Large Batch Optimization for Deep Learning%"],
    )
    assert repo == "tensorflow/addons"
    assert scalar(catalog, "SELECT acronym FROM papers WHERE title LIKE 'TAME:%'") == "TAME"
    bad_links = scalar(
        catalog,
        "SELECT count(*) FROM (SELECT unnest(links) AS l FROM papers) WHERE l SIMILAR TO '.*[.)}]'",
    )
    assert bad_links == 0


def test_paper_ids_are_stable_when_more_digests_land(seeds_dir, tmp_path):
    """Seeds A alone, versus A then B in a second warehouse: A's papers keep their ids."""
    import shutil

    from tests.conftest import SEEDS_MTIME, set_mtime

    seeds = sorted(seeds_dir.glob("*.txt"))
    first, second = seeds[:3], seeds[3:]

    def land(folder, files):
        folder.mkdir(exist_ok=True)
        for seed in files:
            set_mtime(Path(shutil.copy(seed, folder)), SEEDS_MTIME)
        return folder

    def ids(warehouse):
        con = duckdb.connect(str(warehouse / "catalog.duckdb"), read_only=True)
        return dict(con.execute("SELECT title_key, paper_id FROM papers").fetchall())

    ingest(land(tmp_path / "a", first), tmp_path / "wa")
    alone = ids(tmp_path / "wa")
    landing = land(tmp_path / "ab", first)
    ingest(landing, tmp_path / "wab")
    ingest(land(landing, second), tmp_path / "wab")
    together = ids(tmp_path / "wab")
    assert len(together) == 268 and len(alone) < 268
    assert {k: together[k] for k in alone} == alone
