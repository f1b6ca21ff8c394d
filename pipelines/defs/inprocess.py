"""Run the asset graph in this process: what `papers ingest` does."""

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from pipelines.core.landing import DEFAULT_MAX_FILE_BYTES, scan_landing
from pipelines.core.publish import latest_release
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
    warehouse: Path,
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
    defs = build_definitions(resource, progress)
    before = latest_release(resource.paths)
    instance = instance or dg.DagsterInstance.ephemeral()
    keys = [f.key for f in files]
    known = set(instance.get_dynamic_partitions(digest_partitions.name))
    instance.add_dynamic_partitions(digest_partitions.name, [k for k in keys if k not in known])
    tags, selection = {}, dg.AssetSelection.assets(*INGEST_ASSETS)
    if keys:
        landed = set(keys)
        ordered = [
            k for k in instance.get_dynamic_partitions(digest_partitions.name) if k in landed
        ]
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: ordered[0],
            ASSET_PARTITION_RANGE_END_TAG: ordered[-1],
        }
    else:  # nothing landed: still publish (an empty release) and keep the catalog current
        selection = selection - dg.AssetSelection.assets(digest_entries)
    dg.materialize(  # raises when the run fails
        defs.assets,
        selection=selection,
        resources=defs.resources,
        instance=instance,
        tags=tags,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    after = latest_release(resource.paths)
    published = after is not None and (before is None or after["release"] != before["release"])
    return IngestOutcome(len(files), after, published, skipped)
