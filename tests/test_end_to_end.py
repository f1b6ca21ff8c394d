"""Slow end-to-end tests: real processes, as a user would run them."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def run(args, cwd, env=None, timeout=300):
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{args}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def test_dagster_loads_the_code_location_from_workspace_yaml(tmp_path):
    result = run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env={"DAGSTER_HOME": str(tmp_path)},
    )
    assert "Validation successful for code location daily_papers" in result.stdout + result.stderr


def test_demo_on_an_empty_folder_writes_synthetic_digests_and_publishes(tmp_path):
    work = tmp_path / "fresh"
    work.mkdir()
    result = run(
        [str(BIN / "papers"), "demo"],
        cwd=work,
        env={"PAPERS_LANDING_DIR": "", "PAPERS_WAREHOUSE_DIR": "", "COLUMNS": "120"},
    )
    assert "SYNTHETIC" in result.stdout
    assert "Published release 1" in result.stdout
    landed = sorted(p.name for p in (work / "warehouse" / "landing").iterdir())
    assert landed == [f"synthetic-2025-01-0{d}.txt" for d in range(1, 6)]
    # stock DuckDB, another working directory, no extensions
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    try:
        con = duckdb.connect(str(work / "warehouse" / "catalog.duckdb"), read_only=True)
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        n_papers, n_release = con.execute(
            "SELECT (SELECT count(*) FROM papers), (SELECT max(release) FROM releases)"
        ).fetchone()
        assert n_papers > 250 and n_release == 1
        assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
    finally:
        os.chdir(ROOT)
    # a second run publishes nothing new
    again = run(
        [str(BIN / "papers"), "ingest"],
        cwd=work,
        env={"PAPERS_LANDING_DIR": "", "PAPERS_WAREHOUSE_DIR": ""},
    )
    assert "No change" in again.stdout
