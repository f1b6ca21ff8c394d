"""Benchmark: the pipeline against the obvious one-statement DuckDB alternative.

    uv run python benchmarks/run.py --digests 1000 --repeat 3

On one generated corpus, in one run, it times (a) the DuckDB baseline, (b) a full build
through the real Dagster asset graph, (c) adding one new digest, (d) a re-run with nothing
new, each in its own child process so that each phase's peak RSS and CPU time are its own,
and with the dev dependencies unimportable, as in a user's install.
With --repeat N the four phases run N times in turn (a fresh warehouse each round), and the
table gives each phase's median, its range, its CPU seconds and the median of each round's
ratio to that round's baseline (and to its full build, for the runs after it): on a shared
machine one round can be twice as slow as the next. Prints a
markdown table for BENCHMARKS.md. Timings are never asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The user's obvious alternative: read every digest, split title/abstract pairs after the
# date line, group by lower-cased title, write Parquet. No validation, no quarantine, no
# versions; it stops at the first undecodable file.
BASELINE_SQL = """
COPY (
  WITH lines AS (
    SELECT filename, unnest(l) AS line, generate_subscripts(l, 1) AS i
    FROM (
      SELECT filename,
             list_filter(string_split(replace(content, chr(13), ''), chr(10)),
                         lambda x: trim(x) <> '') AS l
      FROM read_text({glob})
    )
  ),
  dated AS (
    SELECT *, min(CASE WHEN regexp_full_match(trim(line), '[A-Z][a-z]{{2}} [0-9]{{1,2}}')
                       THEN i END) OVER (PARTITION BY filename) AS d
    FROM lines
  ),
  pairs AS (
    SELECT filename, (i - d + 1) // 2 AS k,
           max(CASE WHEN (i - d) % 2 = 1 THEN trim(line) END) AS title,
           max(CASE WHEN (i - d) % 2 = 0 THEN trim(line) END) AS abstract
    FROM dated WHERE i > d GROUP BY ALL
  )
  SELECT lower(title) AS title_key, any_value(title) AS title,
         any_value(abstract) AS abstract, count(*) AS n_appearances
  FROM pairs WHERE title IS NOT NULL GROUP BY 1
) TO {out} (FORMAT parquet)
"""


def _peak_rss_mib() -> float:
    """This process's own peak RSS in MiB (2**20 bytes: 2 GB is 1,907 MiB). Not
    getrusage's ru_maxrss: on Linux a child started by fork and exec inherits its parent's
    peak there (a phase of 10,000 digests read the generator's 2.1 GB as its own), while
    VmHWM belongs to the program exec started."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # "kB" there: KiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu_seconds() -> float:
    """User and system CPU time of this process and its threads: beside the wall time, it
    shows how much of a phase could still run side by side on the machine's cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def dev_only_packages() -> list[str]:
    """The import names of the project's dev dependency group (pyproject.toml)."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        specs = tomllib.load(file).get("dependency-groups", {}).get("dev", [])
    names = {re.split(r"[\[<>=!~;\s]", spec, maxsplit=1)[0] for spec in specs}
    return sorted(name.replace("-", "_") for name in names)


def as_installed_for_users() -> list[str]:
    """Make the dev dependencies unimportable in this process, as in a user's install:
    a phase measures the package, not the test tools beside it. Pandera imports
    hypothesis on a process's first validation when it is installed: 70-90 ms of adding
    a digest to 1,000. Returns the packages made unimportable."""
    blocked = [name for name in dev_only_packages() if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # `import name` now raises ImportError
    return blocked


def phase_baseline(landing: Path, work: Path) -> dict:
    import duckdb

    from pipelines.core.catalog import sql_string

    out = work / "baseline.parquet"
    con = duckdb.connect()
    started, cpu = time.perf_counter(), _cpu_seconds()
    con.execute(
        BASELINE_SQL.format(glob=sql_string(str(landing / "*.txt")), out=sql_string(str(out)))
    )
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    rows = con.execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchone()[0]
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": rows}


def phase_ingest(landing: Path, warehouse: Path) -> dict:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from pipelines.defs.inprocess import ingest

    started, cpu = time.perf_counter(), _cpu_seconds()
    outcome = ingest(landing, warehouse, log_level="CRITICAL")
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    release = outcome.release or {}
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "published": outcome.published,
        "release": release.get("release"),
        "papers": release.get("papers_rows"),
    }


PHASES = {"baseline": phase_baseline, "ingest": phase_ingest}


def run_phase(name: str, *args: Path) -> dict:
    """Run one phase in a fresh interpreter; returns its figures and its own peak RSS."""
    result = subprocess.run(
        [sys.executable, __file__, "--phase", name, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


PHASE_NAMES = ("baseline", "full_build", "add_one_digest", "no_op")
AFTER_FULL_BUILD = ("add_one_digest", "no_op")  # their cost is also a share of the build's
LABELS = {
    "baseline": "DuckDB one statement (baseline)",
    "full_build": "full build (Dagster graph)",
    "add_one_digest": "add one digest",
    "no_op": "re-run, nothing new",
}


def run_round(landing: Path, work: Path, next_digest: tuple[str, str]) -> dict:
    """The four phases once, from an empty warehouse and the corpus without the next day's
    digest, which lands after the full build."""
    warehouse = work / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    next_name, next_text = next_digest
    (landing / next_name).unlink(missing_ok=True)
    figures = {"baseline": run_phase("baseline", landing, work)}
    figures["full_build"] = run_phase("ingest", landing, warehouse)
    (landing / next_name).write_text(next_text, encoding="utf-8")
    figures["add_one_digest"] = run_phase("ingest", landing, warehouse)
    figures["no_op"] = run_phase("ingest", landing, warehouse)
    return figures


def land_corpus(landing: Path, n_digests: int, seed: int) -> tuple[str, str]:
    """Generate `n_digests` digests into an empty `landing` and return the next day's
    (file name, text), new and repeated papers, to land after a full build. One pass of
    the generator, so the next digest follows the corpus."""
    from pipelines.core.synthetic import generate_digests

    shutil.rmtree(landing, ignore_errors=True)
    landing.mkdir(parents=True)
    *corpus, next_digest = generate_digests(n_digests + 1, seed=seed)
    for name, text in corpus:
        (landing / name).write_text(text, encoding="utf-8")
    return next_digest


def summarize(rounds: list[dict]) -> dict:
    """Per phase: the median seconds and CPU seconds over the rounds, their range, the
    median of each round's ratio to its own baseline (and, for the runs after the full
    build, to its own full build), the highest peak RSS, and the last round's outcome
    (every round builds the same releases)."""
    summary = {}
    for phase in PHASE_NAMES:
        runs = [r[phase] for r in rounds]
        seconds = [run["seconds"] for run in runs]
        ratios = [r[phase]["seconds"] / r["baseline"]["seconds"] for r in rounds]
        summary[phase] = {
            **runs[-1],
            "seconds": statistics.median(seconds),
            "cpu_seconds": statistics.median(run["cpu_seconds"] for run in runs),
            "seconds_min": min(seconds),
            "seconds_max": max(seconds),
            "ratio": statistics.median(ratios),
            "peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
        }
        if phase in AFTER_FULL_BUILD:
            of_full = [r[phase]["seconds"] / r["full_build"]["seconds"] for r in rounds]
            summary[phase]["of_full_build"] = statistics.median(of_full)
    return summary


def markdown(summary: dict, n_rounds: int) -> str:
    seconds = "seconds" if n_rounds == 1 else f"seconds (median of {n_rounds})"
    lines = [
        f"| phase | {seconds} | range | CPU seconds | × baseline | % of full build "
        "| peak RSS (MiB) | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase in PHASE_NAMES:
        r = summary[phase]
        outcome = (
            f"{r['rows']:,} title groups"
            if phase == "baseline"
            else f"release {r['release']}, {r['papers']:,} papers"
            + ("" if r["published"] else " (nothing published)")
        )
        of_full = f"{100 * r['of_full_build']:.1f}" if "of_full_build" in r else ""
        lines.append(
            f"| {LABELS[phase]} | {r['seconds']:.2f} | {r['seconds_min']:.2f}-"
            f"{r['seconds_max']:.2f} | {r['cpu_seconds']:.1f} | {r['ratio']:.2f} | {of_full} | "
            f"{r['peak_rss_mib']:,.0f} | {outcome} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=1000, help="digests in the corpus")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the four phases")
    parser.add_argument("--workdir", type=Path, help="keep the corpus and warehouse here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:  # child process
        name, *paths = args.phase
        blocked = as_installed_for_users()
        figures = PHASES[name](*map(Path, paths))
        figures["peak_rss_mib"] = round(_peak_rss_mib(), 1)
        # Which dev packages the phase got anyway: none, unless one was imported before.
        figures["dev_packages_imported"] = sorted(
            name for name in dev_only_packages() if sys.modules.get(name) is not None
        )
        figures["dev_packages_blocked"] = blocked
        print(json.dumps(figures))
        return
    if args.repeat < 1 or args.digests < 1:
        parser.error("--digests and --repeat take a number of at least 1")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="papers-bench-"))
    landing = work / "landing"
    next_digest = land_corpus(landing, args.digests, args.seed)
    corpus_mib = sum(p.stat().st_size for p in landing.iterdir()) / 2**20

    rounds = [run_round(landing, work, next_digest) for _ in range(args.repeat)]
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    results = {
        "digests": args.digests,
        "corpus_mib": round(corpus_mib, 1),
        "cores": os.cpu_count(),
        **summarize(rounds),
        "rounds": rounds,
    }
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"{args.digests:,} digests ({corpus_mib:,.0f} MiB), {os.cpu_count()} cores\n")
    print(markdown(results, len(rounds)))


if __name__ == "__main__":
    main()
