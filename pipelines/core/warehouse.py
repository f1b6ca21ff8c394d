"""Where a warehouse keeps its parts: a local folder or an `s3://bucket/prefix` URI."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote

import polars as pl
from deltalake import DeltaTable

from pipelines.core.storage import (
    Storage,
    is_remote,
    read_parquet_uris,
    s3_options,
    scan_parquet_uris,
)

DEFAULT_WAREHOUSE = "warehouse"
DEFAULT_LANDING = "warehouse/landing"


def resolve_dirs(landing: str | os.PathLike | None, warehouse: str | os.PathLike | None):
    """(landing folder, warehouse root) from arguments, else PAPERS_LANDING_DIR /
    PAPERS_WAREHOUSE_DIR, else the defaults. Read when called, never at import time. The
    warehouse root is an absolute local path or an s3:// URI, as a string."""
    root = str(warehouse or os.environ.get("PAPERS_WAREHOUSE_DIR") or DEFAULT_WAREHOUSE)
    landing_dir = Path(landing or os.environ.get("PAPERS_LANDING_DIR") or DEFAULT_LANDING)
    return landing_dir.absolute(), (root if is_remote(root) else str(Path(root).absolute()))


def default_catalog(root: str) -> Path:
    """The catalog is a local file: PAPERS_CATALOG_PATH, else in the warehouse folder, or
    for a warehouse on object storage in the user's cache (one per warehouse URI)."""
    if os.environ.get("PAPERS_CATALOG_PATH"):
        return Path(os.environ["PAPERS_CATALOG_PATH"]).absolute()
    if not is_remote(root):
        return Path(root) / "catalog.duckdb"
    name = hashlib.sha256(root.rstrip("/").encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "papers" / "catalogs" / name / "catalog.duckdb"


@dataclass(frozen=True)
class WarehousePaths:
    """A warehouse: its root, the object-store options to reach it, its local catalog."""

    root: str
    storage_options: dict[str, str] = field(default_factory=dict, compare=False)
    catalog_file: str | None = None

    def __post_init__(self):
        root = str(self.root)
        object.__setattr__(self, "root", root if is_remote(root) else str(Path(root).absolute()))
        if self.remote and not self.storage_options:
            object.__setattr__(self, "storage_options", s3_options())

    @property
    def remote(self) -> bool:
        return is_remote(self.root)

    @cached_property
    def storage(self) -> Storage:
        return Storage(self.root, self.storage_options)

    @property
    def local_root(self) -> Path:
        if self.remote:
            raise ValueError(f"{self.root} is not a local folder")
        return Path(self.root)

    def table(self, name: str) -> str:
        """The Delta table's location: a local path or an s3:// URI."""
        return self.storage.uri(f"tables/{name}")

    def delta(self, name: str, version: int | None = None) -> DeltaTable:
        return DeltaTable(self.table(name), version=version, storage_options=self.storage_options)

    def is_table(self, name: str) -> bool:
        return DeltaTable.is_deltatable(self.table(name), storage_options=self.storage_options)

    def data_files(self, table: DeltaTable) -> list[str]:
        """The table's Parquet files as DuckDB and Polars take them: local paths (deltalake
        gives percent-encoded file:// URIs: a space is %20) or s3:// URIs."""
        uris = table.file_uris()
        return uris if self.remote else [unquote(u.removeprefix("file://")) for u in uris]

    def read_files(
        self, files: list[str], columns: list[str] | None = None, file_column: str | None = None
    ) -> pl.DataFrame:
        """The files' rows (`file_column`: a column naming each row's file, as given)."""
        return read_parquet_uris(files, self.storage_options, columns, file_column)

    def scan_files(self, files: list[str]) -> pl.LazyFrame:
        return scan_parquet_uris(files, self.storage_options)

    @property
    def staging(self):
        from pipelines.core.staging import StagingArea

        return StagingArea(self.storage, "staging")

    @property
    def catalog(self) -> Path:
        return Path(self.catalog_file) if self.catalog_file else default_catalog(self.root)
