"""The matcher on the labelled pairs in benchmarks/ (the figures in BENCHMARKS.md)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("matching", ROOT / "benchmarks" / "matching.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_pairs_are_what_the_generator_makes():
    matching = load_benchmark()
    pairs = matching.read_pairs()
    assert pairs == matching.make_pairs()
    assert len(pairs) >= 300
    categories = {p["category"] for p in pairs}
    assert {"typo", "unicode_forms", "revised_abstract", "collision"} <= categories
    assert 0.3 < sum(p["same_paper"] for p in pairs) / len(pairs) < 0.7


def test_the_command_prints_precision_recall_and_f1_above_the_targets():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "matching.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    matcher, baseline = figures["matcher"], figures["baseline_exact_lower_title"]
    assert matcher["precision"] >= 0.99 and matcher["recall"] >= 0.98, figures["matcher_errors"]
    assert matcher["f1"] > baseline["f1"]
    assert baseline["recall"] < 0.6  # the set has variants exact matching cannot see
