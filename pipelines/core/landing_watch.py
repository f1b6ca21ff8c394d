"""Decide, tick by tick, which landed files are new or changed and ready to ingest.

Pure logic behind the landing sensor. State (the sensor cursor) remembers, per file,
the size and mtime seen on the last tick and the sha256 of the content last requested.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.core.landing import LandedFile


@dataclass
class TickPlan:
    requests: list[tuple[str, str]] = field(default_factory=list)  # (key, sha256) to ingest
    changed: list[str] = field(default_factory=list)  # keys among requests already known
    waiting: list[str] = field(default_factory=list)  # still being written
    deferred: int = 0  # ready, but over this tick's cap: next tick
    deleted: list[str] = field(default_factory=list)  # gone since the last tick
    state: dict = field(default_factory=dict)  # the next cursor


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def plan_tick(
    landing: Path,
    files: list[LandedFile],
    state: dict,
    now_ns: int,
    max_files: int,
    settle_seconds: float,
) -> TickPlan:
    """A file is ready once its size and mtime are unchanged since the previous tick, or
    its mtime is at least `settle_seconds` old. A ready file is requested when its content
    hash differs from the last one requested for that path (a touch changes nothing)."""
    seen: dict[str, list[int]] = state.get("seen", {})
    done: dict[str, list] = state.get("done", {})  # key -> [sha, size, mtime_ns]
    plan = TickPlan()
    next_seen, next_done = {}, dict(done)
    for landed in files:
        stat = [landed.size, landed.mtime_ns]
        next_seen[landed.key] = stat
        previous = done.get(landed.key)
        if previous and previous[1:] == stat:
            continue  # hashed before at this size and mtime: unchanged
        settled = now_ns - landed.mtime_ns >= settle_seconds * 1e9
        if seen.get(landed.key) != stat and not settled:
            plan.waiting.append(landed.key)
            continue
        if len(plan.requests) >= max_files:
            plan.deferred += 1
            continue
        try:
            sha = file_sha256(landing / landed.key)
        except OSError:
            plan.waiting.append(landed.key)  # vanished or unreadable right now: retry later
            continue
        next_done[landed.key] = [sha, *stat]
        if previous and previous[0] == sha:
            continue  # touched, same bytes
        plan.requests.append((landed.key, sha))
        if previous:
            plan.changed.append(landed.key)
    present = {f.key for f in files}
    plan.deleted = sorted(k for k in done if k not in present)
    for key in plan.deleted:
        next_done.pop(key)
    plan.state = {"seen": next_seen, "done": next_done}
    return plan
