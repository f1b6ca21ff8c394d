"""The DuckDB catalog: extended release by release, it is the catalog written afresh."""

from pathlib import Path

import duckdb
import pytest

from pipelines.core import catalog
from pipelines.core.catalog import catalog_info, write_catalog
from pipelines.core.publish import publish_release, releases
from pipelines.core.warehouse import WarehousePaths
from tests.core.test_publish import tables_for


def _contents(path) -> dict:
    """Every schema, table and view of a catalog file, with each view's SQL, and its
    record of itself."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        views = con.execute(
            "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL"
        ).fetchall()
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL"
        ).fetchall()
        files = con.execute("SELECT * FROM catalog_files ORDER BY ALL").fetchall()
    finally:
        con.close()
    return {"views": views, "tables": tables, "files": files, "info": catalog_info(path)}


def _written_afresh(paths: WarehousePaths, tmp_path) -> dict:
    fresh = WarehousePaths(paths.root, catalog_file=str(tmp_path / "fresh.duckdb"))
    write_catalog(fresh, releases(paths).rows(named=True))
    return _contents(fresh.catalog)


@pytest.fixture
def few_releases_kept(monkeypatch):
    monkeypatch.setattr(catalog, "CATALOG_RELEASES", 3)


def test_a_catalog_extended_release_by_release_is_the_catalog_written_afresh(
    tmp_path, few_releases_kept, monkeypatch
):
    paths = WarehousePaths(tmp_path / "warehouse")
    written = []
    monkeypatch.setattr(catalog, "write_catalog", lambda *a: written.append(1) or write_catalog(*a))
    for day in range(1, 6):  # past CATALOG_RELEASES: the oldest schemas go
        publish_release(paths, tables_for(*range(1, day + 1)))
        assert _contents(paths.catalog) == _written_afresh(paths, tmp_path)
    assert written == [1]  # written afresh for the first release only
    assert catalog_info(paths.catalog)["time_travel_releases"] == [3, 4, 5]
    con = duckdb.connect(str(paths.catalog), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM r4.papers").fetchone() == (4,)
        assert con.execute("SELECT max(release) FROM r4.releases").fetchone() == (4,)
        assert con.execute("SELECT count(*) FROM main.paper_changes").fetchone() == (5,)
    finally:
        con.close()


def test_a_release_whose_files_are_gone_leaves_the_catalog_written_afresh(
    tmp_path, few_releases_kept
):
    paths = WarehousePaths(tmp_path / "warehouse")
    for day in range(1, 4):
        publish_release(paths, tables_for(*range(1, day + 1)))
    # A file only release 2 reads (digests are written whole each release) deleted behind
    # the catalog's back, as by a vacuum cut short.
    con = duckdb.connect(str(paths.catalog), read_only=True)
    [(gone,)] = con.execute(
        "SELECT file FROM catalog_files WHERE release = 2 AND file LIKE '%/digests/%'"
    ).fetchall()
    con.close()
    Path(gone).unlink()
    publish_release(paths, tables_for(1, 2, 3, 4))
    assert catalog_info(paths.catalog)["time_travel_releases"] == [3, 4]
    assert _contents(paths.catalog) == _written_afresh(paths, tmp_path)


def test_view_row_counts_are_the_tables_rows_when_the_catalog_shows_the_release(tmp_path):
    from pipelines.core.catalog import view_row_counts

    paths = WarehousePaths(tmp_path / "warehouse")
    assert view_row_counts(paths, 1, ["papers"]) is None  # no catalog yet
    tables = tables_for(1, 2)
    publish_release(paths, tables)
    counts = view_row_counts(paths, 1, ["papers", "digests", "releases"])
    assert counts == {"papers": tables["papers"].height, "digests": 2, "releases": 1}
    assert view_row_counts(paths, 2, ["papers"]) is None  # it shows release 1
    paths.catalog.write_bytes(b"not a catalog")
    assert view_row_counts(paths, 1, ["papers"]) is None


def _attached_databases() -> list[str]:
    rows = catalog._process_database().execute(
        "SELECT database_name FROM duckdb_databases() WHERE NOT internal ORDER BY ALL"
    )
    return [name for (name,) in rows.fetchall()]


def test_a_catalog_write_that_fails_leaves_the_catalog_as_it_was_and_nothing_attached(
    tmp_path, monkeypatch
):
    paths = WarehousePaths(tmp_path / "warehouse")
    publish_release(paths, tables_for(1))
    wal = paths.catalog.with_name(paths.catalog.name + ".wal")
    # Written through the process's database, then detached: all in the file itself.
    assert not wal.exists() and _attached_databases() == ["memory"]
    before = _contents(paths.catalog)

    def disk_full(*args):
        raise duckdb.IOException("No space left on device")

    monkeypatch.setattr(catalog, "_add_release", disk_full)
    with pytest.raises(duckdb.IOException):
        publish_release(paths, tables_for(1, 2))  # release 2 commits, its catalog fails
    assert _contents(paths.catalog) == before and catalog_info(paths.catalog)["release"] == 1
    assert _attached_databases() == ["memory"]
    monkeypatch.undo()
    publish_release(paths, tables_for(1, 2, 3))
    assert _contents(paths.catalog) == _written_afresh(paths, tmp_path)


def test_a_process_that_published_exits_without_duckdb_reporting_leaks(tmp_path):
    import subprocess
    import sys
    import textwrap

    # The process's DuckDB database lives until exit. Alive when the interpreter tears
    # its modules down (here, with a gc callback installed, as tools do), DuckDB's
    # bindings printed "nanobind: leaked ..." on stderr: it is closed before then.
    script = textwrap.dedent(
        f"""
        import gc, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from pathlib import Path
        from pipelines.core.catalog import view_row_counts
        from pipelines.core.publish import publish_release
        from pipelines.core.warehouse import WarehousePaths
        from tests.core.test_publish import tables_for
        gc.callbacks.append(lambda phase, info: None)
        paths = WarehousePaths(Path({str(tmp_path / "warehouse")!r}))
        publish_release(paths, tables_for(1, 2))
        print(view_row_counts(paths, 1, ["papers"]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str({"papers": tables_for(1, 2)["papers"].height})
    assert "leaked" not in done.stderr


def test_a_release_opens_the_process_database_on_a_thread_of_its_own(tmp_path, monkeypatch):
    import os
    import threading

    monkeypatch.setattr(catalog, "_DATABASES", {})  # as in a process that has not opened it
    opening = catalog.open_database_early(WarehousePaths(tmp_path / "warehouse"))
    opening.join(timeout=60)
    assert opening.ident != threading.get_ident() and os.getpid() in catalog._DATABASES
    assert catalog._process_database() is catalog._DATABASES[os.getpid()]  # not opened again
    catalog._close_database(os.getpid())
    assert catalog._DATABASES == {}
