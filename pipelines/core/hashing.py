"""Content hashes of tables: a release records one per table, and an unchanged hash means
an unchanged table."""

from __future__ import annotations

import array
import hashlib

import polars as pl


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
