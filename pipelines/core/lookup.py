"""Find a paper from what a person types: its id, its title, or part of the title."""

from __future__ import annotations

import re

import polars as pl
from rapidfuzz import fuzz, process, utils

from pipelines.core.text import fold_title, one, title_key_expr, title_words_expr
from schemas.tables import PAPER_ID

_PAPER_ID = re.compile(PAPER_ID)
# A typed title this close to a published one (RapidFuzz WRatio) is taken to mean it.
_CLOSE_TITLE = 90.0


class PaperNotFound(LookupError):
    """The message says what to type instead."""


def find_paper(con, query: str) -> tuple[str, str]:
    """(paper_id, title) of the one paper `query` designates in the catalog `con` (the
    papers view of the release in use): an id, a title in any spelling seen, a part of
    the title found in exactly one paper, or a title within a typo of one."""
    query = query.strip()
    if _PAPER_ID.match(query):
        rows = con.execute("SELECT paper_id, title FROM papers WHERE paper_id = ?", [query])
        found = rows.fetchall()  # fetched whole: DuckDB keeps a half-read result open
        if not found:
            raise PaperNotFound(f"no paper {query} in this release: check the id with `papers sql`")
        return found[0]
    papers = con.sql("SELECT paper_id, title, title_variants FROM papers ORDER BY paper_id").pl()
    spellings = papers.explode("title_variants").with_columns(
        key=title_key_expr("title_variants"),
        words=pl.format(" {} ", title_words_expr("title_variants")),
    )
    words = f" {one(title_words_expr(pl.lit(query)))} "
    exact = spellings.filter(pl.col("key") == fold_title(query))
    partial = spellings.filter(pl.col("words").str.contains(words, literal=True))
    for found in (exact, partial):
        found = found.unique("paper_id", maintain_order=True).select("paper_id", "title")
        if found.height == 1:
            return found.row(0)
        if found.height > 1:
            examples = "; ".join(f"{pid} {title[:50]}" for pid, title in found.rows()[:3])
            raise PaperNotFound(
                f"{found.height} papers match {query!r} (e.g. {examples}): "
                "give more of the title, or a paper_id"
            )
    rows = papers.select("paper_id", "title").rows()
    best = process.extractOne(
        query,
        dict(rows),
        scorer=fuzz.WRatio,
        processor=utils.default_process,
        score_cutoff=_CLOSE_TITLE,
    )
    if best is None:
        raise PaperNotFound(
            f"no paper matches {query!r}: give a paper_id or more of the title "
            "(the papers table has both: query it with `papers sql`)"
        )
    title, _, pid = best
    return pid, title
