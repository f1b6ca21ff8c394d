"""Check a warehouse and say what is wrong and how to repair it."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.core.build import build_from_staging
from pipelines.core.catalog import ReleaseSources, catalog_info
from pipelines.core.maintenance import check_release
from pipelines.core.publish import (
    latest_release,
    previous_build,
    publish_release,
    read_release_table,
    refresh_catalog,
    releases,
)
from pipelines.core.warehouse import WarehousePaths
from schemas.tables import ALL_TABLES, PUBLISHED_TABLES


@dataclass(frozen=True)
class Finding:
    problem: str
    fix: str


def diagnose(paths: WarehousePaths) -> list[Finding]:
    """Delta logs readable, the latest release's files present and passing their schemas,
    the catalog matching the latest release."""
    findings = []
    for name in ALL_TABLES:
        if not paths.storage.exists(f"tables/{name}"):
            continue
        try:
            table = paths.delta(name)
            missing = [f for f in paths.data_files(table) if not paths.storage.uri_exists(f)]
        except Exception as error:
            findings.append(
                Finding(
                    f"{name}: Delta log unreadable ({_first_line(error)})",
                    f"restore tables/{name}/_delta_log from a backup",
                )
            )
            continue
        if missing:
            findings.append(
                Finding(
                    f"{name}: {len(missing)} data file(s) of the current version are missing",
                    "`papers doctor --repair` republishes the tables from staged digests",
                )
            )
    if latest_release(paths) is None:
        return findings
    sources = ReleaseSources(paths)
    offered = set((catalog_info(paths.catalog) or {}).get("time_travel_releases") or [])
    for release in releases(paths).rows(named=True):
        if release["release"] in offered and not sources.complete(release):
            findings.append(
                Finding(
                    f"release {release['release']}: some of its files are gone; it can no "
                    "longer be queried",
                    "`papers doctor --repair` drops it from the catalog's time travel",
                )
            )
    for problem in check_release(paths):
        fix = (
            "`papers doctor --repair` rewrites the catalog"
            if "catalog" in problem
            else "`papers doctor --repair` republishes the tables from staged digests"
        )
        findings.append(Finding(problem, fix))
    return findings


def repair(paths: WarehousePaths) -> list[str]:
    """Republish from staging when the latest release cannot be read whole, then rewrite
    the catalog. Returns what was done."""
    done = []
    current = latest_release(paths)
    if current is not None and not _readable(paths, current):
        staging = paths.staging
        tables = build_from_staging(staging, previous_build(paths, current))
        published = publish_release(paths, tables, force=True)
        done.append(
            f"republished the tables from {len(staging.digest_ids())} staged digests "
            f"as release {published['release']}"
        )
    if latest_release(paths) is not None:
        kept = refresh_catalog(paths)
        done.append(f"rewrote the catalog (time travel: releases {kept})")
    return done


def _readable(paths: WarehousePaths, release: dict) -> bool:
    try:
        for name in PUBLISHED_TABLES:
            read_release_table(paths, release, name)
    except Exception:
        return False
    return True


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]
