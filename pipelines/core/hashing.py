"""Content hashes of tables: a release records one per table, and an unchanged hash means
an unchanged table."""

from __future__ import annotations

import hashlib

import polars as pl

from pipelines.core.frames import FrameMemo

# (key, hash) of the frames hashed, while they live: a build hashes papers and related
# papers to keep what it computed under their hash, and publishing hashes every table
# again (adding a digest to 10,000, 0.6 s of papers and related papers hashed twice).
_hashed = FrameMemo()


# Rows hashed at a time: a row's hash is its own, and hashing every column of a table at
# once holds a hash per value of each (the papers of 10,000 digests: 90 MB at once).
ROWS_PER_HASH = 100_000


def row_hashes(frame: pl.DataFrame) -> pl.Series:
    """A 64-bit hash per row (stable for a given Polars version)."""
    if frame.height == 0:
        return pl.Series("hash", [], dtype=pl.UInt64)
    return pl.concat(
        [
            frame.slice(start, ROWS_PER_HASH).hash_rows(seed=0)
            for start in range(0, frame.height, ROWS_PER_HASH)
        ]
    )


def table_hash(frame: pl.DataFrame | pl.LazyFrame, key: list[str]) -> str:
    """Content hash of a table: its schema and its rows in key order (rows with equal keys
    in the order of their hashes). Computed once per frame object; a LazyFrame's is the
    hash remembered for it (see remember_hash), else that of its rows collected."""
    known = known_hash(frame, key)
    if known is not None:
        return known
    hashed = _table_hash(frame.collect() if isinstance(frame, pl.LazyFrame) else frame, key)
    remember_hash(frame, key, hashed)
    return hashed


def _table_hash(frame: pl.DataFrame, key: list[str]) -> str:
    return hash_of_rows(frame.schema, keyed_row_hashes(frame, key), key)


def known_hash(frame: pl.DataFrame | pl.LazyFrame, key: list[str]) -> str | None:
    """The hash table_hash computed or was told for `frame`, if any."""
    known = _hashed.recall(frame)
    return known[1] if known is not None and known[0] == tuple(key) else None


def remember_hash(frame: pl.DataFrame | pl.LazyFrame, key: list[str], hashed: str) -> None:
    """Let table_hash give `hashed` for `frame` while it lives: a build that hashed its
    rows otherwise (from the kept hashes of rows it did not read) says so."""
    _hashed.remember(frame, (tuple(key), hashed))


def keyed_row_hashes(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """(*key, row_hash) of each row: what a table's hash is made of."""
    return frame.select(*key, row_hash=row_hashes(frame))


def hash_of_rows(schema: pl.Schema, keyed: pl.DataFrame, key: list[str]) -> str:
    """The hash of a table with `schema` whose rows have the (*key, row_hash) `keyed`."""
    digest = hashlib.sha256(repr(list(schema.items())).encode())
    if keyed.height:
        # Only (key, hash) sorted: sorting the table itself would copy every column (0.43 s
        # against 1.18 s for 541,222 papers).
        hashes = keyed.sort([*key, "row_hash"])["row_hash"]
        # The bytes of array("Q", hashes.to_list()), which built a Python int per row
        # (0.04 s of 0.06 s for 273,941 related papers).
        digest.update(hashes.to_numpy().tobytes())
    return digest.hexdigest()
