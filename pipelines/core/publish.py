"""Publish a release: Delta table versions, a releases row, then the catalog.

Order matters for crash safety. Table writes are atomic Delta commits that readers do not
see yet; the releases row is the commit point; the catalog swap is an atomic rename. A
crash anywhere leaves the previous release readable, and the next run redoes the work.
"""

from __future__ import annotations

import array
import datetime as dt
import hashlib
from collections.abc import Callable

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from pipelines.core.build import Previous
from pipelines.core.card import write_card
from pipelines.core.catalog import write_catalog
from pipelines.core.diff import count_changes, diff_papers
from pipelines.core.faults import fault_point
from pipelines.core.parsing import PARSER_VERSION
from pipelines.core.warehouse import WarehousePaths, local_files, publish_lock
from schemas.tables import PUBLISHED_TABLES, TABLE_KEYS, PaperSchema, ReleaseSchema, empty_frame

# Deletion vectors and column mapping stay off so stock DuckDB can read the Parquet files.
_DELTA_WRITE_OPTIONS = {"schema_mode": "overwrite"}


def row_hashes(frame: pl.DataFrame) -> pl.Series:
    """A 64-bit hash per row (stable for a given Polars version)."""
    if frame.height == 0:
        return pl.Series("hash", [], dtype=pl.UInt64)
    return frame.hash_rows(seed=0)


def table_hash(frame: pl.DataFrame, key: list[str]) -> str:
    """Content hash of a table: its schema and its rows in key order."""
    ordered = frame.sort(key) if frame.height else frame
    digest = hashlib.sha256(repr(list(frame.schema.items())).encode())
    digest.update(array.array("Q", row_hashes(ordered).to_list()).tobytes())
    return digest.hexdigest()


def read_table(paths: WarehousePaths, name: str, version: int | None = None) -> pl.DataFrame:
    """A Delta table at a version, read from the same Parquet files the catalog's views
    read. Not pl.read_delta (it cannot find files under a path with a space) and not
    DeltaTable.to_pyarrow_table (its threads abort the process at exit: SIGABRT)."""
    table = DeltaTable(str(paths.table(name)), version=version)
    files = local_files(table.file_uris())
    if files:
        return pl.read_parquet(files)
    return pl.from_arrow(pa.schema(table.schema().to_arrow()).empty_table())


def releases(paths: WarehousePaths) -> pl.DataFrame:
    """Every published release, oldest first (empty when nothing is published)."""
    if not DeltaTable.is_deltatable(str(paths.table("releases"))):
        return empty_frame(ReleaseSchema)
    return read_table(paths, "releases").sort("release")


def latest_release(paths: WarehousePaths) -> dict | None:
    published = releases(paths)
    return published.row(-1, named=True) if published.height else None


def get_release(paths: WarehousePaths, number: int) -> dict | None:
    published = releases(paths).filter(pl.col("release") == number)
    return published.row(0, named=True) if published.height else None


def read_release_table(paths: WarehousePaths, release: dict, name: str) -> pl.DataFrame:
    return read_table(paths, name, version=release[f"{name}_version"])


def previous_build(paths: WarehousePaths, release: dict | None = None) -> Previous:
    """What a new build starts from: the appearances and papers of `release` (default: the
    latest). Nothing when there is no release or its files are damaged (a repair is then a
    fresh build: ids are derived from content)."""
    release = release or latest_release(paths)
    if release is None:
        return Previous.nothing()
    try:
        return Previous(
            read_release_table(paths, release, "appearances"),
            read_release_table(paths, release, "papers"),
        )
    except Exception:
        return Previous.nothing()


def refresh_catalog(paths: WarehousePaths) -> list[int]:
    """Rewrite the catalog for the published releases; returns the time-travel releases."""
    published = releases(paths)
    return write_catalog(paths, published.rows(named=True)) if published.height else []


def publish_release(
    paths: WarehousePaths,
    tables: dict[str, pl.DataFrame],
    now: dt.datetime | None = None,
    rebuild_if_stale: Callable[[dict[str, pl.DataFrame]], dict[str, pl.DataFrame]] | None = None,
    force: bool = False,
) -> dict | None:
    """Publish `tables` as the next release, or return None when nothing changed.

    `rebuild_if_stale` runs under the lock: a concurrent run may have staged digests (or
    published papers) since `tables` were built, and a release must never leave them out.
    `force` publishes and rewrites every table even when nothing changed (a repair)."""
    with publish_lock(paths):
        if rebuild_if_stale is not None:
            tables = rebuild_if_stale(tables)
        previous = latest_release(paths)
        hashes = {name: table_hash(tables[name], TABLE_KEYS[name]) for name in PUBLISHED_TABLES}
        unchanged = {n for n in PUBLISHED_TABLES if previous and previous[f"{n}_hash"] == hashes[n]}
        if not force and unchanged == set(PUBLISHED_TABLES):
            return None
        number = (previous["release"] + 1) if previous else 1
        row: dict = {
            "release": number,
            "created_at": now or dt.datetime.now(dt.UTC),
            "parser_version": PARSER_VERSION,
            "content_hash": hashlib.sha256("".join(hashes.values()).encode()).hexdigest(),
        }
        fault_point("before_tables")
        for name in PUBLISHED_TABLES:
            frame = tables[name]
            if name in unchanged and not force:
                version = previous[f"{name}_version"]  # unchanged: no new Delta version
            else:
                version = _write(paths, name, frame, mode="overwrite")
                fault_point(f"table_written:{name}")
            row[f"{name}_version"] = version
            row[f"{name}_rows"] = frame.height
            row[f"{name}_hash"] = hashes[name]
        previous_papers = readable_papers(paths, previous)
        changes = diff_papers(previous_papers, tables["papers"])
        row.update(count_changes(changes))
        # Replace this release's rows (a crashed earlier attempt may have left some).
        row["paper_changes_version"] = _write(
            paths,
            "paper_changes",
            changes.select(pl.lit(number, pl.Int64).alias("release"), pl.all()),
            mode="overwrite",
            predicate=f"release = {number}"
            if DeltaTable.is_deltatable(str(paths.table("paper_changes")))
            else None,
        )
        release = pl.DataFrame([row], schema=empty_frame(ReleaseSchema).schema)
        ReleaseSchema.validate(release)
        fault_point("before_release_row")
        _write(paths, "releases", release, mode="append")  # the commit point
        fault_point("release_row_written")
        write_card(paths, row, tables["digests"], changes)
        refresh_catalog(paths)
        return row


def readable_papers(paths: WarehousePaths, release: dict | None) -> pl.DataFrame:
    """Papers of `release`, or none when there is no release or its files are damaged (a
    repair is publishing: ids are derived from content, and the diff is against nothing)."""
    if release is None:
        return empty_frame(PaperSchema)
    try:
        return read_release_table(paths, release, "papers")
    except Exception:
        return empty_frame(PaperSchema)


def _write(
    paths: WarehousePaths, name: str, frame: pl.DataFrame, mode: str, predicate: str | None = None
) -> int:
    """Commit `frame` to a Delta table; returns the new version."""
    if predicate:
        options = {"predicate": predicate}  # replaces only the rows it matches
    elif mode == "overwrite":
        options = _DELTA_WRITE_OPTIONS
    else:  # a release row may carry columns that older rows lack (a new table)
        options = {"schema_mode": "merge"}
    frame.write_delta(str(paths.table(name)), mode=mode, delta_write_options=options)
    return DeltaTable(str(paths.table(name))).version()
