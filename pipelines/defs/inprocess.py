"""Run the asset graph in this process: what `papers ingest` does."""

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from pipelines.core.build import built_from
from pipelines.core.catalog import ReleaseSources, catalog_release
from pipelines.core.landing import DEFAULT_MAX_FILE_BYTES, scan_landing
from pipelines.core.publish import latest_release, read_release_table
from pipelines.core.staging import StagingArea
from pipelines.core.warehouse import WarehousePaths
from pipelines.definitions import build_definitions
from pipelines.defs.automation import INGEST_ASSETS
from pipelines.defs.ingestion import digest_entries, digest_partitions
from pipelines.defs.resources import Progress, WarehouseResource


@dataclass
class IngestOutcome:
    n_files: int
    release: dict | None  # the latest release after the run
    published: bool  # whether this run published it
    skipped: list[str] = field(default_factory=list)  # landing paths that were not read


def ingest(
    landing: Path,
    warehouse: str | Path,  # a folder or an s3:// URI
    progress: Progress | None = None,
    instance: dg.DagsterInstance | None = None,
    log_level: str = "DEBUG",
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> IngestOutcome:
    """Register one partition per landed file and materialize the whole graph in one run
    (a single-run backfill over all digests; already-staged bytes are not parsed again)."""
    files, skipped = scan_landing(landing)
    resource = WarehouseResource(
        landing_dir=str(landing), warehouse_dir=str(warehouse), max_file_bytes=max_file_bytes
    )
    paths, staging = resource.paths, resource.staging
    before = latest_release(paths)
    # Only files not staged at this size and mtime are parsed; the rest are known.
    index = staging.landed_index()
    keys = [f.key for f in files if index.get(f.key, [])[:2] != [f.size, f.mtime_ns]]
    if not keys and before is not None and _up_to_date(paths, staging, before):
        return IngestOutcome(len(files), before, False, skipped)  # nothing new: no run at all
    defs = build_definitions(resource, progress)
    instance = instance or dg.DagsterInstance.ephemeral()
    known = set(instance.get_dynamic_partitions(digest_partitions.name))
    instance.add_dynamic_partitions(digest_partitions.name, [k for k in keys if k not in known])
    tags, selection = {}, dg.AssetSelection.assets(*INGEST_ASSETS)
    if keys:  # one run over the range that holds the new keys (a single-run backfill)
        wanted = set(keys)
        ordered = [
            k for k in instance.get_dynamic_partitions(digest_partitions.name) if k in wanted
        ]
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: ordered[0],
            ASSET_PARTITION_RANGE_END_TAG: ordered[-1],
        }
    else:  # nothing to parse: rebuild and publish what is staged, refresh the catalog
        selection = selection - dg.AssetSelection.assets(digest_entries)
    result = dg.materialize(  # raises when the run fails
        defs.assets,
        selection=selection,
        resources=defs.resources,
        instance=instance,
        tags=tags,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    # Whether this run published, as its release step says: a concurrent run may have
    # published the very same release meanwhile.
    [event] = result.asset_materializations_for_node("release")
    published = bool(event.metadata["published"].value)
    return IngestOutcome(len(files), latest_release(paths), published, skipped)


def _up_to_date(paths: WarehousePaths, staging: StagingArea, release: dict) -> bool:
    """The latest release was built from exactly what is staged, all its files are there,
    and the catalog shows it."""
    if not ReleaseSources(paths).complete(release):
        return False
    digests = read_release_table(paths, release, "digests").select("digest_id")
    quarantine = read_release_table(paths, release, "quarantine").select("digest_id", "stage")
    built = built_from({"digests": digests, "quarantine": quarantine})
    return (
        built == set(staging.digest_ids()) and catalog_release(paths.catalog) == release["release"]
    )
