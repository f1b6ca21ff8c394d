"""The one entry point of the Dagster code location (see workspace.yaml)."""

import dagster as dg

from pipelines.defs.automation import (
    INGEST_ASSETS,
    housekeeping,
    housekeeping_schedule,
    landing_sensor,
)
from pipelines.defs.ingestion import STEP_IO_MANAGER, digest_entries
from pipelines.defs.publishing import duckdb_catalog, release, warehouse_tables
from pipelines.defs.resources import (
    PolarsParquetIOManager,
    Progress,
    StepOutputIOManager,
    WarehouseResource,
)

# Parse, build, publish. Steps run on Dagster's default executor: the multiprocess one
# (`execution: config: multiprocess: max_concurrent: N` in the run config), or in process
# with `execution: config: in_process: {}`; README.md shows the k8s and Celery executors.
ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.assets(*INGEST_ASSETS),
    description="Parse the selected digest partitions, then build and publish a release.",
)


def build_definitions(
    warehouse: WarehouseResource | None = None,
    progress: Progress | None = None,
    executor: dg.ExecutorDefinition | None = None,
) -> dg.Definitions:
    """The definitions, with the warehouse, progress reporter and executor a caller
    chooses (the CLI passes its own; `dagster dev` takes the defaults; a deployment may pass
    dagster-k8s's or dagster-celery's executor: see README.md)."""
    warehouse = warehouse or WarehouseResource()
    return dg.Definitions(
        executor=executor,
        assets=[digest_entries, warehouse_tables, release, duckdb_catalog, housekeeping],
        jobs=[ingest_job],
        sensors=[landing_sensor],
        schedules=[housekeeping_schedule],
        resources={
            "warehouse": warehouse,
            "io_manager": PolarsParquetIOManager(warehouse=warehouse),
            STEP_IO_MANAGER: StepOutputIOManager(warehouse=warehouse),
            "progress": dg.ResourceDefinition.hardcoded_resource(progress or Progress()),
        },
    )


defs = build_definitions()


def get_ingest_job() -> dg.JobDefinition:
    """The ingest job, resolved: `dg.reconstructable(get_ingest_job)` lets an executor that
    runs steps in other processes load it there."""
    return defs.resolve_job_def("ingest")
