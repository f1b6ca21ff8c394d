"""Materialization metadata that makes the Dagster UI tell the story."""

import dagster as dg
import pandera.polars as pa
import polars as pl

from pipelines.core.frames import height_of


def column_schema(model: type[pa.DataFrameModel]) -> dg.TableSchema:
    """The model's columns with their Pandera descriptions, for the UI's schema tab."""
    columns = model.to_schema().columns
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=str(column.dtype),
                description=column.description,
                constraints=dg.TableColumnConstraints(nullable=bool(column.nullable)),
            )
            for name, column in columns.items()
        ]
    )


def markdown_table(frame: pl.DataFrame, max_rows: int = 5, max_chars: int = 60) -> str:
    """A small markdown preview; long cells are shortened."""
    if frame.height == 0:
        return "_no rows_"

    def cell(value) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= max_chars else text[: max_chars - 1] + "…"

    head = frame.head(max_rows)
    lines = [
        "| " + " | ".join(head.columns) + " |",
        "|" + "---|" * len(head.columns),
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()),
    ]
    if frame.height > max_rows:
        lines.append(f"\n_{frame.height - max_rows:,} more rows_")
    return "\n".join(lines)


def table_metadata(frame: pl.DataFrame | pl.LazyFrame, model: type[pa.DataFrameModel]) -> dict:
    """Rows, columns and the first rows of a table (of a LazyFrame: counted and read)."""
    head = frame.head(5).collect() if isinstance(frame, pl.LazyFrame) else frame
    return {
        "dagster/row_count": height_of(frame),
        "dagster/column_schema": column_schema(model),
        "preview": dg.MetadataValue.md(markdown_table(head)),
    }
