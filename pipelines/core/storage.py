"""Where a warehouse's files live: a local folder or an `s3://bucket/prefix` URI.

Delta tables go through deltalake and Polars with object-store options; every other file
(staged digests, dataset cards, asset outputs) through PyArrow's filesystems. A file is
always written whole: one PUT on S3, a temporary file renamed into place on a local disk,
so a reader never sees half of one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from functools import cached_property
from pathlib import Path

import polars as pl
import pyarrow.fs as pafs
from fsspec.implementations.arrow import ArrowFSWrapper

# object-store option -> the environment variables it is read from, first set wins
_S3_ENVIRONMENT = {
    "AWS_ENDPOINT_URL": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "AWS_REGION": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "AWS_ACCESS_KEY_ID": ("AWS_ACCESS_KEY_ID",),
    "AWS_SECRET_ACCESS_KEY": ("AWS_SECRET_ACCESS_KEY",),
    "AWS_SESSION_TOKEN": ("AWS_SESSION_TOKEN",),
}

# Local writes go to a temporary file beside the target, then a rename.
_TMP_PREFIX = ".tmp-"
_COPY_BYTES = 8 * 2**20  # a local file is copied in pieces of this size


def is_remote(root: str) -> bool:
    return root.startswith("s3://")


def s3_options(given: dict[str, str | None] | None = None) -> dict[str, str]:
    """Object-store options (deltalake's and Polars' keys): each from `given`, else from
    the standard AWS environment variables, read when called. An `http://` endpoint (a
    local S3-compatible server) is allowed explicitly."""
    given = given or {}
    options = {}
    for key, variables in _S3_ENVIRONMENT.items():
        from_environment = (os.environ[v] for v in variables if os.environ.get(v))
        value = given.get(key) or next(from_environment, None)
        if value:
            options[key] = value
    if options.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        options["AWS_ALLOW_HTTP"] = "true"
    return options


class _S3Wrapper(ArrowFSWrapper):
    """PyArrow's S3 filesystem as fsspec's `s3` protocol, which DuckDB's Python client can
    read through (`register_filesystem`) without the httpfs extension."""

    protocol = "s3"


class Storage:
    """Files under a root, addressed by paths relative to it (`cards/release-3.md`)."""

    def __init__(self, root: str, options: dict[str, str] | None = None):
        self.root = root.rstrip("/")
        self.options = dict(options or {})
        self.remote = is_remote(self.root)

    @cached_property
    def fs(self) -> pafs.FileSystem:
        if not self.remote:
            return pafs.LocalFileSystem()
        endpoint = self.options.get("AWS_ENDPOINT_URL")
        scheme = "http" if endpoint and endpoint.startswith("http://") else "https"
        return pafs.S3FileSystem(
            access_key=self.options.get("AWS_ACCESS_KEY_ID"),
            secret_key=self.options.get("AWS_SECRET_ACCESS_KEY"),
            session_token=self.options.get("AWS_SESSION_TOKEN"),
            region=self.options.get("AWS_REGION"),
            endpoint_override=endpoint.split("://", 1)[-1] if endpoint else None,
            scheme=scheme,
        )

    def uri(self, relative: str) -> str:
        """What deltalake, Polars and DuckDB are given: a local path or an s3:// URI."""
        return f"{self.root}/{relative}" if relative else self.root

    def _path(self, relative: str) -> str:
        return self.uri(relative).removeprefix("s3://")

    def exists(self, relative: str) -> bool:
        return self.uri_exists(self.uri(relative))

    def uri_exists(self, uri: str) -> bool:
        return self.fs.get_file_info(uri.removeprefix("s3://")).type != pafs.FileType.NotFound

    def read_bytes(self, relative: str) -> bytes:
        with self.fs.open_input_stream(self._path(relative)) as stream:
            return stream.read()

    def write_bytes(self, relative: str, data: bytes) -> None:
        self._write(relative, lambda stream: stream.write(data))

    def write_parquet(
        self, frame: pl.DataFrame | pl.LazyFrame, relative: str, compression: str = "zstd"
    ) -> None:
        # streamed: no second copy in memory (a LazyFrame's rows read as they are written)
        write = frame.sink_parquet if isinstance(frame, pl.LazyFrame) else frame.write_parquet
        self._write(relative, lambda stream: write(stream, compression=compression))

    def write_file(self, local: str | Path, relative: str) -> None:
        """Copy a local file here as it is."""
        with open(local, "rb") as source:
            self._write(relative, lambda stream: shutil.copyfileobj(source, stream, _COPY_BYTES))

    def _write(self, relative: str, write) -> None:
        """`write(stream)` into the file, which appears whole or not at all."""
        path = self._path(relative)
        if self.remote:  # one PUT at close: the object appears whole or not at all
            with self.fs.open_output_stream(path) as stream:
                write(stream)
            return
        parent = path.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{parent}/{_TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            with self.fs.open_output_stream(tmp) as stream:
                write(stream)
            self.fs.move(tmp, path)  # a rename: atomic on one filesystem
        finally:
            if self.fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                self.fs.delete_file(tmp)

    def delete(self, relative: str) -> None:
        """Delete a file; one already gone (another run deleted it first) is no error."""
        try:
            self.fs.delete_file(self._path(relative))
        except FileNotFoundError:
            pass

    def delete_folder(self, relative: str) -> None:
        """Delete a folder and everything in it; one already gone is no error."""
        try:
            self.fs.delete_dir(self._path(relative))
        except FileNotFoundError:
            pass

    def files(self, relative: str) -> list[str]:
        """Paths (relative to `relative`) of every file below it; none when it is absent.
        A file another run is still writing (its temporary file) is not one yet: a caller
        that deleted it would make that run's rename fail."""
        base = self._path(relative)
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        return sorted(
            info.path.removeprefix(base).lstrip("/")
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and not info.base_name.startswith(_TMP_PREFIX)
        )

    def read_parquet(
        self,
        relatives: list[str],
        columns: list[str] | None = None,
        file_column: str | None = None,
        schema: dict[str, pl.DataType] | None = None,
        where: pl.Expr | None = None,
        row_index: str | None = None,
    ) -> pl.DataFrame:
        """The files' rows in one frame (those matching `where`, when given); `file_column`
        names a column that holds each row's file (its full URI), `row_index` one that
        holds its place among all rows. With a `schema`, a file lacking some of its columns
        gives nulls in them."""
        return read_parquet_uris(
            [self.uri(r) for r in relatives],
            self.options,
            columns,
            file_column,
            schema,
            where,
            row_index,
        )

    def n_rows(self, relative: str) -> int:
        """The rows of a Parquet file, from its footer."""
        options = self.options if self.remote else None
        return (
            pl.scan_parquet(self.uri(relative), storage_options=options)
            .select(pl.len())
            .collect()
            .item()
        )

    def duckdb_filesystem(self) -> ArrowFSWrapper | None:
        """The filesystem a DuckDB connection needs to read this warehouse's files (none
        for a local one)."""
        return _S3Wrapper(self.fs) if self.remote else None


def scan_parquet_uris(uris: list[str], options: dict[str, str]) -> pl.LazyFrame:
    """The files' rows, to be read when collected (those a filter on their statistics
    keeps, only)."""
    remote = bool(uris) and is_remote(uris[0])
    return pl.scan_parquet(uris, storage_options=options if remote else None)


def read_parquet_uris(
    uris: list[str],
    options: dict[str, str],
    columns: list[str] | None = None,
    file_column: str | None = None,
    schema: dict[str, pl.DataType] | None = None,
    where: pl.Expr | None = None,
    row_index: str | None = None,
) -> pl.DataFrame:
    remote = bool(uris) and is_remote(uris[0])
    if columns and file_column:
        columns = [*columns, file_column]  # else Polars leaves it out
    if columns and row_index:
        columns = [row_index, *columns]
    scan = pl.scan_parquet(
        uris,
        storage_options=options if remote else None,
        include_file_paths=file_column,
        schema=schema,
        missing_columns="raise" if schema is None else "insert",
        extra_columns="raise" if schema is None else "ignore",  # `schema` may name a few
    )
    if row_index is not None:  # numbered before filtered
        scan = scan.with_row_index(row_index)
    # The filter before the columns: only the matching rows of the other columns are decoded.
    if where is not None:
        scan = scan.filter(where)
    return scan.select(columns or pl.all()).collect()
