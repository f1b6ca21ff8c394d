"""Run a Pandera model over a frame and split it into valid rows and failures."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pandera.errors
import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.backends.polars.checks import PolarsCheckBackend
from pandera.constants import CHECK_OUTPUT_KEY


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
    frame: pl.DataFrame,
    model: type[pa.DataFrameModel],
    passed: pl.Expr | pl.Series | None = None,
) -> Validated:
    """Validate every row; rows that fail a check are split off, never silently dropped.

    `passed` (a boolean expression over the frame, or its values) marks rows known to pass
    already: rows a release published as they are, which passed this model then. They are
    not checked again but for their unique keys, so only the rows a build made are, and
    the work follows what is new rather than the whole table.

    Raises SchemaContractError when the failure is about the frame as a whole (a missing
    column, a wrong dtype), because no row of it can then be trusted."""
    if passed is not None and frame.height:
        mask = passed if isinstance(passed, pl.Series) else frame.select(passed).to_series()
        return _validate_unpassed(frame, model, mask)
    return _validate(frame, model)


def _validate_unpassed(
    frame: pl.DataFrame, model: type[pa.DataFrameModel], passed: pl.Series
) -> Validated:
    """validate() of the rows not `passed`, and of the passed rows sharing a unique key
    with one of them: uniqueness is a check across rows."""
    if not passed.any():  # as when a full build made every row: all of them checked as one
        return _validate(frame, model)
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
    return keys + _unique_column_sets(schema)


def _unique_column_sets(schema: pa.DataFrameSchema) -> list[list[str]]:
    """The schema's `unique` option: one set of columns, or a list of them."""
    if not schema.unique:
        return []
    if all(isinstance(name, str) for name in schema.unique):
        return [list(schema.unique)]
    return [list(names) for names in schema.unique]


def _validate(frame: pl.DataFrame, model: type[pa.DataFrameModel]) -> Validated:
    if _screen(model)(frame):
        return Validated(frame, _NO_FAILURES)
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


# Config a screen does not model: a schema using any of it is always run through Pandera.
_UNSCREENED_CONFIG = ("coerce", "ordered", "add_missing_columns", "drop_invalid_rows")


@functools.cache
def _screen(model: type[pa.DataFrameModel]) -> Callable[[pl.DataFrame], bool]:
    """A function telling whether a frame passes every check of `model` for sure.

    Pandera's polars backend collects a query for each check of each column, three or
    more a column, each with Python bookkeeping around it: 12-37 ms for a table of 70
    rows. The screen runs the very same checks (the model's dtypes, nullability and
    uniqueness, each Check's own function with its null handling) as one collect_all:
    2-8 ms. Only when it finds anything amiss, or the model uses config it does not
    model, does Pandera run, so every failure reported is Pandera's own."""
    schema = model.to_schema()
    schema.register_default_backends(pl.LazyFrame)  # as Pandera's validate() does first
    if (
        pa.Check.get_backend(pl.LazyFrame()) is not PolarsCheckBackend  # e.g. Narwhals'
        or not schema.strict
        or schema.dtype is not None
        or any(getattr(schema, name, False) for name in _UNSCREENED_CONFIG)
        or any(c.regex or c.coerce or not c.required for c in schema.columns.values())
    ):
        return lambda frame: False
    names = set(schema.columns)
    keys = _unique_column_sets(schema)

    def passes(frame: pl.DataFrame) -> bool:
        try:
            return checked(frame)
        except Exception:  # a check that raises: Pandera reports it as that check failing
            return False

    def checked(frame: pl.DataFrame) -> bool:
        if set(frame.columns) != names:
            return False
        lazy = frame.lazy()
        verdicts: list[pl.LazyFrame] = []
        for name, column in schema.columns.items():
            if column.dtype is not None and not _all_true(
                column.dtype.check(frame.schema[name], PolarsData(lazy.select(name), name))
            ):
                return False
            if not column.nullable:
                not_null = pl.col(name).is_not_null()
                if frame.schema[name].is_float():  # Pandera counts NaN as null
                    not_null = not_null & pl.col(name).is_not_nan()
                verdicts.append(lazy.select(not_null.all()))
            if column.unique:
                verdicts.append(lazy.select(pl.col(name).is_duplicated().any().not_()))
            verdicts += [_check_verdict(check, lazy, name) for check in column.checks]
        verdicts += [_check_verdict(check, lazy, "*") for check in schema.checks]
        if any(frame.select(key).is_duplicated().any() for key in keys):
            return False
        if not verdicts:
            return True
        return all(result.item() is True for result in pl.collect_all(verdicts))

    return passes


def _check_verdict(check: pa.Check, lazy: pl.LazyFrame, key: str) -> pl.LazyFrame:
    """One row, one boolean: whether every row passes `check`, as Pandera decides it: its
    check backend applies the check, and a null outcome passes when the check ignores
    nulls (the default) and fails otherwise."""
    # As Check.__call__ does: a built-in check takes its function for the data's type now.
    name = getattr(check._check_fn, "__name__", None)
    if name is not None and check.is_builtin_check(name):
        check._check_fn = check.get_builtin_check_fn(name)
    out = PolarsCheckBackend(check).apply(PolarsData(lazy, key))
    if isinstance(out, bool):
        return pl.LazyFrame({CHECK_OUTPUT_KEY: [out]})
    outcome = pl.col(CHECK_OUTPUT_KEY)
    outcome = outcome | outcome.is_null() if check.ignore_na else outcome.fill_null(False)
    return out.select(outcome.all())


def _all_true(verdict) -> bool:
    return verdict is True or (not isinstance(verdict, bool) and all(v is True for v in verdict))
