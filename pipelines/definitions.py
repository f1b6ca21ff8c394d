"""The one entry point of the Dagster code location (see workspace.yaml)."""

import dagster as dg

from pipelines.defs.automation import housekeeping, housekeeping_schedule, landing_sensor
from pipelines.defs.ingestion import digest_entries
from pipelines.defs.publishing import duckdb_catalog, release, warehouse_tables
from pipelines.defs.resources import PolarsParquetIOManager, Progress, WarehouseResource


def build_definitions(
    warehouse: WarehouseResource | None = None, progress: Progress | None = None
) -> dg.Definitions:
    """The definitions, with the warehouse and progress reporter a caller chooses
    (the CLI passes its own; `dagster dev` takes the defaults)."""
    warehouse = warehouse or WarehouseResource()
    return dg.Definitions(
        assets=[digest_entries, warehouse_tables, release, duckdb_catalog, housekeeping],
        sensors=[landing_sensor],
        schedules=[housekeeping_schedule],
        resources={
            "warehouse": warehouse,
            "io_manager": PolarsParquetIOManager(warehouse=warehouse),
            "progress": dg.ResourceDefinition.hardcoded_resource(progress or Progress()),
        },
    )


defs = build_definitions()
