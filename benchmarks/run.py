"""Benchmark: the pipeline against the obvious one-statement DuckDB alternative.

    uv run python benchmarks/run.py --digests 1000

On one generated corpus, in one run, it times (a) the DuckDB baseline, (b) a full build
through the real Dagster asset graph, (c) adding one new digest, (d) a re-run with nothing
new, each in its own child process so that each phase's peak RSS is its own. Prints a
markdown table for BENCHMARKS.md. Timings are never asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
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


def _peak_rss_mb() -> float:
    """This process's own peak RSS. Not getrusage's ru_maxrss: on Linux a child started
    by fork and exec inherits its parent's peak there (a phase of 10,000 digests read the
    generator's 2.1 GB as its own), while VmHWM belongs to the program exec started."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def phase_baseline(landing: Path, work: Path) -> dict:
    import duckdb

    from pipelines.core.catalog import sql_string

    out = work / "baseline.parquet"
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(
        BASELINE_SQL.format(glob=sql_string(str(landing / "*.txt")), out=sql_string(str(out)))
    )
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchone()[0]
    return {"seconds": seconds, "rows": rows}


def phase_ingest(landing: Path, warehouse: Path) -> dict:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from pipelines.defs.inprocess import ingest

    started = time.perf_counter()
    outcome = ingest(landing, warehouse, log_level="CRITICAL")
    seconds = time.perf_counter() - started
    release = outcome.release or {}
    return {
        "seconds": seconds,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=1000, help="digests in the corpus")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep the corpus and warehouse here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:  # child process
        name, *paths = args.phase
        figures = PHASES[name](*map(Path, paths))
        figures["peak_rss_mb"] = round(_peak_rss_mb(), 1)
        print(json.dumps(figures))
        return

    from pipelines.core.synthetic import generate_digests

    work = args.workdir or Path(tempfile.mkdtemp(prefix="papers-bench-"))
    landing, warehouse = work / "landing", work / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    shutil.rmtree(landing, ignore_errors=True)
    # One pass of the generator: every digest but the last lands now; the last one (the
    # next day: new and repeated papers) lands after the full build.
    landing.mkdir(parents=True)
    *corpus, (next_name, next_text) = generate_digests(args.digests + 1, seed=args.seed)
    for name, text in corpus:
        (landing / name).write_text(text, encoding="utf-8")
    del corpus
    corpus_mb = sum(p.stat().st_size for p in landing.iterdir()) / 2**20

    results = {"digests": args.digests, "corpus_mb": round(corpus_mb, 1)}
    results["baseline"] = run_phase("baseline", landing, work)
    results["full_build"] = run_phase("ingest", landing, warehouse)
    (landing / next_name).write_text(next_text, encoding="utf-8")
    results["add_one_digest"] = run_phase("ingest", landing, warehouse)
    results["no_op"] = run_phase("ingest", landing, warehouse)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        print(json.dumps(results, indent=1))
        return
    base = results["baseline"]["seconds"]
    print(f"{args.digests:,} digests ({corpus_mb:,.0f} MB), {os.cpu_count()} cores\n")
    print("| phase | seconds | × baseline | peak RSS (MB) | result |")
    print("|---|---|---|---|---|")
    for key, label in (
        ("baseline", "DuckDB one statement (baseline)"),
        ("full_build", "full build (Dagster graph)"),
        ("add_one_digest", "add one digest"),
        ("no_op", "re-run, nothing new"),
    ):
        r = results[key]
        outcome = (
            f"{r['rows']:,} title groups"
            if key == "baseline"
            else f"release {r['release']}, {r['papers']:,} papers"
            + ("" if r["published"] else " (nothing published)")
        )
        print(
            f"| {label} | {r['seconds']:.2f} | {r['seconds'] / base:.1f} | "
            f"{r['peak_rss_mb']:,.0f} | {outcome} |"
        )


if __name__ == "__main__":
    main()
