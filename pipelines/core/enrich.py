"""Enrichment columns computed from a paper's title and abstract. Pure functions."""

from __future__ import annotations

import re

import polars as pl

_URL = re.compile(r"https?://[^\s<>\"'{}]+", re.IGNORECASE)
# Sentence punctuation and closing brackets that scraping glues onto the end of a URL.
_URL_TAIL = ".,;:!?)]}'\""
_GITHUB = re.compile(r"github\.com/([A-Za-z0-9][A-Za-z0-9-]*)/([A-Za-z0-9._-]+)", re.IGNORECASE)
_ACRONYM_PREFIX = re.compile(r"^\s*([^\s:]{2,30}(?:\s[^\s:]{1,12})?)\s*:\s+\S")


def extract_links(abstract: str) -> list[str]:
    """Every distinct URL in the abstract, in order, without trailing punctuation."""
    links: list[str] = []
    for match in _URL.finditer(abstract):
        url = match.group(0)
        while url and url[-1] in _URL_TAIL:
            if url[-1] == ")" and url.count("(") >= url.count(")"):
                break  # a balanced parenthesis belongs to the URL
            url = url[:-1]
        if "://" in url and url not in links:
            links.append(url)
    return links


def github_repo(links: list[str]) -> str | None:
    """`owner/name` of the first GitHub repository among the links."""
    for url in links:
        match = _GITHUB.search(url)
        if match:
            name = match.group(2).removesuffix(".git")
            if name:
                return f"{match.group(1)}/{name}"
    return None


def acronym(title: str) -> str | None:
    """The short name before a colon, like `TAME` in `TAME: Task Agnostic ...`."""
    match = _ACRONYM_PREFIX.match(title)
    if not match:
        return None
    candidate = match.group(1)
    # A name, not a phrase: at most two words and something capitalised or a digit.
    if any(ch.isupper() or ch.isdigit() for ch in candidate):
        return candidate
    return None


def enrich_papers(papers: pl.DataFrame) -> pl.DataFrame:
    """Add links, github_repo, acronym and n_words to a frame with title and abstract."""
    links = papers["abstract"].map_elements(extract_links, return_dtype=pl.List(pl.String))
    return papers.with_columns(
        links=links,
        github_repo=links.map_elements(
            lambda urls: github_repo(list(urls)), return_dtype=pl.String
        ),
        acronym=pl.col("title").map_elements(acronym, return_dtype=pl.String),
        n_words=pl.col("abstract").str.count_matches(r"\S+").cast(pl.Int32),
    )
