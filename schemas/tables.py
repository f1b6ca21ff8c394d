"""One Pandera (polars) model per table: the single source of truth for columns.

Every column carries a description; the Dagster UI and the dataset documentation read
them from here.
"""

from __future__ import annotations

import functools
from typing import Annotated

import pandera.polars as pa
import polars as pl

from pipelines.core.topics import OTHER, TAXONOMY

UtcTimestamp = Annotated[pl.Datetime, "us", "UTC"]
StringList = Annotated[pl.List, pl.String]
LinkList = Annotated[pl.List, pl.Struct({"url": pl.String, "kind": pl.String})]
LINK_KINDS = ["code", "project_page", "model", "dataset", "other"]
TOPICS = [*TAXONOMY, OTHER]

# Why an entry is the paper it was matched to (appearances.match_reason).
MATCH_REASONS = {
    "first_seen": "the paper's first appearance",
    "exact": "same title as written and same abstract as its first appearance",
    "normalized_title": "same title after folding (case, Unicode, punctuation), same abstract",
    "revised_abstract": "same folded title, abstract revised by small edits",
    "fuzzy_title+abstract": "title within a typo or two, same or revised abstract",
    "same_abstract": "different title, identical abstract",
}

DIGEST_STATUSES = ["ingested", "superseded", "rejected"]
SHA256 = r"^[0-9a-f]{64}$"
PAPER_ID = r"^p[0-9a-f]{15}$"


class _StrictModel(pa.DataFrameModel):
    """A table's model: no column that the contract does not name, no coercion.

    A base model, not a Config mixin: Pandera reads a model's Config from the models it
    derives from, but not from the classes its Config derives from."""

    class Config:
        strict = True
        coerce = False


class EntrySchema(_StrictModel):
    """A title/abstract pair parsed from one digest file, before deduplication."""

    digest_id: str = pa.Field(str_matches=SHA256, description="sha256 of the digest file's bytes")
    source_path: str = pa.Field(description="Path of the digest file, relative to landing")
    digest_date: pl.Date = pa.Field(description="Date of the digest the entry appeared in")
    position: pl.Int32 = pa.Field(ge=1, description="1-based rank of the entry in its digest")
    title: str = pa.Field(str_length={"min_value": 1}, description="Title as written")
    abstract: str = pa.Field(str_length={"min_value": 1}, description="Abstract as written")
    title_line: pl.Int32 = pa.Field(ge=1, description="Line number of the title in the file")
    abstract_line: pl.Int32 = pa.Field(ge=1, description="Line number of the abstract")
    title_key: str = pa.Field(
        description="Folded title used for matching (see papers.title_key), computed when "
        "the entry is staged"
    )
    abstract_hash: pl.UInt64 = pa.Field(
        description="64-bit hash of the abstract as written, computed when the entry is "
        "staged: the key under which its sentence hashes are kept"
    )
    keys_version: pl.Int16 = pa.Field(
        ge=1, description="Version of the rules that computed title_key and abstract_hash"
    )

    @pa.dataframe_check
    def abstract_follows_title(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("abstract_line") > pl.col("title_line"))

    class Config:
        unique = ["digest_id", "position"]


class DigestSchema(_StrictModel):
    """One row per distinct digest file that landed (identical bytes count once)."""

    digest_id: str = pa.Field(
        unique=True,
        str_matches=SHA256,
        description="sha256 of the raw bytes: the file's identity (for a path refused "
        "because it leads outside the landing folder: sha256 of 'outside_landing:<path>')",
    )
    source_path: str = pa.Field(description="Path relative to the landing folder where it landed")
    digest_date: pl.Date = pa.Field(
        nullable=True, description="Date of the digest (null only for rejected files)"
    )
    date_label: str = pa.Field(nullable=True, description="The date line as written, e.g. 'Mar 14'")
    date_source: str = pa.Field(
        nullable=True,
        isin=["file_name", "landed_at"],
        description="Where the year came from: a YYYY-MM-DD in the file name, or the landing time",
    )
    status: str = pa.Field(
        isin=DIGEST_STATUSES,
        description="ingested; superseded (a later file for the same date or path won); rejected",
    )
    superseded_by: str = pa.Field(
        nullable=True, description="digest_id of the digest that superseded this one"
    )
    n_entries: pl.Int32 = pa.Field(
        ge=0, description="Entries found: valid ones plus record-level quarantined ones"
    )
    n_valid: pl.Int32 = pa.Field(ge=0, description="Valid title/abstract entries")
    n_quarantined: pl.Int32 = pa.Field(ge=0, description="Quarantine rows from this file")
    n_lines: pl.Int32 = pa.Field(ge=0, description="Non-blank lines in the file")
    n_header_lines: pl.Int32 = pa.Field(ge=0, description="Header and date lines recognised")
    n_quarantined_lines: pl.Int32 = pa.Field(ge=0, description="Non-blank lines quarantined")
    n_bytes: pl.Int64 = pa.Field(ge=0, description="Size of the file in bytes")
    encoding: str = pa.Field(
        nullable=True, description="Text encoding used to read it (null: not text)"
    )
    warnings: str = pa.Field(nullable=True, description="Things worth knowing, e.g. not UTF-8")
    landed_at: UtcTimestamp = pa.Field(description="When the file landed (its mtime), UTC")
    parser_version: str = pa.Field(description="Version of the parser that read the file")

    @pa.dataframe_check
    def dated_unless_rejected(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("status") == "rejected") | pl.col("digest_date").is_not_null()
        )

    @pa.dataframe_check
    def nothing_lost(cls, data) -> pl.LazyFrame:
        """Every non-blank line is a header/date line, half of an entry, or quarantined."""
        return data.lazyframe.select(
            pl.col("n_lines")
            == pl.col("n_header_lines") + 2 * pl.col("n_valid") + pl.col("n_quarantined_lines")
        )


class AppearanceSchema(_StrictModel):
    """One row per paper per digest date: where and how a paper appeared."""

    digest_date: pl.Date = pa.Field(description="Date of the digest")
    paper_id: str = pa.Field(description="The paper (see papers.paper_id)")
    position: pl.Int32 = pa.Field(ge=1, description="1-based rank of the paper in the digest")
    digest_id: str = pa.Field(str_matches=SHA256, description="The digest file it appeared in")
    title: str = pa.Field(str_length={"min_value": 1}, description="Title as written there")
    line_start: pl.Int32 = pa.Field(ge=1, description="First line of the entry in the file")
    line_end: pl.Int32 = pa.Field(ge=1, description="Last line of the entry in the file")
    match_reason: str = pa.Field(
        isin=list(MATCH_REASONS),
        description="Why the entry is this paper, against its first appearance: "
        + "; ".join(f"{code} ({meaning})" for code, meaning in MATCH_REASONS.items()),
    )

    @pa.dataframe_check
    def span_ordered(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("line_end") >= pl.col("line_start"))

    class Config:
        unique = ["digest_date", "paper_id"]


class PaperSchema(_StrictModel):
    """One row per distinct paper across all ingested digests."""

    paper_id: str = pa.Field(
        unique=True, str_matches=PAPER_ID, description="Stable id; never changes"
    )
    title: str = pa.Field(str_length={"min_value": 1}, description="Title as last written")
    title_key: str = pa.Field(
        str_length={"min_value": 1},
        description="Folded title used for matching: NFKD, accents and case folded, letters "
        "and digits only",
    )
    title_variants: StringList = pa.Field(
        description="Every distinct spelling of the title seen, in order of first appearance"
    )
    abstract: str = pa.Field(
        str_length={"min_value": 1},
        description="Latest abstract, cleaned of LaTeX escapes (\\%), link placeholders "
        "({url}, {here.}), trailing % comments and doubled spaces",
    )
    abstract_raw: str = pa.Field(
        str_length={"min_value": 1}, description="Latest abstract exactly as written"
    )
    first_seen: pl.Date = pa.Field(description="Date of the first digest it appeared in")
    last_seen: pl.Date = pa.Field(description="Date of the latest digest it appeared in")
    n_appearances: pl.Int32 = pa.Field(ge=1, description="Number of digest dates it appeared on")
    links: LinkList = pa.Field(
        description="Every URL in the abstract (trailing punctuation and {...} debris removed) "
        "as {url, kind}; kind is one of " + ", ".join(LINK_KINDS)
    )
    github_repo: str = pa.Field(
        nullable=True, description="owner/name of the first GitHub repository it links to"
    )
    has_code: bool = pa.Field(description="Whether any link is a code link")
    acronym: str = pa.Field(
        nullable=True,
        description="Short name the paper goes by (TAME, LoRA-GA, Sophia): the title's prefix "
        "before a colon, else the name its abstract introduces",
    )
    topics: StringList = pa.Field(
        description="Machine-learning areas from the rule-based taxonomy in "
        "pipelines/core/topics.py (" + ", ".join(TOPICS) + "); ['other'] when none applies"
    )
    keyphrases: StringList = pa.Field(
        description="Up to 5 keyphrases of the title and abstract, best first, lower case: "
        "RAKE-style candidates scored by word frequency, title phrases first (unsupervised)"
    )
    n_words: pl.Int32 = pa.Field(ge=0, description="Words in the cleaned abstract")
    enrichment_version: pl.Int32 = pa.Field(
        ge=1, description="Version of the enrichment rules that computed the columns above"
    )

    @pa.dataframe_check
    def topics_from_taxonomy(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("topics").list.len().gt(0)
            & pl.col("topics").list.eval(pl.element().is_in(TOPICS)).list.all()
        )

    @pa.dataframe_check
    def links_have_kinds(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("links")
            .list.eval(pl.element().struct.field("kind").is_in(LINK_KINDS))
            .list.all()
        )

    @pa.dataframe_check
    def seen_in_order(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("first_seen") <= pl.col("last_seen"))


class QuarantineSchema(_StrictModel):
    """One row per rejected file, record or published row, with the rejected text itself."""

    source_path: str = pa.Field(description="File the text came from, relative to landing")
    digest_id: str = pa.Field(str_matches=SHA256, description="sha256 of that file's bytes")
    digest_date: pl.Date = pa.Field(nullable=True, description="Digest date, when known")
    line_start: pl.Int32 = pa.Field(ge=1, description="First line of the rejected text")
    line_end: pl.Int32 = pa.Field(ge=1, description="Last line of the rejected text")
    n_lines: pl.Int32 = pa.Field(ge=0, description="Non-blank lines this row accounts for")
    stage: str = pa.Field(
        description="Where it was rejected: file, record, or schema:<table> at publish"
    )
    reason: str = pa.Field(str_length={"min_value": 1}, description="Short reason code")
    message: str = pa.Field(str_length={"min_value": 1}, description="What is wrong, for a person")
    raw_text: str = pa.Field(description="The rejected text, exactly: nothing is lost")


class RelatedPaperSchema(_StrictModel):
    """Each paper's nearest neighbours by TF-IDF similarity of title and abstract."""

    paper_id: str = pa.Field(description="The paper")
    related_id: str = pa.Field(description="A related paper (papers.paper_id)")
    score: pl.Float64 = pa.Field(
        gt=0, le=1.0001, description="Cosine similarity of their TF-IDF vectors, 4 decimals"
    )
    rank: pl.Int32 = pa.Field(ge=1, le=10, description="1 = the most related")

    @pa.dataframe_check
    def not_itself(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("paper_id") != pl.col("related_id"))

    class Config:
        unique = ["paper_id", "rank"]


PUBLISHED_TABLES = ("digests", "appearances", "papers", "quarantine", "related_papers")
# Every Delta table and catalog view: the published tables plus the per-release logs.
ALL_TABLES = (*PUBLISHED_TABLES, "paper_changes", "releases")


class PaperChangeSchema(_StrictModel):
    """The changelog: one row per paper added, updated or removed by a release."""

    release: pl.Int64 = pa.Field(ge=1, description="Release that made the change")
    change: str = pa.Field(isin=["added", "updated", "removed"], description="What happened")
    paper_id: str = pa.Field(description="The paper")
    title: str = pa.Field(description="Its title (the latest one for removed papers)")
    changed_columns: str = pa.Field(
        nullable=True, description="For updates: the columns whose value changed, comma-separated"
    )

    class Config:
        unique = ["release", "paper_id"]


class ReleaseSchema(_StrictModel):
    """One row per published release of the dataset."""

    release: pl.Int64 = pa.Field(ge=1, unique=True, description="Release number: 1, 2, ...")
    created_at: UtcTimestamp = pa.Field(description="When the release was published, UTC")
    parser_version: str = pa.Field(description="Parser version of this build")
    content_hash: str = pa.Field(description="Hash of all published tables' content")
    digests_version: pl.Int64 = pa.Field(ge=0, description="Delta version of digests")
    appearances_version: pl.Int64 = pa.Field(ge=0, description="Delta version of appearances")
    papers_version: pl.Int64 = pa.Field(ge=0, description="Delta version of papers")
    quarantine_version: pl.Int64 = pa.Field(ge=0, description="Delta version of quarantine")
    related_papers_version: pl.Int64 = pa.Field(ge=0, description="Delta version of related_papers")
    paper_changes_version: pl.Int64 = pa.Field(
        ge=0,
        description="Delta version of paper_changes when the release was built: the "
        "changelogs of every earlier release (its own rows are appended once it commits)",
    )
    digests_rows: pl.Int64 = pa.Field(ge=0, description="Rows in digests")
    appearances_rows: pl.Int64 = pa.Field(ge=0, description="Rows in appearances")
    papers_rows: pl.Int64 = pa.Field(ge=0, description="Rows in papers")
    quarantine_rows: pl.Int64 = pa.Field(ge=0, description="Rows in quarantine")
    related_papers_rows: pl.Int64 = pa.Field(ge=0, description="Rows in related_papers")
    digests_hash: str = pa.Field(description="Content hash of digests")
    appearances_hash: str = pa.Field(description="Content hash of appearances")
    papers_hash: str = pa.Field(description="Content hash of papers")
    quarantine_hash: str = pa.Field(description="Content hash of quarantine")
    related_papers_hash: str = pa.Field(description="Content hash of related_papers")
    papers_added: pl.Int64 = pa.Field(ge=0, description="Papers new since the previous release")
    papers_updated: pl.Int64 = pa.Field(ge=0, description="Papers whose row changed")
    papers_removed: pl.Int64 = pa.Field(ge=0, description="Papers gone since the previous release")


TABLE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "digests": DigestSchema,
    "appearances": AppearanceSchema,
    "papers": PaperSchema,
    "quarantine": QuarantineSchema,
    "related_papers": RelatedPaperSchema,
    "releases": ReleaseSchema,
    "paper_changes": PaperChangeSchema,
}

# The key that identifies a row of each table; used for sorting and diffs.
TABLE_KEYS: dict[str, list[str]] = {
    "digests": ["digest_id"],
    "appearances": ["digest_date", "paper_id"],
    "papers": ["paper_id"],
    "quarantine": ["digest_id", "line_start", "stage", "reason"],
    "related_papers": ["paper_id", "rank"],
    "releases": ["release"],
    "paper_changes": ["release", "paper_id"],
}


@functools.cache
def empty_frame(model: type[pa.DataFrameModel]) -> pl.DataFrame:
    """A zero-row frame with exactly the model's columns and dtypes."""
    schema = model.to_schema()
    return pl.DataFrame(schema={name: column.dtype.type for name, column in schema.columns.items()})
