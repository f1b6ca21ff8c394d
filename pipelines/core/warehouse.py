"""Where a warehouse keeps its parts, and the lock that serialises publishers."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

DEFAULT_WAREHOUSE = "warehouse"
DEFAULT_LANDING = "warehouse/landing"


def resolve_dirs(landing: str | os.PathLike | None, warehouse: str | os.PathLike | None):
    """(landing, warehouse) from arguments, else PAPERS_LANDING_DIR / PAPERS_WAREHOUSE_DIR,
    else the defaults. Read when called, never at import time."""
    warehouse_dir = Path(warehouse or os.environ.get("PAPERS_WAREHOUSE_DIR") or DEFAULT_WAREHOUSE)
    landing_dir = Path(landing or os.environ.get("PAPERS_LANDING_DIR") or DEFAULT_LANDING)
    return landing_dir.absolute(), warehouse_dir.absolute()


def local_files(uris: list[str]) -> list[str]:
    """Local paths of Delta file URIs, which deltalake percent-encodes (a space is %20)."""
    return [unquote(uri.removeprefix("file://")) for uri in uris]


@dataclass(frozen=True)
class WarehousePaths:
    root: Path

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    def table(self, name: str) -> Path:
        return self.tables / name

    @property
    def staging(self) -> Path:
        return self.root / "staging" / "digests"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def lock_file(self) -> Path:
        return self.root / ".publish.lock"


@contextlib.contextmanager
def publish_lock(paths: WarehousePaths) -> Iterator[None]:
    """Exclusive lock held while a release is published; a second publisher waits.
    The OS drops the lock when its holder dies, so a killed run never blocks the next."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
