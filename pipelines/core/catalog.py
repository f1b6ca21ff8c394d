"""The DuckDB catalog: one view per table over the Parquet files of one release.

Views read plain Parquet through `read_parquet`, so stock DuckDB needs no extension.
Paths are absolute so the catalog opens from any working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from pipelines.core.warehouse import WarehousePaths
from schemas.tables import PUBLISHED_TABLES


def sql_string(value: str) -> str:
    """A SQL string literal. DDL cannot take bound parameters, so quote instead."""
    return "'" + value.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _file_paths(table: DeltaTable) -> list[str]:
    return [uri.removeprefix("file://") for uri in table.file_uris()]


def create_views(
    con: duckdb.DuckDBPyConnection, paths: WarehousePaths, release: dict | None
) -> None:
    """Create (or replace) a view per table for `release` (a releases row), plus
    `releases` itself up to that release. With no release, nothing is created."""
    if release is None:
        return
    sources = {name: (paths.table(name), release[f"{name}_version"]) for name in PUBLISHED_TABLES}
    sources["releases"] = (paths.table("releases"), None)
    for name, (location, version) in sources.items():
        table = DeltaTable(str(location), version=version)
        files = _file_paths(table)
        view = sql_identifier(name)
        if files:
            file_list = "[" + ", ".join(sql_string(f) for f in files) + "]"
            select = f"SELECT * FROM read_parquet({file_list})"  # noqa: S608 - quoted paths
        else:
            # An empty Delta table has no files: keep its columns in an empty local table.
            hidden = sql_identifier(f"_empty_{name}")
            empty = pa.schema(table.schema().to_arrow()).empty_table()  # noqa: F841 - used by SQL
            con.execute(f"CREATE OR REPLACE TABLE {hidden} AS SELECT * FROM empty")  # noqa: S608
            select = f"SELECT * FROM {hidden}"  # noqa: S608 - fixed identifier
        if name == "releases":
            # an int cannot carry SQL
            select = f"{select} WHERE release <= {int(release['release'])}"  # noqa: S608
        con.execute(f"CREATE OR REPLACE VIEW {view} AS {select}")


def write_catalog(paths: WarehousePaths, release: dict) -> Path:
    """Build the catalog for `release` in a temporary file and swap it in atomically,
    so a reader sees the old release or the new one, never a mixture."""
    target = paths.catalog
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        create_views(con, paths, release)
        con.execute(
            "CREATE OR REPLACE TABLE catalog_info AS "
            "SELECT ?::BIGINT AS release, ?::VARCHAR AS warehouse",
            [int(release["release"]), str(paths.root)],
        )
    finally:
        con.close()
    os.replace(tmp, target)
    return target
