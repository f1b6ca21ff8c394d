"""Run a Pandera model over a frame and split it into valid rows and failures."""

from __future__ import annotations

from dataclasses import dataclass

import pandera.errors
import pandera.polars as pa
import polars as pl


class SchemaContractError(Exception):
    """The frame's shape (columns, dtypes) breaks the model: a bug, not bad input."""


@dataclass(frozen=True)
class Validated:
    valid: pl.DataFrame
    # One row per failing input row: `row` (index into the input) and `checks`
    # (the failing checks, e.g. "title:str_length(1, None)").
    failures: pl.DataFrame

    @property
    def n_failed(self) -> int:
        return self.failures.height


_NO_FAILURES = pl.DataFrame(schema={"row": pl.UInt32, "checks": pl.String})


def validate(frame: pl.DataFrame, model: type[pa.DataFrameModel]) -> Validated:
    """Validate every row; rows that fail a check are split off, never silently dropped.

    Raises SchemaContractError when the failure is about the frame as a whole (a missing
    column, a wrong dtype), because no row of it can then be trusted."""
    try:
        model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        whole = cases.filter(pl.col("index").is_null())
        if whole.height:
            described = "; ".join(
                f"{c['column']}: {c['check']} ({c['failure_case']})"
                for c in whole.head(5).iter_rows(named=True)
            )
            raise SchemaContractError(f"{model.__name__}: {described}") from errors
        failures = (
            cases.with_columns(
                row=pl.col("index").cast(pl.UInt32),
                check=pl.when(pl.col("schema_context") == "DataFrameSchema")
                .then(pl.col("check"))
                .otherwise(pl.col("column") + ":" + pl.col("check")),
            )
            .group_by("row")
            .agg(checks=pl.col("check").unique().sort().str.join(", "))
            .sort("row")
        )
        valid = (
            frame.with_row_index("__row")
            .filter(~pl.col("__row").is_in(failures["row"].implode()))
            .drop("__row")
        )
        return Validated(valid, failures)
    return Validated(frame, _NO_FAILURES)
