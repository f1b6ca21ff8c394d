"""The benchmark runner works end to end on a tiny corpus (timings are never asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> dict:
    """The figures a benchmark script prints with --json."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.slow
def test_benchmark_runner_smoke(tmp_path):
    figures = _run("run.py", "--digests", "3", "--repeat", "2", "--workdir", str(tmp_path))
    assert figures["baseline"]["rows"] > 100
    assert (figures["full_build"]["published"], figures["full_build"]["release"]) == (True, 1)
    assert (figures["add_one_digest"]["published"], figures["add_one_digest"]["release"]) == (
        True,
        2,
    )
    assert figures["add_one_digest"]["papers"] > figures["full_build"]["papers"]
    assert (figures["no_op"]["published"], figures["no_op"]["release"]) == (False, 2)
    for phase in ("baseline", "full_build", "add_one_digest", "no_op"):
        assert figures[phase]["seconds"] > 0 and figures[phase]["peak_rss_mib"] > 0
        assert figures[phase]["cpu_seconds"] > 0
        # Measured as a user's install runs: Pandera would import hypothesis if it could.
        assert "hypothesis" in figures[phase]["dev_packages_blocked"]
        assert figures[phase]["dev_packages_imported"] == []
    assert len(list((tmp_path / "landing").glob("synthetic-*.txt"))) == 4
    # Each round starts from an empty warehouse and the corpus without the next digest.
    assert len(figures["rounds"]) == 2
    for round_ in figures["rounds"]:
        assert (round_["full_build"]["release"], round_["add_one_digest"]["release"]) == (1, 2)
        assert round_["no_op"]["published"] is False


def _figures(baseline: float, full: float, rss: float) -> dict:
    outcome = {"published": True, "release": 1, "papers": 10, "cpu_seconds": 1.0}
    return {
        "baseline": {"seconds": baseline, "rows": 9, "cpu_seconds": 1.0, "peak_rss_mib": 50.0},
        "full_build": {**outcome, "seconds": full, "peak_rss_mib": rss},
        "add_one_digest": {**outcome, "seconds": full / 10, "peak_rss_mib": rss},
        "no_op": {**outcome, "seconds": 0.1, "peak_rss_mib": 40.0},
    }


def test_rounds_are_summarized_by_medians_and_each_rounds_own_ratio():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run import markdown, summarize

    # A slow second round (the machine was busy: both phases took twice as long), and a
    # third whose baseline alone was slow.
    rounds = [_figures(1.0, 10.0, 900.0), _figures(2.0, 20.0, 950.0), _figures(3.0, 12.0, 800.0)]
    summary = summarize(rounds)
    full = summary["full_build"]
    assert full["seconds"] == 12.0
    assert (full["seconds_min"], full["seconds_max"]) == (10.0, 20.0)
    # The median of the rounds' own ratios (10, 10, 4), not the ratio of the medians (6).
    assert full["ratio"] == 10.0
    assert full["peak_rss_mib"] == 950.0  # the highest peak: memory is a bound, not a mean
    assert summary["baseline"]["ratio"] == 1.0
    assert summary["add_one_digest"]["of_full_build"] == 0.1
    assert "of_full_build" not in summary["full_build"]  # no share of itself
    table = markdown(summary, len(rounds))
    assert "median of 3" in table
    assert "| full build (Dagster graph) | 12.00 | 10.00-20.00 | 1.0 | 10.00 |  | 950 |" in table
    assert "| add one digest | 1.20 | 1.00-2.00 | 1.0 | 1.00 | 10.0 | 950 |" in table


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_phase_reports_its_own_peak_not_its_parents():
    # The runner starts each phase from a parent that held the generated corpus; on Linux
    # getrusage's ru_maxrss would give the child that parent's peak.
    held = bytearray(400 * 2**20)
    held[:: 2**12] = b"\x01" * len(held[:: 2**12])  # touch every page: resident
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from run import _peak_rss_mib; print(_peak_rss_mib())"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "benchmarks")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert 0 < float(child.stdout) < 200
    del held


@pytest.mark.slow
def test_paired_runs_smoke(tmp_path):
    from pipelines.core.catalog import catalog_info

    args = ["--before", str(ROOT), "--digests", "2", "--pairs", "2", "--workdir", str(tmp_path)]
    figures = _run("paired.py", *args)
    for pair in figures["pairs"]:
        for side in ("before", "after"):
            # Each add starts again from the side's release 1: each makes release 2.
            assert (pair[side]["published"], pair[side]["release"]) == (True, 2)
            assert pair[side]["seconds"] > 0 and pair[side]["peak_rss_mib"] > 0
        assert pair["before"]["papers"] == pair["after"]["papers"]
    assert figures["before"]["won"] + figures["after"]["won"] == 2
    for side in ("before", "after"):
        # Added to where it was built, as a user's warehouse is: not a moved warehouse.
        warehouse = tmp_path / side
        info = catalog_info(warehouse / "catalog.duckdb")
        assert (info["release"], info["warehouse"]) == (2, str(warehouse))
    assert not (tmp_path / "add").exists()  # the landing copies go once added to


def test_paired_runs_are_summarized_by_medians_and_pairs_won():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from paired import summarize

    def run(seconds: float) -> dict:
        return {"seconds": seconds, "cpu_seconds": seconds * 2, "peak_rss_mib": 100 * seconds}

    pairs = [
        {"before": run(2.0), "after": run(1.5)},
        {"before": run(1.0), "after": run(1.2)},  # a quiet moment for the old side
        {"before": run(3.0), "after": run(2.5)},
    ]
    summary = summarize(pairs)
    assert summary["before"]["seconds"] == 2.0 and summary["after"]["seconds"] == 1.5
    assert (summary["before"]["seconds_min"], summary["before"]["seconds_max"]) == (1.0, 3.0)
    assert (summary["before"]["won"], summary["after"]["won"]) == (1, 2)
    assert summary["after"]["cpu_seconds"] == 3.0
    assert (summary["after"]["rss_min"], summary["after"]["rss_max"]) == (120.0, 250.0)
