"""Publish a release: Delta table versions, a releases row, then the changelog and catalog.

Order matters for crash safety. Table writes are atomic Delta commits that readers do not
see yet; the releases row is the commit point; the catalog swap is an atomic rename. A
crash anywhere leaves the previous release readable, and the next run redoes the work.

Concurrent publishers need no lock, on a local disk or on S3 alike: the releases row is
appended to the snapshot of `releases` the publisher started from, with no commit retries.
Delta commits are conditional puts (a log entry is created only if its version does not
exist yet), so when another run published meanwhile the commit fails, and the publisher
starts over from the new latest release. Release numbers stay gapless and in order.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError

from pipelines.core.build import ABSTRACT_COLUMNS, Previous, PublishedPapers, papers_whole
from pipelines.core.card import write_card
from pipelines.core.catalog import extend_catalog, open_database_early
from pipelines.core.diff import DIFF_COLUMNS, count_changes, diff_papers
from pipelines.core.faults import fault_point
from pipelines.core.frames import height_of
from pipelines.core.hashing import table_hash
from pipelines.core.parsing import PARSER_VERSION
from pipelines.core.validation import validate
from pipelines.core.warehouse import WarehousePaths
from schemas.tables import (
    ALL_TABLES,
    PUBLISHED_TABLES,
    TABLE_KEYS,
    PaperChangeSchema,
    PaperSchema,
    RelatedPaperSchema,
    ReleaseSchema,
    empty_frame,
)

# Deletion vectors and column mapping stay off so stock DuckDB can read the Parquet files.
_DELTA_WRITE_OPTIONS = {"schema_mode": "overwrite"}
# Each table's log is checkpointed every 10 commits, so that loading a version replays 10
# commits at most, not up to 100 (Delta's default): a warehouse of 60 day-by-day releases
# spent 0.3-0.5 s of each ingest replaying logs. And its log is kept: the releases kept
# for time travel are bounded by the files kept (keep_releases), not by the log's age.
TABLE_PROPERTIES = {"delta.checkpointInterval": "10", "delta.enableExpiredLogCleanup": "false"}
# `releases` gets a small file per release; past this many they are merged on publishing
# (every release reads the table several times: 60 files cost 0.2-0.3 s an ingest).
MAX_RELEASE_FILES = 20
# Publishers that lose the race to another one start over; this many times at most.
MAX_PUBLISH_ATTEMPTS = 20
T = TypeVar("T")


class PublishConflict(RuntimeError):
    """Other runs kept publishing first, MAX_PUBLISH_ATTEMPTS times in a row."""


def read_table(
    paths: WarehousePaths, name: str, version: int | None = None, columns: list[str] | None = None
) -> pl.DataFrame:
    """A Delta table at a version, read from the same Parquet files the catalog's views
    read. Not pl.read_delta (it cannot find files under a path with a space) and not
    DeltaTable.to_pyarrow_table (its threads abort the process at exit: SIGABRT)."""
    table = paths.delta(name, version)
    files = paths.data_files(table)
    if files:
        return paths.read_files(files, columns)
    empty = pl.DataFrame(schema=_schema(table))
    return empty.select(columns) if columns else empty


def releases(paths: WarehousePaths, version: int | None = None) -> pl.DataFrame:
    """Every published release, oldest first (empty when nothing is published), as of a
    version of the releases table (default: the latest)."""
    if not paths.is_table("releases"):
        return empty_frame(ReleaseSchema)
    return read_table(paths, "releases", version).sort("release")


def latest_release(paths: WarehousePaths) -> dict | None:
    published = releases(paths)
    return published.row(-1, named=True) if published.height else None


def get_release(paths: WarehousePaths, number: int) -> dict | None:
    published = releases(paths).filter(pl.col("release") == number)
    return published.row(0, named=True) if published.height else None


def read_release_table(paths: WarehousePaths, release: dict, name: str) -> pl.DataFrame:
    return read_table(paths, name, version=release[f"{name}_version"])


# Past this many papers, the published papers are read once matching is done rather than
# while it runs: side by side, the 541,222 papers of 10,000 digests (1.0 GB read) were
# held beside matching's working set (adding a digest peaked at 2,455 MiB then, at
# 2,333-2,347 MiB once they were read after it). Measured when they were read whole: they
# are now read without their abstracts (see PublishedPapers), and the limit was not
# measured again.
PAPERS_READ_ALONGSIDE_MAX = 200_000


# Builds of this process whose previous release is being read ahead (see read_ahead), by
# warehouse: (that release, the Previous being read).
_READ_AHEAD: dict[str, tuple[dict, Future[Previous]]] = {}
_READ_AHEAD_LOCK = threading.Lock()


def read_ahead(paths: WarehousePaths, release: dict) -> None:
    """Start reading, on a thread of its own, what the next build of this process on
    `release` starts from: previous_build then takes it, if `release` is still the latest.
    A run that parses what landed before it builds reads meanwhile: adding a digest to
    1,000, its Dagster run took 0.15-0.2 s to reach the build."""
    reading = _started(previous_build, paths, release)
    with _READ_AHEAD_LOCK:
        _READ_AHEAD[paths.root] = (release, reading)


def _started(work: Callable[..., T], *args) -> Future[T]:
    """`work(*args)` begun on a thread of its own, which ends with it."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(work, *args)
    pool.shutdown(wait=False)
    return future


def previous_build(paths: WarehousePaths, release: dict | None = None) -> Previous:
    """What a new build starts from: the appearances, papers and related papers of
    `release` (default: the latest), what its related papers were computed from, and the
    kept sentence hashes of the papers' abstracts (read ahead, if it was: see read_ahead).
    Nothing when there is no release or its files are damaged (a repair is then a fresh
    build: ids are derived from content)."""
    release = release or latest_release(paths)
    if release is None:
        return Previous.nothing()
    with _READ_AHEAD_LOCK:
        ahead = _READ_AHEAD.pop(paths.root, None)
    if ahead is not None and ahead[0] == release:
        return ahead[1].result()

    def related_and_state() -> tuple[pl.DataFrame, tuple[str, ...], tuple | None]:
        pieces = paths.staging.count_pieces(release["related_papers_hash"])
        try:
            related = read_release_table(paths, release, "related_papers")
            state = paths.staging.weighed_related_state(release["related_papers_hash"], pieces)
        except Exception:  # then related papers are recomputed
            return empty_frame(RelatedPaperSchema), pieces, None
        return related, pieces, state

    # The reads are independent and spend their time in Rust, outside the GIL. The first
    # in a process at 1,000 digests: 0.24-0.27 s side by side, 0.29-0.31 s one by one.
    # Matching needs only the appearances and sentence hashes: the rest is read meanwhile
    # (the papers too, up to PAPERS_READ_ALONGSIDE_MAX of them).
    pool = ThreadPoolExecutor(3)
    alongside = release["papers_rows"] <= PAPERS_READ_ALONGSIDE_MAX
    reading_papers = pool.submit(_papers_by_reference, paths, release) if alongside else None
    reading_related = pool.submit(related_and_state)
    reading_sentences = pool.submit(paths.staging.sentences)
    pool.shutdown(wait=False)  # its threads end with these reads
    try:
        appearances = read_release_table(paths, release, "appearances")
    except Exception:
        wait([f for f in (reading_papers, reading_related, reading_sentences) if f is not None])
        return Previous.nothing()

    def still_reading() -> dict:
        try:
            published = (
                reading_papers.result()
                if reading_papers is not None
                else _papers_by_reference(paths, release)
            )
        except Exception:  # unreadable: every paper is made again from its entries
            published = None
        related, pieces, state = reading_related.result()
        vocabulary, counts = (None, None) if state is None else state
        return {
            "papers": empty_frame(PaperSchema) if published is None else None,
            "published_papers": published,
            "related": related,
            "vocabulary": vocabulary,
            "word_counts": counts,  # counted with that vocabulary's word hashes
            "word_count_pieces": pieces if vocabulary is not None else (),
        }

    return Previous(
        appearances,
        None,
        sentences=reading_sentences.result(),
        release=release["release"],
        parser_version=release["parser_version"],
        still_reading=functools.cache(still_reading),
    )


# Up to this many papers, they are written side by side with the other tables.
PAPERS_WRITTEN_ALONGSIDE_MAX = 200_000


def _papers_by_reference(paths: WarehousePaths, release: dict) -> PublishedPapers:
    """The papers of `release` by reference: every row read but for its abstracts, the
    rows whole to be read from the release's files, and the row hashes kept with them."""
    table = paths.delta("papers", release["papers_version"])
    files = paths.data_files(table)
    schema = _schema(table)
    light = [c for c in schema if c not in ABSTRACT_COLUMNS]
    if not files:  # no rows: the table's schema alone
        empty = pl.DataFrame(schema=schema)
        return PublishedPapers(
            empty.select(light), empty.lazy(), pl.Series("_file", [], pl.String), paths.scan_files
        )
    read = paths.read_files(files, light, file_column="_file")
    return PublishedPapers(
        read.drop("_file"),
        paths.scan_files(files),
        read["_file"],
        paths.scan_files,
        paths.staging.paper_row_hashes(release["papers_hash"]),
    )


def refresh_catalog(paths: WarehousePaths) -> list[int]:
    """Rewrite the catalog for the published releases (from the one it shows when that is
    the release before the latest, see extend_catalog); returns the time-travel releases."""
    published = releases(paths)
    return extend_catalog(paths, published.rows(named=True)) if published.height else []


def _tuned(table: DeltaTable) -> bool:
    configuration = table.metadata().configuration
    return all(configuration.get(key) == value for key, value in TABLE_PROPERTIES.items())


def tune_tables(paths: WarehousePaths) -> list[str]:
    """Set TABLE_PROPERTIES on the tables made without them (one metadata commit each);
    returns their names. A run that loses the race to another one doing the same leaves
    it to that one."""
    tuned = []
    for name in ALL_TABLES:
        if not paths.is_table(name):
            continue
        table = paths.delta(name)
        if _tuned(table):
            continue
        try:
            table.alter.set_table_properties(TABLE_PROPERTIES)
        except DeltaError:  # another run committed meanwhile
            continue
        tuned.append(name)
    return tuned


def compact_release_files(paths: WarehousePaths, max_files: int = 1) -> int:
    """Merge the small files of `releases` once there are more than `max_files`; returns
    the number merged. The catalog must be refreshed after (its views name the files)."""
    if not paths.is_table("releases"):
        return 0
    table = paths.delta("releases")
    if len(table.file_uris()) <= max_files:
        return 0
    try:  # a Delta commit: a publisher that started before it starts over on top of it
        metrics = table.optimize.compact()
    except DeltaError:  # another run committed meanwhile: the next release merges them
        return 0
    return int(metrics.get("numFilesRemoved", 0))


def publish_release(
    paths: WarehousePaths,
    tables: dict[str, pl.DataFrame],
    now: dt.datetime | None = None,
    rebuild_if_stale: Callable[[dict[str, pl.DataFrame]], dict[str, pl.DataFrame]] | None = None,
    force: bool = False,
) -> dict | None:
    """Publish `tables` as the next release, or return None when nothing changed.

    `rebuild_if_stale` runs at the start of each attempt: a concurrent run may have staged
    digests since `tables` were built, and a release must never leave them out. `force`
    publishes and rewrites every table even when nothing changed (a repair)."""
    open_database_early(paths)  # for the catalog, refreshed once the tables are written
    # A run killed after its commit left its changelog unwritten: completed while this
    # release's tables are written (adding a digest to 1,000, 0.03 s), and before its row
    # records the changelog's version or its own rows are written.
    completing = _started(complete_changelog, paths)
    try:
        for _ in range(MAX_PUBLISH_ATTEMPTS):
            # The snapshot comes first: a release committed after it makes this attempt's
            # commit fail, so whatever it staged is seen by the next attempt's check.
            snapshot = paths.delta("releases") if paths.is_table("releases") else None
            if snapshot is not None and not _tuned(snapshot):
                completing.result()  # its commits and these would make each other fail
                if tune_tables(paths):
                    continue  # tables made before TABLE_PROPERTIES: set once, on a new snapshot
            if rebuild_if_stale is not None:
                tables = rebuild_if_stale(tables)
            try:
                committed = _attempt(paths, tables, snapshot, now, force, completing)
            except DeltaError as error:
                if isinstance(error, CommitFailedError) or (
                    snapshot is None and paths.is_table("releases")
                ):
                    continue  # another run committed first: start over from its release
                raise
            if committed is None:
                completing.result()
                return None
            row, changes = committed
            fault_point("release_row_written")
            # What builds keep for the next release: the latest only.
            paths.staging.keep_related_state(row["related_papers_hash"])
            paths.staging.keep_paper_changes(row["release"])
            paths.staging.keep_paper_row_hashes(row["papers_hash"])
            _record_changes(paths, row["release"], changes)
            write_card(paths, row, tables["digests"], changes)
            compact_release_files(paths, MAX_RELEASE_FILES)
            refresh_catalog(paths)
            return row
        raise PublishConflict(
            f"other runs published first {MAX_PUBLISH_ATTEMPTS} times in a row; run again"
        )
    finally:
        wait([completing])  # no thread outlives the call


def _attempt(
    paths: WarehousePaths,
    tables: dict[str, pl.DataFrame],
    snapshot: DeltaTable | None,
    now: dt.datetime | None,
    force: bool,
    completing: Future[None] | None = None,
) -> tuple[dict, pl.DataFrame] | None:
    """Write the tables and commit the release row on top of `snapshot`; returns the row
    and the release's changes to papers (None when nothing changed). Raises a DeltaError
    when another run committed first. `completing`: the changelog being completed, waited
    for before the row records its version."""
    published = releases(paths, snapshot.version()) if snapshot else empty_frame(ReleaseSchema)
    previous = published.row(-1, named=True) if published.height else None
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
    staging = paths.staging
    changes = staging.paper_changes(previous["release"], hashes["papers"]) if previous else None
    if changes is None or "first_seen" not in changes.columns:
        # Not diffed by the build (or not against this release, or by an older version).
        changes = diff_papers(
            readable_papers(paths, previous), papers_whole(tables["papers"]), with_first_seen=True
        )
    fault_point("before_tables")

    def write(name: str) -> int:
        if name == "papers":
            version = _write_papers(paths, tables[name], None if force else previous, changes)
        else:
            version = _overwrite(paths, name, tables[name])
        fault_point(f"table_written:{name}")
        return version

    # The tables are written side by side (delta-rs writes outside the GIL); many papers
    # after the others: beside the appearances, writing them held both tables' working
    # sets (at 10,000 digests, 120 and 170 MB). Adding a digest to 1,000, the papers
    # written after the others took 0.07 s more. None is published before the release
    # row commits, whatever order they finish in.
    written = [n for n in PUBLISHED_TABLES if force or n not in unchanged]
    n_rows = {name: height_of(tables[name]) for name in PUBLISHED_TABLES}
    papers_after = "papers" in written and n_rows["papers"] > PAPERS_WRITTEN_ALONGSIDE_MAX
    alongside = [n for n in written if n != "papers" or not papers_after]
    with ThreadPoolExecutor(len(alongside) or 1) as pool:
        versions = dict(zip(alongside, pool.map(write, alongside), strict=True))
    if papers_after:
        versions["papers"] = write("papers")
    for name in PUBLISHED_TABLES:
        # An unchanged table keeps the version the previous release recorded.
        row[f"{name}_version"] = versions[name] if name in versions else previous[f"{name}_version"]
        row[f"{name}_rows"] = n_rows[name]
        row[f"{name}_hash"] = hashes[name]
    row.update(count_changes(changes))
    if completing is not None:
        completing.result()  # raises what completing the changelog raised
    row["paper_changes_version"] = (
        paths.delta("paper_changes").version() if paths.is_table("paper_changes") else 0
    )
    release = pl.DataFrame([row], schema=empty_frame(ReleaseSchema).schema)
    if (checked := validate(release, ReleaseSchema)).n_failed:  # a bug, not bad input
        raise ValueError(f"the release row failed {checked.failures['checks'][0]}")
    fault_point("before_release_row")
    # The commit point: on top of the snapshot, or fail if another run got there first
    # (with no snapshot: create the table, or fail if another run created it meanwhile).
    release.write_delta(
        snapshot if snapshot is not None else paths.table("releases"),
        mode="append" if snapshot is not None else "error",
        storage_options=None if snapshot is not None else paths.storage_options,
        delta_write_options={
            "schema_mode": "merge",  # a release row may carry columns older rows lack
            "commit_properties": CommitProperties(max_commit_retries=0),
            **({} if snapshot is not None else {"configuration": TABLE_PROPERTIES}),
        },
    )
    return row, changes


def complete_changelog(paths: WarehousePaths) -> None:
    """Write the paper_changes rows of every release that changed papers and has none.

    A release's rows are written after it commits, so a publisher that loses the race
    never writes any; a run killed in between leaves them to the next run. The rows are
    the diff of two fixed releases and replace only their own release's rows, so two runs
    completing the same release write the same rows once."""
    if not paths.is_table("paper_changes"):  # its views need its columns, even with no rows
        _write(paths, "paper_changes", empty_frame(PaperChangeSchema), mode="append")
    published = releases(paths)
    counts = pl.sum_horizontal(f"papers_{c}" for c in ("added", "updated", "removed"))
    changed = published.filter(counts > 0)["release"].to_list()
    present = set(read_table(paths, "paper_changes", columns=["release"])["release"])
    for number in sorted(set(changed) - present):
        release = published.filter(pl.col("release") == number).row(0, named=True)
        before = published.filter(pl.col("release") == number - 1)
        try:
            after = read_release_table(paths, release, "papers")
        except (OSError, DeltaError):
            continue  # its files were vacuumed: nothing to diff any more
        changes = diff_papers(
            readable_papers(paths, before.row(0, named=True) if before.height else None), after
        )
        _record_changes(paths, number, changes)


def _record_changes(paths: WarehousePaths, number: int, changes: pl.DataFrame) -> None:
    """Replace release `number`'s rows of paper_changes with `changes`."""
    try:
        _write(
            paths,
            "paper_changes",
            changes.select(pl.lit(number, pl.Int64).alias("release"), *DIFF_COLUMNS),
            mode="overwrite",
            predicate=f"release = {int(number)}",
        )
    except CommitFailedError:
        pass  # another run wrote these very rows meanwhile (the diff of two fixed releases)


def changes_of(paths: WarehousePaths, number: int) -> pl.DataFrame:
    """The changelog rows of one release (from the latest version of paper_changes)."""
    changes = read_table(paths, "paper_changes")
    return changes.filter(pl.col("release") == number).drop("release")


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
    paths: WarehousePaths,
    name: str,
    frame: pl.DataFrame,
    mode: str,
    predicate: str | None = None,
) -> None:
    """Append `frame` to a Delta table, or with a predicate replace the rows it matches."""
    # Appended rows may carry columns that older rows lack.
    options: dict = {"predicate": predicate} if predicate else {"schema_mode": "merge"}
    if not paths.is_table(name):
        options["configuration"] = TABLE_PROPERTIES
    frame.write_delta(
        paths.table(name),
        mode=mode,
        storage_options=paths.storage_options,
        delta_write_options=options,
    )


def _overwrite(paths: WarehousePaths, name: str, frame: pl.DataFrame, **options) -> int:
    """Replace a Delta table's rows with `frame`, or create it; returns the version made.

    On top of the version read, with no retry: if another run wrote (or created) the
    table meanwhile, CommitFailedError, and publishing starts over. Retried, an overwrite
    that lost the race to create the table was committed on top of the winner's version,
    keeping that run's rows beside its own."""
    options["commit_properties"] = CommitProperties(max_commit_retries=0)
    if paths.is_table(name):
        table = paths.delta(name)
        read = table.version()  # before: writing through it loads the versions after
        frame.write_delta(
            table, mode="overwrite", delta_write_options={**options, **_DELTA_WRITE_OPTIONS}
        )
        return read + 1
    try:
        frame.write_delta(
            paths.table(name),
            mode="error",  # created by this run, or not at all
            storage_options=paths.storage_options,
            delta_write_options={**options, "configuration": TABLE_PROPERTIES},
        )
    except DeltaError as error:
        if isinstance(error, CommitFailedError) or not paths.is_table(name):
            raise
        raise CommitFailedError(f"{name} was created by another run meanwhile") from error
    return 0


# Papers are written in first_seen order: a release that changes only recent papers (a
# day's digest) rewrites them from the cut, and the other rows of the files holding the
# cut are read and written again. A whole table is written in files of about 8 MiB, which
# DuckDB scans faster (at 10,000 digests a full-text filter took 0.81 s over 59 files,
# 0.98 s over 265 files of 2 MiB); the rows from a cut in files of 2 MiB, so the next
# day's cut falls in a small file. Adding a digest to 1,000, then another, the second wrote
# its papers in 0.07-0.09 s: 0.14-0.15 s with files of 8 MiB throughout, 0.05-0.07 s with
# 2 MiB throughout.
_PAPER_FILE_BYTES = 8 * 2**20
_RECENT_PAPER_FILE_BYTES = 2 * 2**20
# A whole table is written with its papers of the latest days in the small files too: the
# first day added after a rebuild then cuts in one of them, not in an 8 MiB file. Adding
# a digest to 1,000 just built, its papers were written in 0.22-0.35 s rewriting the last
# 8 MiB file for 402 rows.
_RECENT_DAYS = 30


def _write_papers(
    paths: WarehousePaths,
    papers: pl.DataFrame | pl.LazyFrame,
    previous: dict | None,
    changes: pl.DataFrame,
) -> int:
    """Commit the papers table; returns the new version. Only the papers first seen on or
    after the earliest first_seen of a paper added, updated or removed since `previous`
    are replaced, when the table still holds `previous`'s papers; else the whole table.
    Papers kept by reference are read from their files only for the rows written."""
    since = _changed_since(paths, papers, previous, changes)
    if since is None:
        return _write_whole_papers(paths, papers_whole(papers))
    table, cut = since
    read = table.version()
    recent = papers_whole(papers.filter(pl.col("first_seen") >= cut))
    # On top of the version read, with no retries: if another run wrote the table
    # meanwhile, the commit fails and publishing starts over.
    recent.sort("first_seen", "paper_id").write_delta(
        table,
        mode="overwrite",
        delta_write_options={
            "predicate": f"first_seen >= '{cut.isoformat()}'",
            "target_file_size": _RECENT_PAPER_FILE_BYTES,
            "commit_properties": CommitProperties(max_commit_retries=0),
        },
    )
    return read + 1


# A whole table is written in pieces of at most this many papers, each its own commit: only
# one piece is gathered in first_seen order at a time. Sorted whole, the papers of 10,000
# digests held a second copy of their lists (215 MB) while they were written; in pieces of
# 200,000, 104-155 MB. Pieces of 100,000 wrote them at a peak of 2,021 MB in all, of 50,000
# at 1,927 MB (the build's peak then lies in its related papers).
_PAPERS_PER_COMMIT = 50_000


def _write_whole_papers(paths: WarehousePaths, papers: pl.DataFrame) -> int:
    """Replace the papers table with `papers`, written in first_seen order; returns the
    version made. The papers older than the latest _RECENT_DAYS in files of
    _PAPER_FILE_BYTES, in pieces of _PAPERS_PER_COMMIT, then the recent ones appended in
    small files: a commit each. Only the last version is recorded by a release."""
    if papers.height == 0:
        return _overwrite(paths, "papers", papers, target_file_size=_PAPER_FILE_BYTES)
    order = papers.select(pl.arg_sort_by("first_seen", "paper_id")).to_series()
    since = papers["first_seen"].max() - dt.timedelta(days=_RECENT_DAYS)
    cut = papers.select((pl.col("first_seen") < since).sum()).item()  # where `order` reaches since
    pieces = [
        (order.slice(start, min(_PAPERS_PER_COMMIT, cut - start)), _PAPER_FILE_BYTES)
        for start in range(0, cut, _PAPERS_PER_COMMIT)
    ]
    if cut < order.len():
        pieces.append((order.slice(cut), _RECENT_PAPER_FILE_BYTES))
    (rows, file_bytes), *rest = pieces
    version = _overwrite(paths, "papers", papers[rows], target_file_size=file_bytes)
    for rows, file_bytes in rest:
        # On top of the version just made, with no retries: if another run wrote the
        # table meanwhile, the commit fails and publishing starts over.
        papers[rows].write_delta(
            paths.delta("papers", version),
            mode="append",
            delta_write_options={
                "target_file_size": file_bytes,
                "commit_properties": CommitProperties(max_commit_retries=0),
            },
        )
        version += 1
    return version


def _changed_since(
    paths: WarehousePaths,
    papers: pl.DataFrame | pl.LazyFrame,
    previous: dict | None,
    changes: pl.DataFrame,
) -> tuple[DeltaTable, dt.date] | None:
    """The papers table at `previous`'s version and the earliest first_seen (before or
    after) of a paper in `changes` (its first_seen column); None when the whole table must
    be written: no previous release, another version written since, another schema, or
    an unreadable table. Read from the changes, not from both papers tables: adding a
    digest to 1,000, those reads took 0.07 s of the papers' write (beside the others')."""
    firsts = changes["first_seen"]
    if previous is None or firsts.is_empty() or firsts.null_count():
        return None
    if not paths.is_table("papers"):
        return None
    try:
        table = paths.delta("papers")
        if table.version() != previous["papers_version"] or _schema(table) != _schema_of(papers):
            return None
    except (OSError, DeltaError, pl.exceptions.PolarsError):
        return None
    return table, firsts.min()


def _schema_of(frame: pl.DataFrame | pl.LazyFrame) -> pl.Schema:
    return frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema


def _schema(table: DeltaTable) -> pl.Schema:
    return pl.from_arrow(pa.schema(table.schema().to_arrow()).empty_table()).schema
