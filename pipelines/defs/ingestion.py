"""One dynamic partition per landed digest file, and the asset that parses it."""

import dagster as dg
import polars as pl

from pipelines.core.landing import LandingError, ingest_landed_files
from pipelines.core.parsing import PARSER_VERSION
from pipelines.defs.metadata import column_schema, markdown_table
from pipelines.defs.resources import Progress, WarehouseResource
from schemas.tables import EntrySchema

digest_partitions = dg.DynamicPartitionsDefinition(name="digests")

_RETRY_TRANSIENT_IO = dg.RetryPolicy(max_retries=2, delay=1, backoff=dg.Backoff.EXPONENTIAL)


@dg.asset(
    partitions_def=digest_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=_RETRY_TRANSIENT_IO,
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
def digest_entries(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    progress: dg.ResourceParam[Progress],
):
    """Parse one landed digest file into title/abstract entries and validate them.

    Header and date lines are recognised; broken records and unreadable files become
    quarantine rows with a reason. The result is staged under the file's sha256, so the
    same bytes landing again are not parsed twice. A backfill covers many digests in one
    run; the run's metadata lists each of them."""
    keys = context.partition_keys
    staging = warehouse.staging
    rows, failed, io_errors = [], [], []
    progress.start(len(keys), "Parsing digests")
    for outcome in ingest_landed_files(
        warehouse.landing, keys, staging, max_file_bytes=warehouse.max_file_bytes
    ):
        progress.advance()
        key, error = outcome.key, outcome.error
        if isinstance(error, LandingError):
            context.log.warning(str(error))
            rows.append({"digest": key, "status": "unreadable", "message": str(error)})
            continue
        if isinstance(error, OSError):  # possibly transient: the run fails and is retried
            context.log.warning(f"{key}: I/O error {error}")
            io_errors.append(f"{key}: {error}")
            continue
        if error is not None:  # one digest's surprise must not stop the others
            context.log.error(f"{key}: unexpected failure: {error!r}")
            failed.append(f"{key}: {type(error).__name__}: {error}")
            continue
        staged, fresh = outcome.staged, outcome.fresh
        digest = staged.digest.row(0, named=True)
        status = "rejected" if digest["digest_date"] is None else "parsed"
        rows.append(
            {
                "digest": key,
                "status": status if fresh else f"{status} (unchanged)",
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
    progress.stop()
    if io_errors:
        raise dg.Failure(
            description=f"I/O errors reading {len(io_errors)} digests; the run will be retried",
            metadata={"io_errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in io_errors))},
        )
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(keys)} digests failed to parse; "
            "the others were staged",
            metadata={"failures": dg.MetadataValue.md("\n".join(f"- {f}" for f in failed))},
            allow_retries=False,  # a parser bug is not transient; retrying cannot help
        )
    summary = pl.DataFrame(rows, infer_schema_length=None)
    parsed = summary.filter(pl.col("lines").is_not_null()) if "lines" in summary.columns else None
    metadata: dict = {
        "digests_in_run": len(keys),
        "parser_version": PARSER_VERSION,
        "digests": dg.MetadataValue.md(markdown_table(summary.drop("accounted", strict=False), 50)),
        "valid_entries": int(parsed["valid"].sum()) if parsed is not None else 0,
        "quarantined": int(parsed["quarantined"].sum()) if parsed is not None else 0,
    }
    if len(rows) == 1:  # one digest per run (sensor, or a click in the UI): its own figures
        metadata.update({k: v for k, v in rows[0].items() if k in ("date", "status")})
    yield dg.MaterializeResult(metadata=metadata)
    unbalanced = parsed.filter(pl.col("lines") != pl.col("accounted")) if parsed is not None else []
    yield dg.AssetCheckResult(
        check_name="lines_accounted",
        passed=len(unbalanced) == 0,
        metadata={
            "digests_checked": 0 if parsed is None else parsed.height,
            "unbalanced": dg.MetadataValue.md(
                markdown_table(unbalanced) if len(unbalanced) else "_none_"
            ),
        },
    )
