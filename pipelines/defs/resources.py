"""Resources: where the warehouse lives, and an IO manager for Polars frames."""

import os
import tempfile
from pathlib import Path

import dagster as dg
import polars as pl

from pipelines.core.landing import DEFAULT_MAX_FILE_BYTES
from pipelines.core.staging import StagingArea
from pipelines.core.warehouse import WarehousePaths, resolve_dirs


class WarehouseResource(dg.ConfigurableResource):
    """The landing folder (read only) and the warehouse folder.

    Unset fields fall back to PAPERS_LANDING_DIR / PAPERS_WAREHOUSE_DIR, then to
    `warehouse/landing` and `warehouse`, resolved when a run starts."""

    landing_dir: str | None = None
    warehouse_dir: str | None = None
    # A landed file larger than this is quarantined by reference (path, size, sha256).
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

    @property
    def landing(self) -> Path:
        return resolve_dirs(self.landing_dir, self.warehouse_dir)[0]

    @property
    def paths(self) -> WarehousePaths:
        return WarehousePaths(resolve_dirs(self.landing_dir, self.warehouse_dir)[1])

    @property
    def staging(self) -> StagingArea:
        return StagingArea(self.paths.staging)


class Progress:
    """Progress of a long step. Runs started from the CLI pass one that draws a bar."""

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass

    def stop(self) -> None:
        pass


class PolarsParquetIOManager(dg.ConfigurableIOManager):
    """Stores each asset's Polars frame as `<warehouse>/staging/assets/<key>.parquet`,
    written to a temporary file and renamed so a reader never sees half a file."""

    warehouse: dg.ResourceDependency[WarehouseResource]

    def _path(self, key: dg.AssetKey) -> Path:
        return self.warehouse.paths.root / "staging" / "assets" / f"{'__'.join(key.path)}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        path = self._path(context.asset_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=path.parent)
        os.close(fd)
        try:
            obj.write_parquet(tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        return pl.read_parquet(self._path(context.asset_key))
