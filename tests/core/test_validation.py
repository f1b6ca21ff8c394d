import datetime as dt

import pandera.errors
import pandera.polars
import polars as pl
import pytest

from pipelines.core.build import Previous, build_tables
from pipelines.core.parsing import parse_digest
from pipelines.core.publish import publish_release, read_table
from pipelines.core.staging import StagingArea, stage_digests
from pipelines.core.synthetic import generate_digests
from pipelines.core.validation import SchemaContractError, _screen, validate
from pipelines.core.warehouse import WarehousePaths
from schemas.tables import TABLE_SCHEMAS, EntrySchema, RelatedPaperSchema, empty_frame


def related(rows):
    schema = empty_frame(RelatedPaperSchema).schema
    return pl.DataFrame(rows, schema=schema, orient="row")


# (paper_id, related_id, score, rank): a score above 1 breaks the schema.
GOOD = ("p000000000000001", "p000000000000002", 0.5, 1)


def test_rows_marked_passed_are_not_checked_again_the_others_are():
    frame = related(
        [
            ("p000000000000001", "p000000000000002", 7.0, 1),  # marked passed
            ("p000000000000003", "p000000000000002", 7.0, 1),
            ("p000000000000004", "p000000000000002", 0.5, 1),
        ]
    )
    checked = validate(frame, RelatedPaperSchema, pl.col("paper_id") == "p000000000000001")
    assert checked.failures["row"].to_list() == [1]  # its row in the whole frame
    assert checked.valid["paper_id"].to_list() == ["p000000000000001", "p000000000000004"]
    assert validate(frame, RelatedPaperSchema).failures["row"].to_list() == [0, 1]


def test_rows_none_of_which_passed_are_checked_as_a_frame_without_marks_is():
    frame = related([GOOD, ("p000000000000003", "p000000000000002", 7.0, 1), GOOD])
    marked = validate(frame, RelatedPaperSchema, pl.lit(False))
    unmarked = validate(frame, RelatedPaperSchema)
    assert marked.failures.equals(unmarked.failures)
    assert marked.failures["row"].to_list() == [0, 1, 2]  # a score above 1, a repeated key
    assert marked.valid.height == 0


def test_a_new_row_repeating_a_passed_rows_unique_key_fails_with_it():
    frame = related([GOOD, ("p000000000000005", "p000000000000002", 0.4, 1), GOOD])
    checked = validate(frame, RelatedPaperSchema, pl.int_range(pl.len()) < 2)
    assert checked.failures["row"].to_list() == [0, 2]
    assert "unique" in checked.failures["checks"][0]
    assert checked.valid.height == 1


def test_a_frame_whose_rows_all_passed_still_has_its_columns_checked():
    frame = related([GOOD]).drop("score")
    with pytest.raises(SchemaContractError):
        validate(frame, RelatedPaperSchema, pl.lit(True))


@pytest.mark.parametrize("model", [*TABLE_SCHEMAS.values(), EntrySchema])
def test_every_model_refuses_a_column_the_contract_does_not_name(model):
    frame = empty_frame(model).with_columns(unnamed=pl.lit(1))
    with pytest.raises(SchemaContractError, match="unnamed"):
        validate(frame, model)


# The screen: Pandera's checks in one query, Pandera itself only when something fails.


def _pandera_passes(frame: pl.DataFrame, model) -> bool:
    try:
        model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors:
        return False
    return True


@pytest.fixture(scope="module")
def valid_tables(tmp_path_factory) -> dict[str, pl.DataFrame]:
    """Every table as the pipeline makes it, from synthetic digests and one damaged
    digest (for quarantine rows), published once for releases and paper_changes."""
    landed = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    texts = [text.encode() for _, text in generate_digests(4, seed=3, entries_per_digest=12)]
    texts.append(b"Subscribe\n\nMar 30\n\nA title whose abstract never came\n")
    staged = stage_digests(
        [parse_digest(data, f"d{i}.txt", landed) for i, data in enumerate(texts)]
    )
    tables = build_tables(
        *(pl.concat([getattr(s, kind) for s in staged]) for kind in StagingArea.FILES),
        Previous.nothing(),
    )
    paths = WarehousePaths(tmp_path_factory.mktemp("screen") / "warehouse")
    publish_release(paths, tables)
    return {
        **tables,
        "entries": pl.concat([s.entries for s in staged]),
        "releases": read_table(paths, "releases"),
        "paper_changes": read_table(paths, "paper_changes"),
    }


MODELS = {**TABLE_SCHEMAS, "entries": EntrySchema}


def _bad_values(dtype: pl.DataType) -> list:
    """Values that break some column's checks, by dtype."""
    if dtype == pl.String:
        return ["", "x"]
    if dtype.is_integer():
        return [0, 11] if dtype.is_unsigned_integer() else [0, -1, 11]
    if dtype.is_float():
        return [0.0, 7.0, float("nan")]
    if dtype == pl.Date:
        return [dt.date(1900, 1, 1), dt.date(2100, 1, 1)]
    if dtype == pl.List(pl.String):
        return [[], ["zzz"]]
    if isinstance(dtype, pl.List):
        return [[{"url": "https://example.org", "kind": "bogus"}]]
    return []


def _mutations(frame: pl.DataFrame):
    """(what, frame) pairs: each one cell changed, a row repeated, a column too many,
    missing or of another dtype."""
    first = pl.int_range(pl.len()) == 0
    for name, dtype in frame.schema.items():
        for value in [None, *_bad_values(dtype)]:
            changed = pl.when(first).then(pl.lit(value, dtype)).otherwise(pl.col(name))
            yield f"{name}={value!r}", frame.with_columns(changed.alias(name))
    yield "a repeated row", pl.concat([frame, frame.head(1)])
    yield "an unnamed column", frame.with_columns(unnamed=pl.lit(1))
    yield "a missing column", frame.drop(frame.columns[-1])
    yield (
        "a column of another dtype",
        frame.with_columns(pl.col(frame.columns[0]).cast(pl.String).cast(pl.Categorical)),
    )


@pytest.mark.parametrize("table", sorted(MODELS))
def test_the_screen_passes_what_pandera_passes_and_nothing_else(valid_tables, table):
    model, frame = MODELS[table], valid_tables[table]
    assert frame.height > 0, f"the fixture made no {table} rows to mutate"
    assert _screen(model)(frame), f"valid {table} must pass the screen, or it saves nothing"
    for what, mutated in _mutations(frame):
        assert _screen(model)(mutated) == _pandera_passes(mutated, model), what


def test_failures_found_past_the_screen_are_pandera_s(valid_tables):
    frame = valid_tables["related_papers"].with_columns(
        score=pl.when(pl.int_range(pl.len()) == 1).then(7.0).otherwise(pl.col("score"))
    )
    checked = validate(frame, RelatedPaperSchema)
    assert checked.failures.rows() == [(1, "score:less_than_or_equal_to(1.0001)")]
    assert checked.valid.height == frame.height - 1


def test_a_check_that_raises_is_reported_as_pandera_reports_it_not_raised_by_the_screen():
    class Model(pandera.polars.DataFrameModel):
        value: int = pandera.polars.Field()

        @pandera.polars.check("value")
        def breaks(cls, data) -> pl.LazyFrame:
            raise RuntimeError("a check with a bug")

        class Config:
            strict = True

    # Pandera reports a check that raises as failing the whole frame: a contract error.
    with pytest.raises(SchemaContractError, match="breaks"):
        validate(pl.DataFrame({"value": [1, 2]}), Model)
