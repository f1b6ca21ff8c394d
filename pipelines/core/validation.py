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


def validate(
    frame: pl.DataFrame, model: type[pa.DataFrameModel], passed: pl.Expr | None = None
) -> Validated:
    """Validate every row; rows that fail a check are split off, never silently dropped.

    `passed` (a boolean expression over the frame) marks rows known to pass already: rows
    a release published as they are, which passed this model then. They are not checked
    again but for their unique keys, so only the rows a build made are, and the work
    follows what is new rather than the whole table.

    Raises SchemaContractError when the failure is about the frame as a whole (a missing
    column, a wrong dtype), because no row of it can then be trusted."""
    if passed is not None and frame.height:
        return _validate_unpassed(frame, model, frame.select(passed).to_series())
    return _validate(frame, model)


def _validate_unpassed(
    frame: pl.DataFrame, model: type[pa.DataFrameModel], passed: pl.Series
) -> Validated:
    """validate() of the rows not `passed`, and of the passed rows sharing a unique key
    with one of them: uniqueness is a check across rows."""
    rows = frame.with_row_index("__row")
    checked = ~passed
    for key in _unique_keys(model):
        shared = rows.filter(checked).select(key)
        sharing = rows.select("__row", *key).join(shared, on=key, how="semi")["__row"]
        checked = checked | rows["__row"].is_in(sharing.implode())
    subset = rows.filter(checked)
    result = _validate(subset.drop("__row"), model)
    if not result.n_failed:
        return Validated(frame, _NO_FAILURES)
    failures = result.failures.with_columns(row=subset["__row"].gather(result.failures["row"]))
    return Validated(_without_rows(frame, failures["row"]), failures)


def _unique_keys(model: type[pa.DataFrameModel]) -> list[list[str]]:
    """The column sets whose values must be unique across rows."""
    schema = model.to_schema()
    keys = [[name] for name, column in schema.columns.items() if column.unique]
    if schema.unique:
        keys.append(list(schema.unique))
    return keys


def _validate(frame: pl.DataFrame, model: type[pa.DataFrameModel]) -> Validated:
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
        return Validated(_without_rows(frame, failures["row"]), failures)
    return Validated(frame, _NO_FAILURES)


def _without_rows(frame: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    """`frame` without the rows numbered in `rows`."""
    return (
        frame.with_row_index("__row").filter(~pl.col("__row").is_in(rows.implode())).drop("__row")
    )
