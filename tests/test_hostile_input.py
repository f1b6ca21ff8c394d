"""Hostile landing folders, injection attempts and broken warehouses."""

import datetime as dt
import hashlib
import json
import os
import socket
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.defs.inprocess import ingest
from tests.conftest import abstract_for, write_digest

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def papers_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, *expected):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0]


def read(warehouse: Path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(warehouse / "catalog.duckdb"), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def test_paths_outside_landing_are_refused_with_a_quarantine_row(landing, warehouse, tmp_path):
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("new\n\nMar 1\n\nSecret Title\n\n" + abstract_for("secret") + "\n")
    (landing / "sneaky.txt").symlink_to(secret)
    (landing / "sub").mkdir()
    (landing / "sub" / "up.txt").symlink_to("../../outside/secret.txt")
    write_digest(landing, "fine.txt", "Mar 2", [("Fine Paper", abstract_for("fine"))], T0)
    inside = landing / "inside-link.txt"
    inside.symlink_to("fine.txt")  # a link inside the folder is just another name

    ingest(landing, warehouse)
    quarantine = read(warehouse, "SELECT * FROM quarantine ORDER BY source_path")
    assert quarantine["source_path"].to_list() == ["sneaky.txt", "sub/up.txt"]
    assert set(quarantine["reason"]) == {"outside_landing"}
    assert all("outside the landing folder" in m for m in quarantine["message"])
    assert quarantine["raw_text"].to_list() == ["", ""]  # never read
    titles = read(warehouse, "SELECT title FROM papers")["title"].to_list()
    assert titles == ["Fine Paper"]  # the secret was not ingested


def test_directories_fifos_and_sockets_are_skipped_with_a_message(landing, warehouse):
    (landing / "folder.txt").mkdir()
    os.mkfifo(landing / "pipe.txt")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(landing / "sock.txt"))
    write_digest(landing, "fine.txt", "Mar 2", [("Fine Paper", abstract_for("fine"))], T0)
    try:
        outcome = ingest(landing, warehouse)
    finally:
        server.close()
    assert outcome.n_files == 1
    assert sorted(outcome.skipped) == [
        "folder.txt: not a regular file; skipped",
        "pipe.txt: not a regular file; skipped",
        "sock.txt: not a regular file; skipped",
    ]
    assert read(warehouse, "SELECT count(*) AS n FROM papers")["n"][0] == 1


def test_a_file_over_the_limit_is_quarantined_by_reference(landing, warehouse):
    big = write_digest(
        landing,
        "big.txt",
        "Mar 3",
        [(f"Paper {i}", abstract_for(f"topic {i}")) for i in range(20)],
        T0,
    )
    write_digest(landing, "small.txt", "Mar 4", [("Small", abstract_for("small"))], T0)
    ingest(landing, warehouse, max_file_bytes=2_000)
    row = read(warehouse, "SELECT * FROM quarantine").row(0, named=True)
    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    assert (row["source_path"], row["reason"], row["digest_id"]) == (
        "big.txt",
        "file_too_large",
        sha,
    )
    assert f"{big.stat().st_size:,} bytes" in row["message"] and sha in row["message"]
    assert row["raw_text"] == ""
    digest = read(warehouse, "SELECT * FROM digests WHERE source_path = 'big.txt'")
    assert digest["status"][0] == "rejected" and digest["n_bytes"][0] == big.stat().st_size


@pytest.mark.parametrize(
    "name",
    [
        "with spaces in it.txt",
        'quote\'s "double".txt',
        "semi;colon;.txt",
        "ünïcødé — 論文.txt",
        ("long-" * 48) + ".txt",  # 245 bytes, near the file-name limit
        "x'); DROP VIEW papers; --.txt",
    ],
)
def test_awkward_file_names_ingest_and_sql_is_not_injected(name, tmp_path):
    landing = tmp_path / "land'ing; DROP"
    warehouse = tmp_path / "ware'house \"#; --"  # quotes, spaces, URL characters too
    write_digest(landing, name, "Mar 5", [("Awkward Name Paper", abstract_for("names"))], T0)
    outcome = ingest(landing, warehouse)
    assert outcome.published
    con = duckdb.connect(str(warehouse / "catalog.duckdb"), read_only=True)
    views = {
        v
        for (v,) in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
        ).fetchall()
    }
    assert {"papers", "digests", "appearances", "quarantine", "releases"} <= views
    assert con.execute("SELECT source_path FROM digests").fetchone()[0] == name
    assert con.execute("SELECT title FROM papers").fetchone()[0] == "Awkward Name Paper"
    con.close()
    result = papers_cli(
        "sql", "SELECT source_path FROM digests", "--warehouse", warehouse, "-f", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"source_path": name}]


def published(landing, warehouse):
    write_digest(landing, "a.txt", "Mar 1", [("Paper A", abstract_for("a"))], T0)
    ingest(landing, warehouse)
    return warehouse


def test_unwritable_warehouse_and_missing_landing_give_one_line(landing, tmp_path):
    a_file = tmp_path / "plain-file"
    a_file.write_text("not a folder")
    one_line_error(
        papers_cli("ingest", "--landing", landing, "--warehouse", a_file / "wh"),
        "cannot create warehouse folder",
        "--warehouse",
    )
    one_line_error(
        papers_cli("ingest", "--landing", tmp_path / "nope", "--warehouse", tmp_path),
        "does not exist",
        "--landing",
    )
    one_line_error(
        papers_cli("sql", "SELECT 1", "--warehouse", tmp_path / "empty"), "papers ingest"
    )
    one_line_error(papers_cli("doctor", "--warehouse", tmp_path / "empty"), "no warehouse")


def test_corrupt_catalog_is_reported_and_repaired(landing, warehouse):
    published(landing, warehouse)
    catalog = warehouse / "catalog.duckdb"
    catalog.write_bytes(b"this is not a duckdb file" * 100)
    one_line_error(
        papers_cli("sql", "SELECT 1", "--warehouse", warehouse),
        "is damaged",
        "papers doctor --repair",
    )
    doctor = papers_cli("doctor", "--warehouse", warehouse)
    assert doctor.exit_code == 1 and "catalog cannot be opened" in doctor.stderr
    repaired = papers_cli("doctor", "--repair", "--warehouse", warehouse)
    assert repaired.exit_code == 0 and "healthy" in repaired.stdout, repaired.output
    assert read(warehouse, "SELECT title FROM papers")["title"].to_list() == ["Paper A"]


def test_missing_data_file_is_reported_repaired_and_nothing_else_damaged(landing, warehouse):
    published(landing, warehouse)
    [data_file] = (warehouse / "tables" / "papers").glob("*.parquet")
    data_file.unlink()
    one_line_error(
        papers_cli("sql", "SELECT * FROM papers", "--warehouse", warehouse),
        "query failed",
        "papers doctor",
    )
    one_line_error(
        papers_cli("ingest", "--landing", landing, "--warehouse", warehouse),
        "ingest failed",
        "papers doctor",
    )
    # the other tables of the release are untouched
    assert read(warehouse, "SELECT count(*) AS n FROM digests")["n"][0] == 1
    doctor = papers_cli("doctor", "--warehouse", warehouse)
    assert doctor.exit_code == 1
    assert "papers: 1 data file(s) of the current version are missing" in doctor.stderr
    repaired = papers_cli("doctor", "--repair", "--warehouse", warehouse)
    assert repaired.exit_code == 0, repaired.output
    assert "republished the tables" in repaired.stdout
    assert read(warehouse, "SELECT title FROM papers")["title"].to_list() == ["Paper A"]
    assert papers_cli("ingest", "--landing", landing, "--warehouse", warehouse).exit_code == 0


def test_unreadable_file_is_skipped_with_a_message(landing, warehouse, monkeypatch):
    write_digest(landing, "locked.txt", "Mar 1", [("Locked", abstract_for("locked"))], T0)
    write_digest(landing, "open.txt", "Mar 2", [("Open", abstract_for("open"))], T0)
    real_open = open

    def no_permission(path, *args, **kwargs):  # root reads everything: simulate a 000 file
        if str(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_permission)
    from pipelines.core.landing import LandingError, read_landed

    with pytest.raises(LandingError, match="locked.txt: cannot be read"):
        read_landed(landing, "locked.txt")
    outcome = ingest(landing, warehouse)
    assert outcome.published and outcome.release["papers_rows"] == 1


def test_doctor_reports_a_retained_release_whose_files_are_gone(landing, warehouse):
    published(landing, warehouse)
    write_digest(landing, "b.txt", "Mar 2", [("Paper B", abstract_for("b"))], T0)
    ingest(landing, warehouse)
    from pipelines.core.publish import get_release
    from pipelines.core.warehouse import WarehousePaths

    paths = WarehousePaths(warehouse)
    old, latest = get_release(paths, 1), get_release(paths, 2)

    def files(name: str, release: dict) -> set[str]:
        return set(paths.data_files(paths.delta(name, release[f"{name}_version"])))

    # The files of release 1 that release 2 no longer uses (release 2 kept release 1's
    # papers file and rewrote its appearances).
    gone = [p for n in ("papers", "appearances") for p in files(n, old) - files(n, latest)]
    assert gone
    for path in gone:
        Path(path).unlink()
    doctor = papers_cli("doctor", "--warehouse", warehouse)
    assert doctor.exit_code == 1 and "release 1: some of its files are gone" in doctor.stderr
    assert papers_cli("doctor", "--repair", "--warehouse", warehouse).exit_code == 0
    con = duckdb.connect(str(warehouse / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT time_travel_releases FROM catalog_info").fetchone()[0] == [2]
    con.close()
