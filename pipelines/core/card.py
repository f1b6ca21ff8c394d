"""The dataset card of a release: what it holds, what changed, where it came from, how to
query it. Rendered from the published tables, so any retained release's card can be
rebuilt at any time."""

from __future__ import annotations

import polars as pl

from pipelines.core.catalog import release_schema
from pipelines.core.warehouse import WarehousePaths
from schemas.tables import ALL_TABLES, PUBLISHED_TABLES, TABLE_SCHEMAS

MAX_LISTED_CHANGES = 20


def card_path(number: int) -> str:
    """Where a release's card lives, relative to the warehouse root."""
    return f"cards/release-{int(number)}.md"


def _table(headers: list[str], rows: list[list]) -> list[str]:
    def cell(value) -> str:
        return ("" if value is None else str(value)).replace("|", "\\|").replace("\n", " ")

    return [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows),
    ]


def render_card(
    paths: WarehousePaths, release: dict, digests: pl.DataFrame, changes: pl.DataFrame
) -> str:
    number = int(release["release"])
    lines = [
        f"# Daily Papers dataset, release {number}",
        "",
        f"Published {release['created_at']:%Y-%m-%d %H:%M:%S} UTC by parser "
        f"{release['parser_version']}. Content hash `{release['content_hash']}`.",
        "",
        "## Contents",
        "",
        *_table(
            ["table", "rows", "Delta version"],
            [[n, f"{release[f'{n}_rows']:,}", release[f"{n}_version"]] for n in PUBLISHED_TABLES],
        ),
        "",
        "## Changes since the previous release",
        "",
        f"{release['papers_added']:,} papers added, {release['papers_updated']:,} updated, "
        f"{release['papers_removed']:,} removed.",
        "",
    ]
    for change in ("added", "updated", "removed"):
        subset = changes.filter(pl.col("change") == change).sort("title")
        if subset.height:
            lines.append(f"{change.capitalize()}:")
            for row in subset.head(MAX_LISTED_CHANGES).iter_rows(named=True):
                detail = f" ({row['changed_columns']})" if row["changed_columns"] else ""
                lines.append(f"- `{row['paper_id']}` {row['title']}{detail}")
            if subset.height > MAX_LISTED_CHANGES:
                lines.append(f"- ... and {subset.height - MAX_LISTED_CHANGES:,} more")
            lines.append("")
    lines += [
        "## Source digests",
        "",
        *_table(
            ["digest date", "file", "status", "valid", "quarantined", "sha256"],
            digests.sort("digest_date", "source_path", nulls_last=True)
            .select("digest_date", "source_path", "status", "n_valid", "n_quarantined", "digest_id")
            .rows(),
        ),
        "",
        "## Schema",
        "",
    ]
    for name in ALL_TABLES:
        model = TABLE_SCHEMAS[name]
        lines += [f"### {name}", "", (model.__doc__ or "").strip(), ""]
        lines += _table(
            ["column", "type", "description"],
            [[c, str(col.dtype), col.description] for c, col in model.to_schema().columns.items()],
        )
        lines.append("")
    schema = release_schema(number)
    lines += [
        "## How to query it",
        "",
        "```sql",
        f"-- duckdb {paths.catalog}",
        f"USE {schema};  -- this release; the default schema is the latest release",
        "SELECT title, n_appearances FROM papers ORDER BY n_appearances DESC LIMIT 10;",
        "```",
        "",
        f'or `papers sql "SELECT count(*) FROM papers" --release {number}`.',  # noqa: S608
        "",
    ]
    return "\n".join(lines)


def card_for(paths: WarehousePaths, number: int) -> str | None:
    """The card of a published release: the file written at publish, or rebuilt from the
    release's tables when it is missing. None when there is no such release."""
    from pipelines.core.publish import changes_of, get_release, read_release_table

    if paths.storage.exists(card_path(number)):
        return paths.storage.read_bytes(card_path(number)).decode("utf-8")
    release = get_release(paths, number)
    if release is None:
        return None
    digests = read_release_table(paths, release, "digests")
    return write_card(paths, release, digests, changes_of(paths, number))


def write_card(paths: WarehousePaths, release: dict, digests, changes) -> str:
    """Render and store the card (written whole); returns its text."""
    text = render_card(paths, release, digests, changes)
    paths.storage.write_bytes(card_path(release["release"]), text.encode("utf-8"))
    return text
