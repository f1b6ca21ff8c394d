"""Shared fixtures: digest files written by the tests, and the real seeds when present."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipelines.core.synthetic import HEADER

SEEDS_DIR = Path(__file__).resolve().parents[2] / "shared" / "seeds"
# Landing time given to seed copies: their undated date lines then fall in 2024/2025.
SEEDS_MTIME = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)


def abstract_for(topic: str, n: int = 3) -> str:
    """A plausible multi-sentence abstract that differs clearly between topics."""
    sentences = [
        f"We study {topic} in depth and propose a new method for it.",
        f"Our approach to {topic} is evaluated on several public benchmarks.",
        f"Results show that {topic} improves with the proposed training recipe.",
        f"We release code and data for {topic} to foster further research.",
    ]
    return " ".join(sentences[:n])


def digest_text(
    date_label: str | None,
    entries: Sequence[tuple[str, str]],
    header: Sequence[str] = HEADER,
    newline: str = "\n",
) -> str:
    lines = [*header, *([date_label] if date_label else [])]
    for title, abstract in entries:
        lines += [title, abstract]
    return (newline * 2).join(lines) + newline


def abstract_loader(entries):
    """A loader of `entries`' abstracts by (digest_id, position), as a build on a release
    is given one, and the list of the keys it is asked for."""
    asked = []

    def load(keys):
        asked.append(keys)
        return entries.join(keys, on=["digest_id", "position"], how="semi").select(
            "digest_id", "position", "abstract"
        )

    return load, asked


def set_mtime(path: Path, when: dt.datetime) -> Path:
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def write_digest(
    folder: Path,
    name: str,
    date_label: str | None,
    entries: Sequence[tuple[str, str]],
    landed: dt.datetime = dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    **options,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(digest_text(date_label, entries, **options), encoding="utf-8")
    return set_mtime(path, landed)


def two_overlapping_landings(root: Path, month: str = "Mar") -> list[Path]:
    """Folders a and b, five digests each on different dates, each digest holding its own
    paper and one paper both share: 11 papers, 20 appearances in all."""
    folders = []
    for which in ("a", "b"):
        folder = root / f"landing-{which}"
        for day in range(1, 6):
            day_of_month = day if which == "a" else day + 10
            write_digest(
                folder,
                f"{which}{day}.txt",
                f"{month} {day_of_month}",
                [
                    (f"Paper {which}{day}", abstract_for(f"{which} {day}")),
                    ("Shared Paper", abstract_for("shared")),
                ],
            )
        folders.append(folder)
    return folders


def concurrent_ingests(folders: list[Path], env: dict, *args: str) -> None:
    """`papers ingest` of each folder at the same time; both must succeed."""
    bin_dir = Path(sys.executable).parent
    runs = [
        subprocess.Popen(
            [str(bin_dir / "papers"), "ingest", "--landing", str(folder), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in folders
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse"


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    if not SEEDS_DIR.is_dir():
        pytest.skip(f"the real seed digests are not at {SEEDS_DIR} (../shared/seeds)")
    return SEEDS_DIR


@pytest.fixture
def seeded_landing(landing: Path, seeds_dir: Path) -> Path:
    """The five real seeds copied into a landing folder with a fixed landing time."""
    for seed in sorted(seeds_dir.glob("*.txt")):
        set_mtime(Path(shutil.copy(seed, landing)), SEEDS_MTIME)
    return landing
