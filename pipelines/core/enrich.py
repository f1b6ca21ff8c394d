"""Enrichment columns computed from a paper's title and abstract, as Polars expressions
(one vectorized pass over all papers); the single-value helpers run the same expressions."""

from __future__ import annotations

import polars as pl

_URL = r"https?://[^\s<>\"'{}]+"
# Sentence punctuation and closing brackets that scraping glues onto the end of a URL.
_URL_TAIL = r"[.,;:!?\]}'\"]+$"
_GITHUB = r"(?i)github\.com/([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)"
_ACRONYM_PREFIX = r"^\s*([^\s:]{2,30}(?:\s[^\s:]{1,12})?)\s*:\s+\S"


def _clean_url(url: pl.Expr) -> pl.Expr:
    """Strip trailing punctuation; a closing parenthesis only when it is unbalanced."""
    for _ in range(2):  # "x).": punctuation, then the parenthesis, then punctuation again
        url = url.str.replace(_URL_TAIL, "")
        unbalanced = url.str.ends_with(")") & (
            url.str.count_matches(r"\(", literal=False) < url.str.count_matches(r"\)")
        )
        url = pl.when(unbalanced).then(url.str.strip_suffix(")")).otherwise(url)
    return url


def links_expr(abstract: str | pl.Expr = "abstract") -> pl.Expr:
    """Every distinct URL in the abstract, in order, without trailing punctuation."""
    expr = pl.col(abstract) if isinstance(abstract, str) else abstract
    return (
        expr.str.extract_all(_URL)
        .list.eval(_clean_url(pl.element()))
        .list.eval(pl.element().filter(pl.element().str.contains("://[^/]")))
        .list.unique(maintain_order=True)
    )


def github_repo_expr(links: pl.Expr) -> pl.Expr:
    """`owner/name` of the first GitHub repository among the links."""
    return (
        links.list.eval(pl.element().str.extract(_GITHUB, 1).str.strip_suffix(".git"))
        .list.drop_nulls()
        .list.first()
    )


def acronym_expr(title: str | pl.Expr = "title") -> pl.Expr:
    """The short name before a colon (`TAME` in `TAME: Task Agnostic ...`) when it looks
    like a name: at most two words, with a capital letter or a digit."""
    expr = pl.col(title) if isinstance(title, str) else title
    candidate = expr.str.extract(_ACRONYM_PREFIX, 1)
    return pl.when(candidate.str.contains(r"[A-Z0-9]")).then(candidate)


def _one(expr: pl.Expr):
    return pl.select(expr)[0, 0]


def extract_links(abstract: str) -> list[str]:
    return list(_one(links_expr(pl.lit(abstract))))


def github_repo(links: list[str]) -> str | None:
    return _one(github_repo_expr(pl.lit(pl.Series(values=[links], dtype=pl.List(pl.String)))))


def acronym(title: str) -> str | None:
    return _one(acronym_expr(pl.lit(title)))


def enrich_papers(papers: pl.DataFrame) -> pl.DataFrame:
    """Add links, github_repo, acronym and n_words to a frame with title and abstract."""
    return papers.with_columns(links=links_expr()).with_columns(
        github_repo=github_repo_expr(pl.col("links")),
        acronym=acronym_expr(),
        n_words=pl.col("abstract").str.count_matches(r"\S+").cast(pl.Int32),
    )
