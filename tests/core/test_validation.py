import polars as pl
import pytest

from pipelines.core.validation import SchemaContractError, validate
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
