"""Build the published tables from staged digests. Pure Polars, no Dagster."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

import polars as pl

from pipelines.core.diff import diff_papers
from pipelines.core.enrich import (
    ENRICHMENT_VERSION,
    enrich_papers,
    enrich_papers_alongside,
    reusable,
    sharing_abstracts,
)
from pipelines.core.frames import among, filtered, remember_height
from pipelines.core.hashing import (
    hash_of_rows,
    keyed_row_hashes,
    known_hash,
    remember_hash,
    table_hash,
)
from pipelines.core.identity import (
    ENTRIES_PER_LOAD,
    ENTRY_ORDER,
    AbstractLoader,
    SentenceCache,
    abstracts_in_chunks,
    assign_paper_ids,
)
from pipelines.core.parsing import PARSER_VERSION
from pipelines.core.related import (
    RelatedUpdate,
    Vocabulary,
    WeighedCounts,
    WordCounts,
    update_related,
)
from pipelines.core.validation import validate
from schemas.tables import (
    TABLE_KEYS,
    AppearanceSchema,
    DigestSchema,
    PaperSchema,
    QuarantineSchema,
    RelatedPaperSchema,
    empty_frame,
)


def digest_statuses(staged_digests: pl.DataFrame) -> pl.DataFrame:
    """Add `status` and `superseded_by`.

    Rejected files supersede nothing. Of the readable contents seen at one path, the
    latest landed is current; of the current digests for one date, the latest landed
    wins. The others are superseded by the winner."""
    latest = pl.col("digest_id").sort_by("landed_at", "source_path", "digest_id").last()
    readable = staged_digests.filter(pl.col("digest_date").is_not_null())
    by_path = readable.group_by("source_path").agg(path_winner=latest)
    current = readable.join(by_path, on="source_path").filter(
        pl.col("digest_id") == pl.col("path_winner")
    )
    by_date = current.group_by("digest_date").agg(date_winner=latest)
    winners = readable.join(by_path, on="source_path").join(by_date, on="digest_date", how="left")
    superseded_by = (
        pl.when(pl.col("digest_id") != pl.col("path_winner"))
        .then(pl.col("path_winner"))
        .when(pl.col("digest_id") != pl.col("date_winner"))
        .then(pl.col("date_winner"))
    )
    winners = winners.select("digest_id", superseded_by=superseded_by)
    return (
        staged_digests.join(winners, on="digest_id", how="left")
        .with_columns(
            status=pl.when(pl.col("digest_date").is_null())
            .then(pl.lit("rejected"))
            .when(pl.col("superseded_by").is_not_null())
            .then(pl.lit("superseded"))
            .otherwise(pl.lit("ingested"))
        )
        .select(empty_frame(DigestSchema).columns)
        .sort("digest_id")
    )


# The columns of papers a build reads only for the papers it may change.
ABSTRACT_COLUMNS = ("abstract", "abstract_raw")


def papers_whole(papers: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Papers in one frame: a LazyFrame (papers kept by reference) read by the streaming
    engine, each cleaned abstract the raw one's string where they are equal (see
    sharing_abstracts), so a morsel's copy is let go as it is read."""
    if isinstance(papers, pl.LazyFrame):
        return sharing_abstracts(papers).collect(engine="streaming")
    return papers


@dataclass(frozen=True)
class PublishedPapers:
    """The papers a release published, by reference: a build reads every row without its
    abstracts, and whole only the rows of the papers it may change. The papers it keeps
    are published again from the release's own files. Adding a digest to 1,000, reading
    every paper whole took 0.2-0.3 CPU s, most of it their two abstracts."""

    light: pl.DataFrame  # every row, in the order of the files, but ABSTRACT_COLUMNS
    scan: pl.LazyFrame  # every row and column, from the release's files, in their order
    # The file of each row of `light`, and a scan of some of the files: a few papers are
    # read from the files holding them (adding a digest to 1,000: 6 papers, in 1 of 8 files).
    file_of_row: pl.Series
    scan_files: Callable[[list[str]], pl.LazyFrame]
    # (paper_id, row_hash) of every row, as table_hash hashes them, when they were kept
    row_hashes: pl.DataFrame | None = None

    def rows_of(self, ids: pl.Series) -> pl.DataFrame:
        """The rows of the papers `ids`, whole."""
        holding = self.file_of_row.filter(self.light["paper_id"].is_in(ids.implode()))
        files = holding.unique(maintain_order=True).to_list()
        if not files:
            return self.scan.head(0).collect()
        return papers_whole(self.scan_files(files).filter(pl.col("paper_id").is_in(ids.implode())))

    def rows_kept(self, ids: pl.Series) -> pl.LazyFrame:
        """The rows of the papers `ids`, whole, in the order of the files."""
        return self.scan.filter(pl.col("paper_id").is_in(ids.implode()))


@dataclass(frozen=True)
class Previous:
    """What the latest release published: its appearances keep their paper ids, its
    papers are kept as they are where none of their digests changed (see kept_papers) and
    their enrichment columns reused where the text is unchanged, and its related papers
    are updated rather than recomputed while the vocabulary they used is current.

    Its papers are read whole (`papers`) or by reference (`published_papers`, with
    `papers` None); then a build reads whole only the papers it does not keep."""

    appearances: pl.DataFrame
    papers: pl.DataFrame | None  # None while `still_reading`, or read by reference
    related: pl.DataFrame = field(default_factory=lambda: empty_frame(RelatedPaperSchema))
    vocabulary: Vocabulary | None = None
    word_counts: WordCounts | WeighedCounts | None = None
    word_count_pieces: tuple[str, ...] = ()  # the kept pieces word_counts were read from
    sentences: pl.DataFrame | None = None  # SentenceCache.frame, when one was kept
    release: int | None = None  # the release its appearances and papers were read from
    parser_version: str | None = None  # the parser that release was built with
    # What matching does not need (papers, related papers, word counts) may still be read
    # on other threads: this waits for it and gives those fields. See settled().
    still_reading: Callable[[], dict] | None = None
    published_papers: PublishedPapers | None = None

    @classmethod
    def nothing(cls) -> Previous:
        return cls(empty_frame(AppearanceSchema), empty_frame(PaperSchema))

    def settled(self) -> Previous:
        """This, with every field read: matching runs while the rest is read."""
        if self.still_reading is None:
            return self
        return replace(self, **self.still_reading(), still_reading=None)


def kept_papers(matched: pl.DataFrame, previous: Previous) -> pl.DataFrame:
    """The rows of the published papers this build would make again, as they are, given
    the entries matched (assign_paper_ids) against `previous.appearances` (without their
    abstracts when the papers were read by reference).

    A paper's row is made from its entries alone, and the entries of a digest from its
    bytes (its id) and the parser. So a row holds while the parser is the same, its rules
    of enrichment are current, and no digest it has an entry in came, left or holds an
    entry not published as it is (a paper listed twice in one digest, whose second entry
    is matched again each build)."""
    full = empty_frame(PaperSchema)
    by_reference = previous.published_papers
    if by_reference is None:
        published, none = previous.papers, full
    else:  # read but for their abstracts, which their files hold
        published, none = by_reference.light, full.drop(ABSTRACT_COLUMNS)
        if by_reference.scan.collect_schema() != full.schema:
            return none
    if (
        published.height == 0
        or previous.parser_version != PARSER_VERSION
        or published.schema != none.schema
    ):
        return none
    # Matched against these appearances, each entry says whether it is published as it is:
    # joining the entries to them again on digest, position and title encoded every title
    # of both sides (at 10,000 digests, about 190 MiB at the peak of adding a digest).
    unpublished = matched.filter(~pl.col("published_as_is"))["digest_id"]
    now = matched["digest_id"].unique()
    gone = previous.appearances.filter(~pl.col("digest_id").is_in(now.implode()))["digest_id"]
    moved = pl.concat([unpublished, gone]).unique()
    touched = pl.concat(
        [
            matched.filter(pl.col("digest_id").is_in(moved.implode()))["paper_id"],
            previous.appearances.filter(pl.col("digest_id").is_in(moved.implode()))["paper_id"],
        ]
    )
    # Most of the published papers, as slices of them rather than a copy.
    keep = published.select(
        ~pl.col("paper_id").is_in(touched.implode())
        & (pl.col("enrichment_version") == ENRICHMENT_VERSION)
    ).to_series()
    return filtered(published, keep)


# Related papers are computed alongside the keyphrases up to this many papers. Side by side
# they hold both their working sets: for the 541,222 papers of 10,000 digests, 6.42 GB at
# the peak rather than 5.32 GB, for 115.5 s rather than 127.9 s (build_papers alone).
ALONGSIDE_MAX_PAPERS = 200_000


@dataclass(frozen=True)
class BuiltPapers:
    """The papers of a build: those kept as the previous release published them, in the
    order they were read, then those made afresh, in id order."""

    kept: pl.DataFrame  # slices of the published papers read (by reference: no abstracts)
    made: pl.DataFrame  # kept by reference, once checked: only those that passed
    # Read by reference: the kept rows whole, from the release's files, and the other
    # published papers whole (what the ones made are compared with).
    kept_rows: pl.LazyFrame | None = None
    previous_others: pl.DataFrame | None = None

    def whole(self) -> pl.DataFrame:
        """Every paper in one frame (the kept ones read whole when read by reference)."""
        kept = self.kept if self.kept_rows is None else papers_whole(self.kept_rows)
        return pl.concat([kept, self.made], how="vertical")


def build_papers(
    entries: pl.DataFrame, previous: Previous, load: AbstractLoader | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, Future[RelatedUpdate], SentenceCache, pl.Series]:
    """(appearances, papers, related papers with what they were computed from, the
    papers' sentence hashes, the ids of the papers kept as published) from the valid
    entries of ingested digests (those with a null abstract: loaded by `load` if needed).
    The papers kept as published come first, in the order they were read, then the others
    in id order. Related papers may still be computing on another thread: a future."""
    appearances, papers, related, sentences = _build_papers([entries], previous, load)
    return appearances, papers.whole(), related, sentences, papers.kept["paper_id"]


def _build_papers(
    handed: list[pl.DataFrame],
    previous: Previous,
    load: AbstractLoader | None,
    keep_sentences: Callable[[SentenceCache], None] | None = None,
) -> tuple[pl.DataFrame, BuiltPapers, Future[RelatedUpdate], SentenceCache]:
    """build_papers of the entries handed over in a one-item list, which it empties: a
    caller keeping no other reference to them lets them go once they are matched (at
    10,000 digests, 130 MB of their columns beside the abstracts, held through
    enrichment). `keep_sentences`, when given, is handed the papers' sentence hashes as
    soon as they are matched, and the build holds them no longer: it returns none (at
    10,000 digests, 92 MB through enrichment and related papers)."""
    entries = handed.pop()
    sentences = SentenceCache(previous.sentences)
    if entries.height == 0:
        nothing = empty_frame(PaperSchema)
        return (
            empty_frame(AppearanceSchema),
            BuiltPapers(nothing, nothing),
            _resolved(update_related(nothing, nothing, empty_frame(RelatedPaperSchema), None)),
            SentenceCache(),
        )
    # In date, position order.
    matched = assign_paper_ids(entries, previous.appearances, sentences, load)
    del entries
    if keep_sentences is not None:
        keep_sentences(sentences)
        sentences = SentenceCache()
    previous = previous.settled()
    # A paper listed twice in one digest appears once, at its first position.
    appearances = (
        matched.unique(["digest_date", "paper_id"], keep="first", maintain_order=True)
        .select(
            "digest_date",
            "paper_id",
            "position",
            "digest_id",
            "title",
            line_start=pl.col("title_line"),
            line_end=pl.col("abstract_line"),
            match_reason="match_reason",
        )
        .sort("digest_date", "position")
    )
    # Only the papers whose entries may have changed are made again: the work follows
    # what is new, not the history.
    kept = kept_papers(matched, previous)
    by_reference = previous.published_papers
    kept_rows = None
    if by_reference is not None:
        # Only the published papers not kept are read whole: what the others are compared
        # with, and where their enrichment is reused.
        others = by_reference.light.join(kept.select("paper_id"), on="paper_id", how="anti")
        previous = replace(previous, papers=by_reference.rows_of(others["paper_id"]))
        kept_rows = by_reference.rows_kept(kept["paper_id"])
    papers = (
        matched.join(kept.select("paper_id"), on="paper_id", how="anti")
        .group_by("paper_id", maintain_order=True)
        .agg(
            title=pl.col("title").last(),
            title_key=pl.col("title_key").last(),
            title_variants=pl.col("title").unique(maintain_order=True),
            abstract_raw=pl.col("abstract").last(),
            first_seen=pl.col("digest_date").min(),
            last_seen=pl.col("digest_date").max(),
            n_appearances=pl.col("digest_date").n_unique().cast(pl.Int32),
            _latest=pl.struct(*ENTRY_ORDER).last(),
        )
        .sort("paper_id")
    )
    if papers["abstract_raw"].null_count():  # not loaded: its latest entry's abstract
        latest = papers.select(pl.col("_latest").struct.unnest(), abstract="abstract_raw")
        # Loaded in chunks of the latest entries in their order: a few packs at a time.
        order = latest.with_row_index("_row").sort(ENTRY_ORDER)["_row"]
        place = pl.zeros(latest.height, pl.UInt32, eager=True).scatter(
            order, pl.int_range(latest.height, dtype=pl.UInt32, eager=True)
        )
        papers = papers.with_columns(
            abstract_raw=abstracts_in_chunks(latest, load, place // ENTRIES_PER_LOAD)
        )
        del latest, order, place  # else held to the end of the build (10,000 digests: 37 MB)
    papers = papers.drop("_latest")
    # The matched entries are a sorted copy of every entry (their abstracts shared): let go
    # of them before enrichment rather than holding them through it (10,000 digests: 130 MB).
    del matched
    # A paper that keeps its enrichment has the title and abstract it had: related papers
    # need compare only the others.
    reuse = reusable(papers, previous.papers)
    enriched_afresh = papers.filter(~reuse)["paper_id"]

    def related_of(texts: pl.DataFrame) -> RelatedUpdate:
        if kept_rows is None:
            kept_texts, every_text = kept.select(texts.columns), None
        else:  # the kept papers' abstracts are read only if their words must be counted
            kept_texts = kept.select("paper_id", "title", abstract=pl.lit(None, pl.String))

            def every_text() -> pl.DataFrame:
                read = kept_rows.select(texts.columns).collect()
                return pl.concat([read, texts], how="vertical")

        return update_related(
            pl.concat([kept_texts.select(texts.columns), texts], how="vertical"),
            previous.papers,
            previous.related,
            previous.vocabulary,
            previous.word_counts,
            maybe_changed=enriched_afresh,
            every_text=every_text,
        )

    if papers.height + kept.height <= ALONGSIDE_MAX_PAPERS:
        enriched, related = enrich_papers_alongside(papers, previous.papers, reuse, related_of)
    else:
        enriched = enrich_papers(papers, previous.papers, reuse)
        related = _resolved(related_of(enriched.select("paper_id", "title", "abstract")))
    # The papers kept as they were read (slices of the published ones, in the order of
    # their files), then those made afresh, in id order: sorting them all would copy every
    # kept row (at 10,000 digests, 260 MB beside the published papers).
    made = enriched.select(empty_frame(PaperSchema).columns)
    previous_others = previous.papers if by_reference is not None else None
    return appearances, BuiltPapers(kept, made, kept_rows, previous_others), related, sentences


def _resolved(value: RelatedUpdate) -> Future[RelatedUpdate]:
    future: Future[RelatedUpdate] = Future()
    future.set_result(value)
    return future


@dataclass(frozen=True)
class Kept:
    """What a build keeps in staging for the next one, unpublished: the word weights and
    counts its related papers were computed with (kept under that table's content hash),
    and the sentence hashes of each paper's latest abstract."""

    related: RelatedUpdate
    sentences: SentenceCache
    papers: BuiltPapers  # its papers (kept by reference: those made that passed their schema)

    @property
    def kept_paper_ids(self) -> pl.Series:
        """The papers kept as the previous release published them."""
        return self.papers.kept["paper_id"]


def build_tables(
    staged_digests: pl.DataFrame,
    staged_entries: pl.DataFrame,
    staged_quarantine: pl.DataFrame,
    previous: Previous,
) -> dict[str, pl.DataFrame]:
    """The published tables, each validated against its schema.

    Rows that fail their schema are moved to quarantine (stage `schema:<table>`)."""
    tables, kept = _build(staged_digests, [staged_entries], staged_quarantine, previous)
    return _with_papers_whole(tables, kept)


def _with_papers_whole(tables: dict, kept: Kept) -> dict[str, pl.DataFrame]:
    """`tables` with the papers in one frame, when they were kept by reference."""
    if not isinstance(tables["papers"], pl.LazyFrame):
        return tables
    papers = kept.papers.whole()
    hashed = known_hash(tables["papers"], TABLE_KEYS["papers"])
    if hashed is not None:
        remember_hash(papers, TABLE_KEYS["papers"], hashed)
    return {**tables, "papers": papers}


def _build(
    staged_digests: pl.DataFrame,
    staged_entries: list[pl.DataFrame],
    staged_quarantine: pl.DataFrame,
    previous: Previous,
    load: AbstractLoader | None = None,
    keep_sentences: Callable[[SentenceCache], None] | None = None,
    papers_checked: Callable[[pl.DataFrame | pl.LazyFrame, BuiltPapers], None] | None = None,
) -> tuple[dict, Kept]:
    """build_tables, and what the build keeps for the next one (the entries' abstracts
    that are null loaded by `load` where needed). The staged entries are handed over in
    a one-item list, emptied here; `keep_sentences`: see _build_papers. Papers kept by
    reference (see PublishedPapers) are a LazyFrame: those made, then those kept, from
    the previous release's files. `papers_checked`, when given, is handed the papers as
    they will be published as soon as they are checked."""
    digests = digest_statuses(staged_digests)
    ingested = digests.filter(pl.col("status") == "ingested")["digest_id"]
    entries = [staged_entries.pop().filter(pl.col("digest_id").is_in(ingested.implode()))]
    appearances, built, relating, sentences = _build_papers(entries, previous, load, keep_sentences)
    kept_ids = built.kept["paper_id"]

    def checked_in_turn():
        # Rows kept as the previous release published them passed their schema then: only
        # the rows this build made are checked (and the kept ones for their unique keys).
        # A stricter check on kept rows needs them made again: for papers, a new
        # ENRICHMENT_VERSION; related lists are kept while the vocabulary is current.
        yield "digests", digests, DigestSchema, None
        # A kept paper's appearances are its published rows: its digests did not change.
        yield "appearances", appearances, AppearanceSchema, among(appearances, "paper_id", kept_ids)
        if built.kept_rows is None:
            papers = built.whole()
            yield "papers", papers, PaperSchema, among(papers, "paper_id", kept_ids)
        else:  # the made ones alone: no id of theirs is a kept one's (see _build_papers)
            yield "papers", built.made, PaperSchema, None
        update = relating.result()  # waited for last: meanwhile the others are checked
        passed = among(update.related, "paper_id", update.kept_lists)
        yield "related_papers", update.related, RelatedPaperSchema, passed

    rejected: list[pl.DataFrame] = []
    tables: dict = {}
    for name, frame, model, passed in checked_in_turn():
        checked = validate(frame, model, passed)
        tables[name] = checked.valid
        if checked.n_failed:
            rejected.append(_schema_rejects(name, frame, checked.failures, appearances, digests))
        if name == "papers":
            built, tables["papers"] = _checked_papers(built, checked.valid)
            if papers_checked is not None:  # while related papers are still computing
                papers_checked(tables["papers"], built)
    quarantine = pl.concat([staged_quarantine, *rejected], how="vertical")
    checked = validate(quarantine, QuarantineSchema)
    if checked.n_failed:  # cannot quarantine the quarantine: fail loudly instead
        raise ValueError(f"quarantine rows failed their schema: {checked.failures.head(5)}")
    tables["quarantine"] = quarantine.sort("digest_id", "line_start", "stage", "reason")
    return tables, Kept(relating.result(), sentences, built)


def _checked_papers(
    built: BuiltPapers, valid: pl.DataFrame
) -> tuple[BuiltPapers, pl.DataFrame | pl.LazyFrame]:
    """The papers to publish, given the `valid` rows of those checked, and `built` with
    only the rows made that passed their schema when kept by reference (read whole, the
    kept and made rows are one frame: taking the made ones apart again would copy their
    lists, at 10,000 digests 100 MiB held through publishing)."""
    if built.kept_rows is None:
        return built, valid
    built = replace(built, made=valid)
    # Those made first: a preview of the first rows shows them, and reads no file.
    papers = pl.concat([built.made.lazy(), built.kept_rows], how="vertical")
    remember_height(papers, built.kept.height + built.made.height)
    return built, papers


def build_from_staging(
    staging, previous: Previous, papers_by_reference: bool = False
) -> dict[str, pl.DataFrame]:
    """The published tables, built from everything staged. Kept in staging: what their
    related_papers were computed from, the papers' sentence hashes and row hashes, for the
    next build; the papers' diff against the previous release, for the release that
    publishes them. The small packs of staged digests are merged once there are many.

    `papers_by_reference`: the papers, when the previous release's were read by
    reference, as a LazyFrame (those made, then those kept, read from that release's
    files: see PublishedPapers) rather than read whole into one frame."""
    # Read without their abstracts, which the build loads a few packs at a time where it
    # needs them: a full build of 10,000 digests held all of them (1.2 GB) through its
    # matching. Handed over to the build, which lets them go once they are matched.
    entries, load = staging.entries_without_abstracts()
    handed = [entries]
    del entries
    kept_sentences = previous.sentences

    def keep_sentences(cache: SentenceCache) -> None:  # kept before the build goes on
        staging.save_sentences(cache.frame, kept_sentences)

    def papers_checked(papers: pl.DataFrame | pl.LazyFrame, built: BuiltPapers) -> None:
        """Their hash and row hashes, and their diff against the previous release (which
        publishing needs), kept while related papers are still being computed."""
        settled = previous.settled()
        papers_hash, row_hashes = _papers_hash(papers, built, settled)
        staging.save_paper_row_hashes(papers_hash, row_hashes)
        if settled.release is None:
            return
        # Papers kept as published are the same rows: only the others can differ.
        if built.previous_others is not None:
            before, after = built.previous_others, built.made
        else:
            same = built.kept.select("paper_id")
            before = settled.papers.join(same, on="paper_id", how="anti", maintain_order="left")
            after = papers.join(same, on="paper_id", how="anti", maintain_order="left")
        staging.save_paper_changes(
            settled.release, papers_hash, diff_papers(before, after, with_first_seen=True)
        )

    tables, kept = _build(
        staging.read("digest"),
        handed,
        staging.read("quarantine"),
        previous,
        load,
        keep_sentences,
        papers_checked,
    )
    previous = previous.settled()
    staging.compact()  # the small packs of day-by-day runs, merged once there are many
    staging.save_related_state(
        table_hash(tables["related_papers"], TABLE_KEYS["related_papers"]),
        kept.related.vocabulary.to_frame(),
        kept.related.counts,  # called only when every count is written again
        previous.word_count_pieces if previous.word_counts is not None else (),
        kept.related.new_counts,
    )
    # Not `kept`: its word counts are not held while publishing.
    return tables if papers_by_reference else _with_papers_whole(tables, kept)


def _papers_hash(
    papers: pl.DataFrame | pl.LazyFrame, built: BuiltPapers, previous: Previous
) -> tuple[str, pl.DataFrame]:
    """table_hash of the papers, and their (paper_id, row_hash). Kept by reference, the
    rows kept are hashed from the row hashes kept with the previous release, when they
    are there; then only the rows made are read to be hashed."""
    key = TABLE_KEYS["papers"]
    if isinstance(papers, pl.DataFrame):
        row_hashes = keyed_row_hashes(papers, key)
        schema = papers.schema
    else:
        kept_ids = built.kept.select("paper_id")
        kept = previous.published_papers.row_hashes
        if kept is not None:
            kept = kept.join(kept_ids, on="paper_id", how="semi")
        if kept is None or kept.height != kept_ids.height:  # none kept: read and hashed
            kept = keyed_row_hashes(built.kept_rows.collect(), key)
        row_hashes = pl.concat([kept, keyed_row_hashes(built.made, key)], how="vertical")
        schema = papers.collect_schema()
    hashed = hash_of_rows(schema, row_hashes, key)
    remember_hash(papers, key, hashed)
    return hashed, row_hashes


def built_from(tables: dict[str, pl.DataFrame]) -> set[str]:
    """The staged digests a set of tables was built from."""
    return set(tables["digests"]["digest_id"]) | set(
        tables["quarantine"].filter(pl.col("stage") == "schema:digests")["digest_id"]
    )


def _schema_rejects(
    table: str,
    frame: pl.DataFrame,
    failures: pl.DataFrame,
    appearances: pl.DataFrame,
    digests: pl.DataFrame,
) -> pl.DataFrame:
    """Quarantine rows for published rows that failed their schema, traced to their source."""
    failed = frame.with_row_index("row").join(failures, on="row")
    source = digests.select("digest_id", "source_path")
    if "digest_id" not in failed.columns:  # papers: trace through the first appearance
        first = appearances.sort("digest_date").unique("paper_id", keep="first")
        failed = failed.join(
            first.select("paper_id", "digest_id", "line_start", "line_end"), on="paper_id"
        )
    if "line_start" not in failed.columns:
        failed = failed.with_columns(line_start=pl.lit(1, pl.Int32), line_end=pl.lit(1, pl.Int32))
    raw = pl.struct([c for c in frame.columns]).struct.json_encode()
    return (
        failed.join(source, on="digest_id", how="left", suffix="_src")
        .select(
            source_path=pl.col("source_path_src")
            if "source_path" in failed.columns
            else pl.col("source_path"),
            digest_id="digest_id",
            digest_date=pl.col("digest_date")
            if "digest_date" in failed.columns
            else pl.lit(None, pl.Date),
            line_start="line_start",
            line_end="line_end",
            n_lines=pl.lit(0, pl.Int32),  # its lines are already counted as a valid entry
            stage=pl.lit(f"schema:{table}"),
            reason=pl.lit(f"schema:{table}"),
            message=pl.format("row failed {}", pl.col("checks")),
            raw_text=raw,
        )
        .cast(empty_frame(QuarantineSchema).schema)
    )
