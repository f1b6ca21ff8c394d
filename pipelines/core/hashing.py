"""Content hashes of tables: a release records one per table, and an unchanged hash means
an unchanged table."""

from __future__ import annotations

import hashlib

import polars as pl


def row_hashes(frame: pl.DataFrame) -> pl.Series:
    """A 64-bit hash per row (stable for a given Polars version)."""
    if frame.height == 0:
        return pl.Series("hash", [], dtype=pl.UInt64)
    return frame.hash_rows(seed=0)


def table_hash(frame: pl.DataFrame, key: list[str]) -> str:
    """Content hash of a table: its schema and its rows in key order (rows with equal keys
    in the order of their hashes)."""
    digest = hashlib.sha256(repr(list(frame.schema.items())).encode())
    if frame.height:
        # The rows hashed where they are and only (key, hash) sorted: sorting the table
        # itself would copy every column (0.43 s against 1.18 s for 541,222 papers).
        keyed = frame.select(*key, _row_hash=row_hashes(frame))
        hashes = keyed.sort([*key, "_row_hash"])["_row_hash"]
        # The bytes of array("Q", hashes.to_list()), which built a Python int per row
        # (0.04 s of 0.06 s for 273,941 related papers).
        digest.update(hashes.to_numpy().tobytes())
    return digest.hexdigest()
