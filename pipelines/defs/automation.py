"""The landing sensor and the housekeeping schedule."""

import hashlib
import json
import time

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from pipelines.core.landing import scan_landing
from pipelines.core.landing_watch import plan_tick
from pipelines.core.maintenance import check_release, compact_releases, vacuum
from pipelines.defs.ingestion import digest_entries, digest_partitions
from pipelines.defs.publishing import duckdb_catalog, release, warehouse_tables
from pipelines.defs.resources import WarehouseResource

INGEST_ASSETS = [digest_entries, warehouse_tables, release, duckdb_catalog]
# Hashing is the tick's real work; this many files keeps a tick far below the 60 s limit.
MAX_FILES_PER_TICK = 500
SETTLE_SECONDS = 30.0


def _covering_run(keys_and_hashes: list[tuple[str, str]], changed: bool) -> dg.RunRequest:
    """One run over a contiguous range of digest partitions (a single-run backfill)."""
    keys = [k for k, _ in keys_and_hashes]
    fingerprint = hashlib.sha256(
        "\n".join(f"{k}\t{h}" for k, h in keys_and_hashes).encode()
    ).hexdigest()[:16]
    return dg.RunRequest(
        run_key=f"{keys[0]}@{keys_and_hashes[0][1][:16]}"
        if len(keys) == 1
        else f"batch-{len(keys)}@{fingerprint}",
        tags={
            ASSET_PARTITION_RANGE_START_TAG: keys[0],
            ASSET_PARTITION_RANGE_END_TAG: keys[-1],
            "papers/digests": str(len(keys)),
            "papers/reason": "changed" if changed else "new",
        },
    )


@dg.sensor(
    target=INGEST_ASSETS,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Watches the landing folder: registers a partition per new digest file and "
    "ingests new and changed files (by content hash) once they stop changing.",
)
def landing_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    landing = warehouse.landing
    if not landing.is_dir():
        return dg.SkipReason(f"landing folder {landing} does not exist")
    files, skipped = scan_landing(landing)
    for message in skipped:
        context.log.warning(message)
    state = json.loads(context.cursor) if context.cursor else {}
    plan = plan_tick(landing, files, state, time.time_ns(), MAX_FILES_PER_TICK, SETTLE_SECONDS)
    for key in plan.deleted:
        context.log.info(f"{key}: deleted from landing; its published data is kept")
    known = set(context.instance.get_dynamic_partitions(digest_partitions.name))
    new = [(k, h) for k, h in plan.requests if k not in known]
    changed = [(k, h) for k, h in plan.requests if k in known]
    runs = []
    if new:  # added in one request, so they are contiguous at the end: one run covers all
        runs.append(_covering_run(new, changed=False))
    runs += [_covering_run([item], changed=True) for item in changed]
    notes = []
    if plan.waiting:
        notes.append(f"{len(plan.waiting)} still being written")
    if plan.deferred:
        notes.append(f"{plan.deferred} deferred to the next tick")
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[digest_partitions.build_add_request([k for k, _ in new])]
        if new
        else [],
        cursor=json.dumps(plan.state, sort_keys=True),
        skip_reason=None
        if runs
        else f"no new or changed digests in {landing}"
        + (f" ({', '.join(notes)})" if notes else ""),
    )


class HousekeepingConfig(dg.Config):
    vacuum: bool = True
    keep_releases: int = 30
    min_retention_hours: float = 168.0
    compact: bool = True
    check: bool = True


@dg.asset(
    deps=[duckdb_catalog],
    group_name="maintenance",
    kinds={"deltalake"},
    owners=["team:data-engineering"],
    check_specs=[dg.AssetCheckSpec("release_consistent", asset="housekeeping")],
)
def housekeeping(
    context: dg.AssetExecutionContext, config: HousekeepingConfig, warehouse: WarehouseResource
):
    """Daily upkeep of the published warehouse: vacuum Delta files no retained release
    needs (the last `keep_releases` releases and anything younger than
    `min_retention_hours` stay), compact the releases table, and check the latest release
    end to end (row counts, schemas, nothing-lost accounting, catalog views)."""
    paths = warehouse.paths
    metadata: dict = {}
    if config.vacuum:
        report = vacuum(paths, config.keep_releases, config.min_retention_hours)
        metadata["files_vacuumed"] = sum(report.removed.values())
    if config.compact:
        metadata["release_files_compacted"] = compact_releases(paths)
    problems = check_release(paths) if config.check else []
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "checked": config.check,
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "_none_"),
        },
    )


housekeeping_schedule = dg.ScheduleDefinition(
    name="daily_housekeeping",
    target=[housekeeping],
    cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Vacuum, compaction and a consistency check of the published release, daily.",
)
