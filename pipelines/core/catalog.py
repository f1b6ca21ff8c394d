"""The DuckDB catalog: views over the Parquet files of published releases.

Schema `main` holds the latest release; schema `r<N>` holds release N for each of the
last CATALOG_RELEASES releases whose files are all present. Views read plain Parquet with
`read_parquet`, so stock DuckDB needs no extension for a local warehouse; paths are
absolute so the catalog opens from any working directory. `USE r12;` then plain
`SELECT ... FROM papers` is release 12. The catalog is always a local file; for a
warehouse on S3 its views read s3:// URIs (stock DuckDB: the httpfs extension and an S3
secret, see README.md).
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from pipelines.core.faults import fault_point
from pipelines.core.warehouse import WarehousePaths
from schemas.tables import PUBLISHED_TABLES

CATALOG_RELEASES = 30
# The views of the per-release logs: read at their latest version, filtered by release.
RELEASE_LOGS = ("paper_changes", "releases")


def sql_string(value: str) -> str:
    """A SQL string literal. DDL cannot take bound parameters, so quote instead."""
    return "'" + value.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def release_schema(number: int) -> str:
    return f"r{int(number)}"


class ReleaseSources:
    """Files (and Arrow schema) of each table version, loaded once per catalog build."""

    def __init__(self, paths: WarehousePaths):
        self.paths = paths
        self._cache: dict[tuple[str, int | None], tuple[list[str], pa.Schema]] = {}
        self._present: dict[str, bool] = {}  # one check per file (a request on S3)
        self._tables: dict[str, DeltaTable] = {}  # the last version loaded of each table

    def get(self, name: str, version: int | None) -> tuple[list[str], pa.Schema]:
        key = (name, version)
        if key not in self._cache:
            table = self._load(name, version)
            files = self.paths.data_files(table)
            self._cache[key] = (files, pa.schema(table.schema().to_arrow()))
        return self._cache[key]

    def _load(self, name: str, version: int | None) -> DeltaTable:
        """The table at `version` (None: the latest). Loading a version reads the log from
        its start (or last checkpoint); a table moved forward from a version loaded before
        reads only the commits since. The 35 versions of a table: 0.065 s, not 0.20 s."""
        table = self._tables.pop(name, None)
        if version is None or table is None or table.version() > version:
            table = self.paths.delta(name, version)
        elif table.version() < version:
            table.load_as_version(version)
        self._tables[name] = table  # kept only once loaded: a failed load is not reused
        return table

    def for_release(self, release: dict) -> dict[str, tuple[list[str], pa.Schema, str]]:
        """view name -> (files, schema, row filter) for one release."""
        number = int(release["release"])
        sources = {
            name: (*self.get(name, int(release[f"{name}_version"])), "")
            for name in PUBLISHED_TABLES
        }
        return sources | self.logs_until(number)

    def logs_until(self, number: int) -> dict[str, tuple[list[str], pa.Schema, str]]:
        """view name -> (files, schema, row filter) of the per-release logs as of release
        `number`: their latest version, its rows up to that release."""
        until = f" WHERE release <= {int(number)}"  # an int cannot carry SQL
        # Changelog rows are appended after their release commits and never rewritten.
        return {name: (*self.get(name, None), until) for name in RELEASE_LOGS}

    def complete(self, release: dict) -> bool:
        try:
            sources = self.for_release(release)
        except Exception:  # a version whose log is gone: not retained
            return False
        files = {f for files, _, _ in sources.values() for f in files}
        return all(self._exists(f) for f in files)

    def _exists(self, file: str) -> bool:
        if file not in self._present:
            self._present[file] = self.paths.storage.uri_exists(file)
        return self._present[file]


def create_views(con: duckdb.DuckDBPyConnection, sources: dict, schema: str = "main") -> None:
    if schema != "main":
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {sql_identifier(schema)}")
    for name, (files, arrow_schema, row_filter) in sources.items():
        view = f"{sql_identifier(schema)}.{sql_identifier(name)}"
        # An empty Delta table has no files: its columns are kept in an empty local table.
        hidden = f"{sql_identifier(schema)}.{sql_identifier(f'_empty_{name}')}"
        if schema != "main" and name in RELEASE_LOGS:
            # The latest release's log, up to this release: a new release's rows and files
            # change no older release's view.
            select = f"SELECT * FROM main.{sql_identifier(name)}{row_filter}"  # noqa: S608
        elif files:
            file_list = "[" + ", ".join(sql_string(f) for f in files) + "]"
            select = f"SELECT * FROM read_parquet({file_list}){row_filter}"  # noqa: S608
            con.execute(f"DROP TABLE IF EXISTS {hidden}")  # the table had none when made
        else:
            empty = arrow_schema.empty_table()  # noqa: F841 - read by the SQL below
            con.execute(f"CREATE OR REPLACE TABLE {hidden} AS SELECT * FROM empty")  # noqa: S608
            select = f"SELECT * FROM {hidden}"  # noqa: S608 - quoted identifier
        con.execute(f"CREATE OR REPLACE VIEW {view} AS {select}")


def write_catalog(paths: WarehousePaths, releases: list[dict]) -> list[int]:
    """Build the catalog for `releases` (oldest first; the last is the latest) in a
    temporary file and swap it in atomically, so a reader sees the old catalog or the new
    one, never a mixture. Returns the release numbers given a schema."""
    latest = releases[-1]
    sources = ReleaseSources(paths)
    # Oldest first, so that each table's log is read forward once (see ReleaseSources).
    kept = [r for r in releases[-CATALOG_RELEASES:] if sources.complete(r)]
    numbers = [int(r["release"]) for r in kept]
    with _swapped_in(paths, start_from=None) as con:
        con.execute("CREATE TABLE catalog_files (release BIGINT, file VARCHAR)")
        _set_latest(con, paths, sources.for_release(latest), int(latest["release"]), numbers)
        for release in kept:
            _add_release(con, sources.for_release(release), int(release["release"]))
    return numbers


def extend_catalog(paths: WarehousePaths, releases: list[dict]) -> list[int]:
    """write_catalog(paths, releases) when the catalog shows the release before the latest
    of `releases`: the same catalog, made from that one by adding the latest release and
    dropping those past CATALOG_RELEASES, rather than made again for each of them (at 36
    releases 0.76-1.47 s each time, most of it loading every release's table versions and
    creating their views; extended, 0.29-0.38 s). The files the kept releases' tables are
    read from are checked to be there still: a release missing one (a vacuum cut short)
    means a catalog written afresh, as does any other catalog."""
    latest, numbers = releases[-1], [int(r["release"]) for r in releases[-CATALOG_RELEASES:]]
    state = _catalog_state(paths)
    if state is None or len(releases) < 2:
        return write_catalog(paths, releases)
    info, files = state
    shown = info["time_travel_releases"] or []
    before = [n for n in shown if n in numbers]
    sources = ReleaseSources(paths)
    if (
        info["warehouse"] != str(paths.root)
        or info["release"] != int(releases[-2]["release"])
        or not all(paths.storage.uri_exists(f) for n in before for f in files.get(n, []))
        or not sources.complete(latest)  # its logs' files are every release's
    ):
        return write_catalog(paths, releases)
    added, kept = sources.for_release(latest), [*before, int(latest["release"])]
    with _swapped_in(paths, start_from=paths.catalog) as con:
        for number in set(shown) - set(before):
            con.execute(f"DROP SCHEMA {sql_identifier(release_schema(number))} CASCADE")
            con.execute("DELETE FROM catalog_files WHERE release = ?", [number])
        _set_latest(con, paths, added, int(latest["release"]), kept)
        _add_release(con, added, int(latest["release"]))
    return kept


def _catalog_state(paths: WarehousePaths) -> tuple[dict, dict[int, list[str]]] | None:
    """The catalog's record of itself and, by release, the files its schemas' tables are
    read from; None for a catalog missing, unreadable or written before it kept them."""
    if not paths.catalog.exists():
        return None
    try:
        with _attached(paths, paths.catalog, read_only=True) as con:
            info = _info_row(con)
            rows = con.execute("SELECT release, file FROM catalog_files").fetchall()
    except duckdb.Error:
        return None
    files: dict[int, list[str]] = {}
    for number, file in rows:
        files.setdefault(number, []).append(file)
    return info, files


@contextmanager
def _swapped_in(paths: WarehousePaths, start_from: Path | None):
    """A connection to a temporary copy of `start_from` (or to a new file), whose changes
    are made in one transaction, then swapped in for the catalog at once."""
    target = paths.catalog
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    if start_from is not None:
        shutil.copyfile(start_from, tmp)
    with _attached(paths, tmp, read_only=False) as con:
        con.execute("BEGIN TRANSACTION")  # one commit, not one per view
        yield con
        con.execute("COMMIT")
    fault_point("catalog_written")
    os.replace(tmp, target)


def _set_latest(
    con, paths: WarehousePaths, sources: dict, number: int, time_travel: list[int]
) -> None:
    """Schema `main` shows release `number`, and catalog_info says so and which releases
    have a schema of their own."""
    create_views(con, sources)
    con.execute(
        "CREATE OR REPLACE TABLE catalog_info AS SELECT ?::BIGINT AS release, "
        "?::VARCHAR AS warehouse, ?::BIGINT[] AS time_travel_releases",
        [number, str(paths.root), time_travel],
    )


def _add_release(con, sources: dict, number: int) -> None:
    """Schema r<number> shows release `number`; catalog_files lists the files its tables'
    views read (its logs' views read main's)."""
    create_views(con, sources, release_schema(number))
    tables = [sources[name] for name in sources if name not in RELEASE_LOGS]
    files = sorted({f for files, _, _ in tables for f in files})
    if files:
        con.executemany("INSERT INTO catalog_files VALUES (?, ?)", [(number, f) for f in files])


def connect(
    paths: WarehousePaths, catalog: Path | None = None, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the catalog that can read the warehouse's files: for a
    warehouse on S3, through this process's S3 filesystem (no httpfs extension needed)."""
    con = duckdb.connect(str(catalog or paths.catalog), read_only=read_only)
    filesystem = paths.storage.duckdb_filesystem()
    if filesystem is not None:
        con.register_filesystem(filesystem)
    return con


def _process_database() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB database of this process, which catalog files are attached to
    (a forked process makes its own: DuckDB's threads do not survive a fork)."""
    pid = os.getpid()
    with _DATABASES_LOCK:
        if pid not in _DATABASES:
            _DATABASES[pid] = duckdb.connect()
            atexit.register(_close_database, pid)
        return _DATABASES[pid]


def open_database_early(paths: WarehousePaths) -> threading.Thread | None:
    """Open this process's DuckDB database on a thread of its own (returned), when the
    catalog will be attached to it: opening it takes 0.03-0.05 s outside the GIL, so a
    release does it while its tables are written rather than after them."""
    if paths.storage.remote:  # the catalog gets a database of its own (see _attached)
        return None
    opening = threading.Thread(target=_process_database, daemon=True)
    opening.start()
    return opening


def _close_database(pid: int) -> None:
    """Closed before the interpreter tears its modules down: a connection alive then may
    outlive DuckDB's own types, which its bindings report on stderr as leaks."""
    if pid == os.getpid():  # not a forked copy of another process's
        with _DATABASES_LOCK:
            database = _DATABASES.pop(pid, None)
        if database is not None:
            database.close()


_DATABASES: dict[int, duckdb.DuckDBPyConnection] = {}  # by process id
_DATABASES_LOCK = threading.Lock()


@contextmanager
def _attached(paths: WarehousePaths, file: Path, read_only: bool) -> Iterator:
    """A connection whose default database is the DuckDB file `file`, attached to this
    process's database rather than opened as a database of its own: opening one builds
    DuckDB's catalog of functions (0.011 s each time, attaching 0.001 s), and publishing
    a release opens the catalog three times. Detached after, which writes the changes
    into the file itself (no write-ahead log is left beside it). A warehouse on S3 gets a
    database of its own, with its filesystem (see connect)."""
    if paths.storage.duckdb_filesystem() is not None:
        con = connect(paths, file, read_only)
        try:
            yield con
        finally:
            con.close()
        return
    database = _process_database()
    alias = sql_identifier(f"catalog_{uuid.uuid4().hex}")
    mode = " (READ_ONLY)" if read_only else ""
    con = database.cursor()
    try:
        con.execute(f"ATTACH {sql_string(str(file))} AS {alias}{mode}")
    except BaseException:
        con.close()
        raise
    try:
        con.execute(f"USE {alias}")
        yield con
    finally:
        con.close()  # rolls back what it left uncommitted
        detaching = database.cursor()
        try:
            detaching.execute(f"DETACH {alias}")
        finally:
            detaching.close()


def catalog_info(catalog: Path) -> dict | None:
    """The catalog's own record (release, warehouse, time_travel_releases); None when the
    file is missing or unreadable."""
    if not catalog.exists():
        return None
    try:
        con = duckdb.connect(str(catalog), read_only=True)
        try:
            return _info_row(con)
        finally:
            con.close()
    except duckdb.Error:
        return None


def _info_row(con: duckdb.DuckDBPyConnection) -> dict:
    # Fetched, not converted to a frame: a process's first conversion took 0.02-0.2 s.
    cursor = con.execute("SELECT * FROM catalog_info")
    return dict(zip([column[0] for column in cursor.description], cursor.fetchone(), strict=True))


def view_row_counts(paths: WarehousePaths, release: int, views: list[str]) -> dict[str, int] | None:
    """The row count of each of `views` through the catalog, when it shows `release`;
    None when it shows another or is missing or unreadable. One connection: opening the
    catalog costs more than counting (at 1,000 digests 0.02 s against 0.01 s)."""
    if not paths.catalog.exists():
        return None
    try:
        with _attached(paths, paths.catalog, read_only=True) as con:
            if _info_row(con)["release"] != release:
                return None
            return {
                name: con.execute(f"SELECT count(*) FROM {sql_identifier(name)}").fetchone()[0]  # noqa: S608
                for name in views
            }
    except duckdb.Error:
        return None


def catalog_release(catalog: Path) -> int | None:
    """The release a catalog file shows; None when it is missing or unreadable."""
    info = catalog_info(catalog)
    return info["release"] if info else None
