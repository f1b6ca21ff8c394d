"""Housekeeping of a published warehouse: vacuum, compaction, consistency check."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import duckdb

from pipelines.core.catalog import connect
from pipelines.core.publish import (
    compact_release_files,
    latest_release,
    read_release_table,
    refresh_catalog,
    releases,
)
from pipelines.core.validation import SchemaContractError, validate
from pipelines.core.warehouse import WarehousePaths
from schemas.tables import PUBLISHED_TABLES, TABLE_SCHEMAS


@dataclass
class VacuumReport:
    removed: dict[str, int] = field(default_factory=dict)  # table -> files deleted


def vacuum(paths: WarehousePaths, keep_releases: int, min_retention_hours: float) -> VacuumReport:
    """Delete Delta files no retained release needs: files of the last `keep_releases`
    releases are never deleted, nor anything removed less than `min_retention_hours` ago."""
    report = VacuumReport()
    published = releases(paths)
    if published.height == 0:
        return report
    retained = published.tail(keep_releases)
    for name in PUBLISHED_TABLES:
        table = paths.delta(name)
        keep = sorted({int(v) for v in retained[f"{name}_version"]} | {table.version()})
        options = dict(
            retention_hours=int(math.ceil(min_retention_hours)),
            enforce_retention_duration=False,
            keep_versions=keep,
        )
        # The log still lists files deleted by an earlier vacuum: count what is there,
        # and skip the vacuum (and its two log commits) when nothing is.
        present = [
            f
            for f in table.vacuum(dry_run=True, **options)
            if paths.storage.exists(f"tables/{name}/{f}")
        ]
        if present:
            table.vacuum(dry_run=False, **options)
        report.removed[name] = len(present)
    refresh_catalog(paths)  # releases whose files are gone leave the catalog
    return report


def compact_releases(paths: WarehousePaths) -> int:
    """Merge the small files that one appended row per release leaves in `releases`
    (publishing merges them too, past MAX_RELEASE_FILES). The other tables need no
    merging: each release rewrites them whole, or `papers` from the earliest first_seen it
    changes (the recent papers in files of about 2 MiB, so that the next release's cut
    rewrites little). Returns the number of files merged; the catalog is rewritten to the
    new files."""
    merged = compact_release_files(paths)
    if merged:
        refresh_catalog(paths)
    return merged


def check_release(paths: WarehousePaths) -> list[str]:
    """Everything wrong with the latest release, as sentences (empty: consistent).

    Row counts against the releases row, every table against its schema, the
    nothing-lost line accounting, and the catalog's views against the release."""
    current = latest_release(paths)
    if current is None:
        return []
    problems: list[str] = []
    for name in PUBLISHED_TABLES:
        try:
            frame = read_release_table(paths, current, name)
        except Exception as error:  # a missing file or a broken log: report, don't crash
            problems.append(f"{name}: cannot read version {current[f'{name}_version']}: {error}")
            continue
        if frame.height != current[f"{name}_rows"]:
            problems.append(
                f"{name}: {frame.height} rows, release {current['release']} recorded "
                f"{current[f'{name}_rows']}"
            )
        try:
            failed = validate(frame, TABLE_SCHEMAS[name]).n_failed
        except SchemaContractError as error:
            problems.append(f"{name}: {error}")
            continue
        if failed:
            problems.append(f"{name}: {failed} rows fail {TABLE_SCHEMAS[name].__name__}")
    problems += _catalog_problems(paths, current)
    return problems


def _catalog_problems(paths: WarehousePaths, current: dict) -> list[str]:
    if not paths.catalog.exists():
        return [f"catalog {paths.catalog} is missing: run `papers ingest` to rebuild it"]
    try:
        con = connect(paths, read_only=True)
    except duckdb.Error as error:
        return [f"catalog cannot be opened: {error}"]
    problems = []
    try:
        release = con.execute("SELECT release FROM catalog_info").fetchone()[0]
        if release != current["release"]:
            problems.append(f"catalog shows release {release}, latest is {current['release']}")
        for name in PUBLISHED_TABLES:
            n = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # noqa: S608
            if n != current[f"{name}_rows"]:
                problems.append(
                    f"catalog view {name}: {n} rows, expected {current[f'{name}_rows']}"
                )
    except duckdb.Error as error:
        problems.append(f"catalog query failed: {str(error).splitlines()[0]}")
    finally:
        con.close()
    return problems
