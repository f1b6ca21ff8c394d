"""Paired runs of adding one digest: two checkouts of the project in turn, on one corpus.

    uv run python benchmarks/paired.py --before ../checkout-of-old-commit --pairs 6

A whole run of benchmarks/run.py cannot show a saving of a few tenths of a second on a
shared machine: its phases drift with the machine's load by more than that from one round
to the next. Here each checkout builds a warehouse from the same generated corpus with its
own code, then the two add the next day's digest in turn, each time to their warehouse as
built (restored from a copy, at the same path), each add in a fresh process (run.py's
`--phase ingest`). Both sides see the same load, pair by pair. Prints the median, range,
CPU seconds and peak RSS of each side, and the pairs each side won. Timings are never
asserted anywhere.

The `--before` checkout runs with this environment's packages: compare commits that share
uv.lock, or say so with the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from run import land_corpus  # the runner beside this file

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("before", "after")


def ingest(checkout: Path, landing: Path, warehouse: Path) -> dict:
    """`papers ingest` of `landing` into `warehouse` by the code of `checkout`, timed in a
    fresh process by that checkout's benchmark runner."""
    result = subprocess.run(
        [
            sys.executable,
            str(checkout / "benchmarks" / "run.py"),
            "--phase",
            "ingest",
            str(landing),
            str(warehouse),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"ingest by {checkout} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def add_one_digest(
    checkout: Path, built: Path, landing: Path, next_digest: tuple[str, str], work: Path
) -> dict:
    """Add the next digest to the warehouse `built`, restored first from the copy beside it
    (see `keep_pristine`): at the path it was built at, as a user's warehouse stays, so
    its catalog is extended rather than written again for a moved warehouse. Copies keep
    the files' mtimes, so the landed files are known by their size and mtime as they were."""
    shutil.rmtree(built, ignore_errors=True)
    shutil.copytree(_pristine(built), built, symlinks=True)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(landing, work / "landing", symlinks=True)
    name, text = next_digest
    (work / "landing" / name).write_text(text, encoding="utf-8")
    try:
        return ingest(checkout, work / "landing", built)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def keep_pristine(built: Path) -> None:
    """A copy of the warehouse as built, which each add starts from."""
    shutil.rmtree(_pristine(built), ignore_errors=True)
    shutil.copytree(built, _pristine(built), symlinks=True)


def _pristine(built: Path) -> Path:
    return built.with_name(built.name + "-as-built")


def summarize(pairs: list[dict[str, dict]]) -> dict:
    """Per side: the median seconds and CPU seconds, the range, the peak RSS range, and
    the pairs it was the faster in."""
    summary = {}
    for side in SIDES:
        runs = [pair[side] for pair in pairs]
        seconds = [run["seconds"] for run in runs]
        other = SIDES[1 - SIDES.index(side)]
        summary[side] = {
            "seconds": statistics.median(seconds),
            "seconds_min": min(seconds),
            "seconds_max": max(seconds),
            "cpu_seconds": statistics.median(run["cpu_seconds"] for run in runs),
            "rss_min": min(run["peak_rss_mib"] for run in runs),
            "rss_max": max(run["peak_rss_mib"] for run in runs),
            "won": sum(pair[side]["seconds"] < pair[other]["seconds"] for pair in pairs),
        }
    return summary


def describe(checkout: Path) -> str:
    """The checkout's commit (with "+" when its files differ from it), else its path."""
    git = ["git", "-C", str(checkout)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return str(checkout)
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return head.stdout.strip() + ("+" if changed.stdout.strip() else "")


def markdown(summary: dict, checkouts: dict[str, str], n_pairs: int) -> str:
    lines = [
        f"| side | checkout | seconds (median of {n_pairs}) | range | CPU seconds "
        "| peak RSS (MiB) | pairs won |",
        "|---|---|---|---|---|---|---|",
    ]
    for side in SIDES:
        r = summary[side]
        lines.append(
            f"| {side} | {checkouts[side]} | {r['seconds']:.2f} | {r['seconds_min']:.2f}-"
            f"{r['seconds_max']:.2f} | {r['cpu_seconds']:.2f} | {r['rss_min']:,.0f}-"
            f"{r['rss_max']:,.0f} | {r['won']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the old code")
    parser.add_argument("--after", type=Path, default=ROOT, help="default: this checkout")
    parser.add_argument("--digests", type=int, default=1000, help="digests in the corpus")
    parser.add_argument("--pairs", type=int, default=6, help="adds by each side, in turn")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep the corpus and warehouses here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args()
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    for side, checkout in checkouts.items():
        if not (checkout / "benchmarks" / "run.py").is_file():
            parser.error(f"--{side} {checkout} is not a checkout with benchmarks/run.py")
    if args.pairs < 1 or args.digests < 1:
        parser.error("--digests and --pairs take a number of at least 1")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="papers-paired-"))
    landing = work / "landing"
    next_digest = land_corpus(landing, args.digests, args.seed)

    built = {}
    for side, checkout in checkouts.items():
        built[side] = work / side
        shutil.rmtree(built[side], ignore_errors=True)
        full = ingest(checkout, landing, built[side])
        if full["release"] != 1:
            raise SystemExit(f"the {side} side built release {full['release']}, not 1")
        keep_pristine(built[side])
    pairs = [
        {
            side: add_one_digest(checkouts[side], built[side], landing, next_digest, work / "add")
            for side in SIDES
        }
        for _ in range(args.pairs)
    ]
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarize(pairs)
    if args.json:
        print(json.dumps({"digests": args.digests, **summary, "pairs": pairs}, indent=1))
        return
    print(f"Adding digest {args.digests + 1:,} to {args.digests:,}, {args.pairs} pairs\n")
    print(markdown(summary, {side: describe(c) for side, c in checkouts.items()}, args.pairs))


if __name__ == "__main__":
    main()
