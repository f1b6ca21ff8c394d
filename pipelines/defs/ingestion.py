"""One dynamic partition per landed digest file, and the asset that parses them.

`digest_entries` is a graph: the partitions of a run are split into batches, each batch
is parsed by its own step (run side by side by the multiprocess, k8s or Celery executor),
and a last step reports what was parsed and checks the line accounting."""

import dagster as dg
import polars as pl

from pipelines.core.landing import LandingError, ingest_landed_files
from pipelines.core.parsing import PARSER_VERSION
from pipelines.defs.metadata import column_schema, markdown_table
from pipelines.defs.resources import Progress, WarehouseResource
from schemas.tables import EntrySchema

digest_partitions = dg.DynamicPartitionsDefinition(name="digests")
# A backfill is split into runs of at most this many digests: Dagster records a
# partitioned check's planned evaluation once per partition, each copy listing every
# partition of the run, so one run of 10,000 digests would hold 10,000² keys in memory.
MAX_DIGESTS_PER_RUN = 1000

_RETRY_TRANSIENT_IO = dg.RetryPolicy(max_retries=2, delay=1, backoff=dg.Backoff.EXPONENTIAL)
# Outputs passed between the parsing steps: small JSON files on the warehouse's storage,
# so steps in other processes, pods or machines can read them.
STEP_IO_MANAGER = "step_io_manager"


class ParseBatchesConfig(dg.Config):
    digests_per_step: int = 100  # fewer: more steps side by side; more: less overhead


@dg.op(out=dg.DynamicOut(list, io_manager_key=STEP_IO_MANAGER))
def plan_parse_batches(
    context: dg.OpExecutionContext, config: ParseBatchesConfig, progress: dg.ResourceParam[Progress]
):
    """Split the run's digest partitions into batches of `digests_per_step`."""
    keys = context.partition_keys
    progress.start(len(keys), "Parsing digests")
    for number, batch in enumerate(batches_of(keys, config.digests_per_step)):
        yield dg.DynamicOutput(batch, mapping_key=f"batch_{number}")


def batches_of(keys: list[str], size: int) -> list[list[str]]:
    size = max(1, size)
    return [keys[start : start + size] for start in range(0, len(keys), size)]


@dg.op(out=dg.Out(list, io_manager_key=STEP_IO_MANAGER), retry_policy=_RETRY_TRANSIENT_IO)
def parse_digest_batch(
    context: dg.OpExecutionContext,
    warehouse: WarehouseResource,
    progress: dg.ResourceParam[Progress],
    keys: list,
) -> list:
    """Parse and stage one batch of landed digests; returns a summary row per digest.
    Fails (after staging the others) on I/O errors, retried, or on a parser bug, not."""
    rows, failed, io_errors = [], [], []
    for outcome in ingest_landed_files(
        warehouse.landing, keys, warehouse.staging, max_file_bytes=warehouse.max_file_bytes
    ):
        progress.advance()
        key, error = outcome.key, outcome.error
        if isinstance(error, LandingError):
            context.log.warning(str(error))
            rows.append({"digest": key, "status": "unreadable", "message": str(error)})
            continue
        if isinstance(error, OSError):  # possibly transient: the step fails and is retried
            context.log.warning(f"{key}: I/O error {error}")
            io_errors.append(f"{key}: {error}")
            continue
        if error is not None:  # one digest's surprise must not stop the others
            context.log.error(f"{key}: unexpected failure: {error!r}")
            failed.append(f"{key}: {type(error).__name__}: {error}")
            continue
        digest = outcome.digest
        status = "rejected" if digest["digest_date"] is None else "parsed"
        rows.append(
            {
                "digest": key,
                "status": status if outcome.fresh else f"{status} (unchanged)",
                "message": digest["warnings"] or "",
                "date": str(digest["digest_date"]),
                "valid": digest["n_valid"],
                "quarantined": digest["n_quarantined"],
                "lines": digest["n_lines"],
                "accounted": digest["n_header_lines"]
                + 2 * digest["n_valid"]
                + digest["n_quarantined_lines"],
            }
        )
    if io_errors:
        raise dg.Failure(
            description=f"I/O errors reading {len(io_errors)} digests; the step will be retried",
            metadata={"io_errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in io_errors))},
        )
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(keys)} digests failed to parse; "
            "the others were staged",
            metadata={"failures": dg.MetadataValue.md("\n".join(f"- {f}" for f in failed))},
            allow_retries=False,  # a parser bug is not transient; retrying cannot help
        )
    return rows


def parse_report(rows: list[dict], n_digests: int) -> tuple[dict, pl.DataFrame]:
    """Materialization metadata of a parse run, and the digests whose lines do not add up."""
    summary = pl.DataFrame(rows, infer_schema_length=None)
    parsed = summary.filter(pl.col("lines").is_not_null()) if "lines" in summary.columns else None
    metadata: dict = {
        "digests_in_run": n_digests,
        "parser_version": PARSER_VERSION,
        "digests": dg.MetadataValue.md(markdown_table(summary.drop("accounted", strict=False), 50)),
        "valid_entries": int(parsed["valid"].sum()) if parsed is not None else 0,
        "quarantined": int(parsed["quarantined"].sum()) if parsed is not None else 0,
        "digests_checked": 0 if parsed is None else parsed.height,
    }
    if len(rows) == 1:  # one digest per run (sensor, or a click in the UI): its own figures
        metadata.update({k: v for k, v in rows[0].items() if k in ("date", "status")})
    if parsed is None:
        return metadata, pl.DataFrame()
    return metadata, parsed.filter(pl.col("lines") != pl.col("accounted"))


@dg.op(out={"result": dg.Out(dg.Nothing), "lines_accounted": dg.Out(dg.Nothing)})
def report_parsed_digests(
    context: dg.OpExecutionContext, progress: dg.ResourceParam[Progress], batches: list
):
    """The run's parse results as materialization metadata, and the line-accounting check."""
    progress.stop()
    metadata, unbalanced = parse_report(
        [row for batch in batches for row in batch], len(context.partition_keys)
    )
    checked = metadata.pop("digests_checked")
    yield dg.Output(None, "result", metadata=metadata)
    yield dg.AssetCheckResult(
        asset_key="digest_entries",
        check_name="lines_accounted",
        passed=unbalanced.height == 0,
        metadata={
            "digests_checked": checked,
            "unbalanced": dg.MetadataValue.md(
                markdown_table(unbalanced) if unbalanced.height else "_none_"
            ),
        },
    )


@dg.graph_asset(
    partitions_def=digest_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_DIGESTS_PER_RUN),
    group_name="ingestion",
    kinds={"polars", "pandera"},
    owners=["team:data-engineering"],
    metadata={"dagster/column_schema": column_schema(EntrySchema)},
    check_specs=[
        dg.AssetCheckSpec(
            "lines_accounted",
            asset="digest_entries",
            partitions_def=digest_partitions,
            description="Every non-blank line of the digest is a header/date line, half of a "
            "valid entry, or quarantined",
        )
    ],
)
def digest_entries():
    """Parse landed digest files into title/abstract entries and validate them.

    Header and date lines are recognised; broken records and unreadable files become
    quarantine rows with a reason. The result is staged under the file's sha256, so the
    same bytes landing again are not parsed twice. A backfill covers many digests in one
    run, parsed in batches by parallel steps; the run's metadata lists each digest."""
    batches = plan_parse_batches().map(parse_digest_batch).collect()
    return report_parsed_digests(batches)
