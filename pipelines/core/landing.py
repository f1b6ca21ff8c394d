"""The landing folder: find digest files and read them safely. Never writes to it."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.parsing import parse_digest, sha256_hex
from pipelines.core.staging import StagedDigest, StagingArea, stage_digests

DIGEST_SUFFIX = ".txt"


class LandingError(Exception):
    """A landed path that cannot be read as a digest; the message says why."""


@dataclass(frozen=True)
class LandedFile:
    key: str  # path relative to the landing folder, with forward slashes
    size: int
    mtime_ns: int


def scan_landing(landing: Path) -> tuple[list[LandedFile], list[str]]:
    """Digest files under `landing` (sorted by key) and messages about what was skipped.

    Hidden files and folders (a leading dot) are skipped: writers use them for files in
    progress."""
    found: list[LandedFile] = []
    skipped: list[str] = []
    root = landing.resolve()
    for path in sorted(landing.rglob(f"*{DIGEST_SUFFIX}")):
        key = path.relative_to(landing).as_posix()
        if any(part.startswith(".") for part in path.relative_to(landing).parts):
            continue
        try:
            resolved = path.resolve()
            if not resolved.is_relative_to(root):
                skipped.append(f"{key}: resolves outside the landing folder; refused")
                continue
            info = resolved.stat()
        except OSError as error:
            skipped.append(f"{key}: cannot be read ({error.strerror}); skipped")
            continue
        if not stat.S_ISREG(info.st_mode):
            skipped.append(f"{key}: not a regular file; skipped")
            continue
        found.append(LandedFile(key, info.st_size, info.st_mtime_ns))
    return found, skipped


def read_landed(landing: Path, key: str) -> tuple[bytes, dt.datetime]:
    """Bytes and landing time (mtime, UTC) of a landed file; LandingError if it is not a
    regular file inside the landing folder."""
    root = landing.resolve()
    path = (landing / key).resolve()
    if not path.is_relative_to(root):
        raise LandingError(f"{key}: resolves outside the landing folder; refused")
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())  # the file opened, not the name's target now
            if not stat.S_ISREG(info.st_mode):
                raise LandingError(f"{key}: not a regular file")
            data = handle.read()
    except FileNotFoundError as error:
        raise LandingError(f"{key}: no longer in the landing folder") from error
    except (PermissionError, IsADirectoryError) as error:
        raise LandingError(f"{key}: cannot be read ({error.strerror})") from error
    # Any other OSError (an I/O error, a stale network mount) may pass: let it propagate.
    return data, dt.datetime.fromtimestamp(info.st_mtime_ns / 1e9, tz=dt.UTC)


@dataclass(frozen=True)
class IngestOutcome:
    key: str
    staged: StagedDigest | None = None
    fresh: bool = False  # parsed now (False: the same bytes were staged before)
    error: Exception | None = None  # LandingError, OSError, or an unexpected failure


def ingest_landed_files(
    landing: Path, keys: list[str], staging: StagingArea, batch_size: int = 200
) -> Iterator[IngestOutcome]:
    """Parse and stage landed files, `batch_size` at a time (memory stays bounded; one
    validation per batch). Failures are reported per file and never stop the others."""
    for start in range(0, len(keys), batch_size):
        outcomes: dict[str, IngestOutcome] = {}
        parsed = []
        for key in keys[start : start + batch_size]:
            try:
                data, landed_at = read_landed(landing, key)
                digest_id = sha256_hex(data)
                if staging.has(digest_id):
                    outcomes[key] = IngestOutcome(key, staging.load(digest_id))
                    continue
                parsed.append(parse_digest(data, key, landed_at))
                outcomes[key] = IngestOutcome(key)
            except Exception as error:  # reported, not raised: one file must not stop a run
                outcomes[key] = IngestOutcome(key, error=error)
        for staged in stage_digests(parsed):
            key = staged.digest["source_path"][0]
            staging.write(staged)
            outcomes[key] = IngestOutcome(key, staged, fresh=True)
        yield from outcomes.values()
