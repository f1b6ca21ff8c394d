"""The benchmark runner works end to end on a tiny corpus (timings are never asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_runner_smoke(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--digests",
            "3",
            "--json",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert figures["baseline"]["rows"] > 100
    assert (figures["full_build"]["published"], figures["full_build"]["release"]) == (True, 1)
    assert (figures["add_one_digest"]["published"], figures["add_one_digest"]["release"]) == (
        True,
        2,
    )
    assert figures["add_one_digest"]["papers"] > figures["full_build"]["papers"]
    assert (figures["no_op"]["published"], figures["no_op"]["release"]) == (False, 2)
    for phase in ("baseline", "full_build", "add_one_digest", "no_op"):
        assert figures[phase]["seconds"] > 0 and figures[phase]["peak_rss_mb"] > 0
    assert len(list((tmp_path / "landing").glob("synthetic-*.txt"))) == 4


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_phase_reports_its_own_peak_not_its_parents():
    # The runner starts each phase from a parent that held the generated corpus; on Linux
    # getrusage's ru_maxrss would give the child that parent's peak.
    held = bytearray(400 * 2**20)
    held[:: 2**12] = b"\x01" * len(held[:: 2**12])  # touch every page: resident
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from run import _peak_rss_mb; print(_peak_rss_mb())"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "benchmarks")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert 0 < float(child.stdout) < 200
    del held
