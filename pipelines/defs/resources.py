"""Resources: where the warehouse lives, and an IO manager for Polars frames."""

import json
from pathlib import Path

import dagster as dg
import polars as pl

from pipelines.core.landing import DEFAULT_MAX_FILE_BYTES
from pipelines.core.staging import StagingArea
from pipelines.core.storage import is_remote, s3_options
from pipelines.core.warehouse import WarehousePaths, resolve_dirs


class WarehouseResource(dg.ConfigurableResource):
    """The landing folder (read only) and the warehouse: a local folder or an
    `s3://bucket/prefix` URI on any S3-compatible object storage.

    Unset fields fall back to PAPERS_LANDING_DIR / PAPERS_WAREHOUSE_DIR /
    PAPERS_CATALOG_PATH, then to `warehouse/landing` and `warehouse`; the S3 fields to the
    standard AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
    AWS_SESSION_TOKEN variables. All are resolved when a run starts, never at import."""

    landing_dir: str | None = None
    warehouse_dir: str | None = None
    # The local DuckDB catalog; default: in the warehouse folder, or for S3 in ~/.cache/papers.
    catalog_path: str | None = None
    # A landed file larger than this is quarantined by reference (path, size, sha256).
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None

    @property
    def landing(self) -> Path:
        return resolve_dirs(self.landing_dir, self.warehouse_dir)[0]

    @property
    def paths(self) -> WarehousePaths:
        root = resolve_dirs(self.landing_dir, self.warehouse_dir)[1]
        options = {
            "AWS_ENDPOINT_URL": self.s3_endpoint_url,
            "AWS_REGION": self.s3_region,
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            "AWS_SESSION_TOKEN": self.aws_session_token,
        }
        return WarehousePaths(
            root,
            s3_options(options) if is_remote(root) else {},
            self.catalog_path,
        )

    @property
    def staging(self) -> StagingArea:
        return self.paths.staging


class Progress:
    """Progress of a long step. Runs started from the CLI pass one that draws a bar."""

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass

    def stop(self) -> None:
        pass


class PolarsParquetIOManager(dg.ConfigurableIOManager):
    """Stores each asset's Polars frame as `<warehouse>/staging/assets/<key>.parquet`, on
    the warehouse's storage (so steps in other processes or pods can read it), each file
    written whole."""

    warehouse: dg.ResourceDependency[WarehouseResource]

    @staticmethod
    def _path(key: dg.AssetKey) -> str:
        return f"staging/assets/{'__'.join(key.path)}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame) -> None:
        storage = self.warehouse.paths.storage
        # LZ4, not zstd: these files live for one run, and both ends take 40% less time.
        # A LazyFrame (papers kept by reference) is streamed into the file as it is read.
        storage.write_parquet(obj, self._path(context.asset_key), compression="lz4")
        uri = storage.uri(self._path(context.asset_key))
        context.add_output_metadata({"path": dg.MetadataValue.path(uri)})

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        return self.warehouse.paths.storage.read_parquet([self._path(context.asset_key)])


class StepOutputIOManager(dg.ConfigurableIOManager):
    """Small values passed between steps (batches of digest keys, their summary rows) as
    JSON under `<warehouse>/staging/steps/<run_id>/`, on the warehouse's storage, so a
    step in another process, pod or machine reads what the previous step wrote."""

    warehouse: dg.ResourceDependency[WarehouseResource]

    @staticmethod
    def _path(context: dg.OutputContext) -> str:
        return "staging/steps/" + "/".join(context.get_identifier()) + ".json"

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        self.warehouse.paths.storage.write_bytes(self._path(context), json.dumps(obj).encode())

    def load_input(self, context: dg.InputContext):
        data = self.warehouse.paths.storage.read_bytes(self._path(context.upstream_output))
        return json.loads(data)
