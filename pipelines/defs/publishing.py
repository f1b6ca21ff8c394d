"""The published tables, the release that publishes them, and the DuckDB catalog."""

import dagster as dg
import polars as pl

from pipelines.core.build import build_from_staging, built_from
from pipelines.core.card import card_for
from pipelines.core.catalog import view_row_counts
from pipelines.core.publish import (
    latest_release,
    previous_build,
    publish_release,
    refresh_catalog,
)
from pipelines.defs.ingestion import digest_entries
from pipelines.defs.metadata import column_schema, markdown_table, table_metadata
from pipelines.defs.resources import WarehouseResource
from schemas.tables import ALL_TABLES, PUBLISHED_TABLES, TABLE_SCHEMAS

_TABLE_DESCRIPTIONS = {
    "digests": "One row per landed digest file: its date, status and line accounting.",
    "appearances": "One row per paper per digest date, with position and source lines.",
    "papers": "One row per distinct paper, with stable paper_id and enrichment columns.",
    "quarantine": "Every rejected file, record or row, with its reason and raw text.",
    "related_papers": "The 10 most related papers of each paper, by TF-IDF similarity.",
}


@dg.multi_asset(
    outs={
        name: dg.AssetOut(
            description=_TABLE_DESCRIPTIONS[name],
            group_name="warehouse",
            kinds={"polars", "pandera"},
            owners=["team:data-engineering"],
            metadata={"dagster/column_schema": column_schema(TABLE_SCHEMAS[name])},
        )
        for name in PUBLISHED_TABLES
    },
    deps=[digest_entries],
    check_specs=[
        dg.AssetCheckSpec(
            "matches_schema",
            asset=name,
            description=f"Every row of {name} passes {TABLE_SCHEMAS[name].__name__}",
        )
        for name in PUBLISHED_TABLES
    ],
)
def warehouse_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Build digests, appearances, papers, quarantine and related_papers from every staged
    digest.

    Digest statuses follow the identity rules (a later file for the same date supersedes
    the earlier one); papers keep the ids already published. Rows failing their schema
    move to quarantine, so what is published always passes."""
    # The papers kept as published are read from the release's files only where the
    # release needs them: the tables go to it as they are, the papers as a LazyFrame.
    tables = build_from_staging(
        warehouse.staging, previous_build(warehouse.paths), papers_by_reference=True
    )
    quarantine = tables["quarantine"]
    for name in PUBLISHED_TABLES:
        frame = tables[name]
        metadata = table_metadata(frame, TABLE_SCHEMAS[name])
        if name == "digests":
            metadata["by_status"] = dg.MetadataValue.md(
                markdown_table(frame.group_by("status").len().sort("status"), max_rows=10)
            )
        if name == "quarantine":
            metadata["by_reason"] = dg.MetadataValue.md(
                markdown_table(frame.group_by("reason").len().sort("len", descending=True), 20)
            )
        yield dg.Output(frame, output_name=name, metadata=metadata)
        rejected = quarantine.filter(pl.col("stage") == f"schema:{name}")
        yield _schema_check(name, rejected)


def _schema_check(name: str, rejected: pl.DataFrame) -> dg.AssetCheckResult:
    """build_tables validated every row; those that failed were moved to quarantine, so
    what is published passes. The check fails (as a warning) when any row had to move."""
    return dg.AssetCheckResult(
        asset_key=name,
        check_name="matches_schema",
        passed=rejected.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_moved_to_quarantine": rejected.height,
            "sample": dg.MetadataValue.md(
                markdown_table(rejected.select("digest_id", "message"), max_rows=5)
            ),
        },
    )


@dg.asset(
    # The papers come as a DataFrame, or as a LazyFrame when they were kept by reference.
    ins={
        name: dg.AssetIn(name, dagster_type=dg.Any) if name == "papers" else dg.AssetIn(name)
        for name in PUBLISHED_TABLES
    },
    group_name="warehouse",
    kinds={"deltalake"},
    owners=["team:data-engineering"],
    check_specs=[
        dg.AssetCheckSpec(
            "nothing_lost",
            asset="release",
            description="For every digest: non-blank lines = header/date lines "
            "+ 2 x valid entries + quarantined lines",
        )
    ],
)
def release(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    digests: pl.DataFrame,
    appearances: pl.DataFrame,
    papers: pl.DataFrame | pl.LazyFrame,
    quarantine: pl.DataFrame,
    related_papers: pl.DataFrame,
):
    """Publish the tables as the next release of the Delta tables under `tables/`.

    Nothing changed since the last release means no release. The releases table records
    each table's Delta version, row counts and papers added/updated/removed; the DuckDB
    catalog is swapped to the new release atomically."""
    tables = {
        "digests": digests,
        "appearances": appearances,
        "papers": papers,
        "quarantine": quarantine,
        "related_papers": related_papers,
    }
    paths, staging = warehouse.paths, warehouse.staging

    def rebuild_if_stale(built: dict) -> dict:
        if set(staging.digest_ids()) == built_from(built):
            return built
        context.log.info("Digests were staged by another run meanwhile: rebuilding the tables")
        return build_from_staging(staging, previous_build(paths), papers_by_reference=True)

    published = publish_release(paths, tables, rebuild_if_stale=rebuild_if_stale)
    current = published or latest_release(warehouse.paths)
    metadata: dict = {"published": published is not None}
    if current:
        metadata.update(
            {
                "release": int(current["release"]),
                "content_hash": current["content_hash"],
                **{f"{n}_rows": int(current[f"{n}_rows"]) for n in PUBLISHED_TABLES},
                **{
                    k: int(current[k]) for k in ("papers_added", "papers_updated", "papers_removed")
                },
            }
        )
    if current:
        metadata["dataset_card"] = dg.MetadataValue.md(card_for(paths, current["release"]) or "")
    if published is None:
        context.log.info("Nothing changed since the last release: no release published.")
    yield dg.MaterializeResult(metadata=metadata)
    yield nothing_lost_check(digests)


def nothing_lost_check(digests: pl.DataFrame) -> dg.AssetCheckResult:
    unbalanced = digests.filter(
        pl.col("n_lines")
        != pl.col("n_header_lines") + 2 * pl.col("n_valid") + pl.col("n_quarantined_lines")
    )
    return dg.AssetCheckResult(
        check_name="nothing_lost",
        passed=unbalanced.height == 0,
        metadata={
            "digests_checked": digests.height,
            "lines_checked": int(digests["n_lines"].sum() or 0),
            "unbalanced_digests": dg.MetadataValue.md(
                markdown_table(unbalanced.select("source_path", "n_lines", "n_valid"))
            ),
        },
    )


@dg.asset(
    deps=[release],
    group_name="warehouse",
    kinds={"duckdb"},
    owners=["team:data-engineering"],
)
def duckdb_catalog(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """`catalog.duckdb`: one view per table over the Parquet files of the latest release,
    readable by stock DuckDB from any working directory (`duckdb warehouse/catalog.duckdb`).
    Rewritten if it does not point at the latest release."""
    paths = warehouse.paths
    current = latest_release(paths)
    if current is None:
        return dg.MaterializeResult(metadata={"release": 0, "note": "nothing published yet"})
    counts = view_row_counts(paths, current["release"], ALL_TABLES)
    if counts is None:  # it shows another release (or none): written again
        refresh_catalog(paths)
        counts = view_row_counts(paths, current["release"], ALL_TABLES)
    if counts is None:
        raise RuntimeError(f"the catalog {paths.catalog} does not show the latest release")
    return dg.MaterializeResult(
        metadata={
            "release": int(current["release"]),
            "path": dg.MetadataValue.path(str(paths.catalog)),
            "query_with": dg.MetadataValue.md(f"```\nduckdb {paths.catalog}\n```"),
            **{f"{name}_rows": n for name, n in counts.items()},
        }
    )
