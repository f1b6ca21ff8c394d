"""Per-digest parse results, validated and stored content-addressed by the file's sha256.

Staging is what makes ingestion incremental and idempotent: a digest is parsed once; the
same bytes landing again (under any name) find their result already staged.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from pipelines.core.identity import AbstractLoader, entry_keys, with_entry_keys
from pipelines.core.parsing import PARSER_VERSION, ParsedDigest
from pipelines.core.related import SpilledCounts, Vocabulary, WeighedCounts, WordCounts
from pipelines.core.storage import Storage
from pipelines.core.validation import validate
from schemas.tables import DigestSchema, EntrySchema, QuarantineSchema, empty_frame

# Digest columns decided at build time, not at parse time.
BUILD_TIME_DIGEST_COLUMNS = ("status", "superseded_by")


@dataclass(frozen=True)
class StagedDigest:
    digest: pl.DataFrame  # one row: DigestSchema without the build-time columns
    entries: pl.DataFrame  # EntrySchema
    quarantine: pl.DataFrame  # QuarantineSchema

    @property
    def digest_id(self) -> str:
        return self.digest["digest_id"][0]


def _entries_frame(batch: list[ParsedDigest]) -> pl.DataFrame:
    """The entries of a batch of digests, in one frame built at once (a frame per digest
    cost 1.7 ms each, 1.7 s for 1,000 digests)."""
    pairs = [(parsed, entry) for parsed in batch for entry in parsed.entries]
    schema = empty_frame(EntrySchema).schema
    keys = entry_keys()
    frame = pl.DataFrame(
        {
            "digest_id": [parsed.digest_id for parsed, _ in pairs],
            "source_path": [parsed.source_path for parsed, _ in pairs],
            "digest_date": [parsed.digest_date for parsed, _ in pairs],
            "position": [e.position for _, e in pairs],
            "title": [e.title for _, e in pairs],
            "abstract": [e.abstract for _, e in pairs],
            "title_line": [e.title_line for _, e in pairs],
            "abstract_line": [e.abstract_line for _, e in pairs],
        },
        schema={name: dtype for name, dtype in schema.items() if name not in keys},
    )
    return frame.with_columns(**keys).select(schema.names())


def _quarantine_rows(parsed: ParsedDigest, rows: list[dict]) -> list[dict]:
    base = [
        {
            "line_start": q.line_start,
            "line_end": q.line_end,
            "n_lines": q.n_lines,
            "stage": "file" if parsed.rejected_reason else "record",
            "reason": q.reason,
            "message": q.message,
            "raw_text": q.raw_text,
        }
        for q in parsed.quarantine
    ]
    return [
        {
            "source_path": parsed.source_path,
            "digest_id": parsed.digest_id,
            "digest_date": parsed.digest_date,
            **row,
        }
        for row in base + rows
    ]


def stage_digests(batch: list[ParsedDigest]) -> list[StagedDigest]:
    """Frames for parsed digests; entries failing EntrySchema move to quarantine.

    One Pandera validation covers the whole batch: per-digest calls cost more than the
    checks themselves."""
    if not batch:
        return []
    entries = _entries_frame(batch)
    checked = validate(entries, EntrySchema)
    failed_by_digest: dict[str, list[dict]] = {}
    valid = checked.valid
    if checked.n_failed:
        failed = entries.with_row_index("row").join(checked.failures, on="row")
        for row in failed.iter_rows(named=True):
            failed_by_digest.setdefault(row["digest_id"], []).append(
                {
                    "line_start": row["title_line"],
                    "line_end": row["abstract_line"],
                    "n_lines": 2,
                    "stage": "record",
                    "reason": "schema:entries",
                    "message": f"entry failed {row['checks']}",
                    "raw_text": f"{row['title']}\n\n{row['abstract']}",
                }
            )
        valid = valid.with_columns(
            position=pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("digest_id")
        )
    # Each kind of frame is built once for the batch and sliced per digest: a frame per
    # digest cost 0.4 s for 1,000 digests.
    by_digest = valid.partition_by("digest_id", as_dict=True, maintain_order=True)
    quarantined = [_quarantine_rows(p, failed_by_digest.get(p.digest_id, [])) for p in batch]
    quarantine = pl.DataFrame(
        [row for rows in quarantined for row in rows], schema=empty_frame(QuarantineSchema).schema
    )
    empty = empty_frame(EntrySchema)
    n_valid = [by_digest.get((p.digest_id,), empty).height for p in batch]
    digests = pl.DataFrame(
        [_digest_row(p, n, rows) for p, n, rows in zip(batch, n_valid, quarantined, strict=True)],
        schema={
            name: dtype
            for name, dtype in empty_frame(DigestSchema).schema.items()
            if name not in BUILD_TIME_DIGEST_COLUMNS
        },
    )
    staged, start = [], 0
    for i, parsed in enumerate(batch):
        rows = len(quarantined[i])
        staged.append(
            StagedDigest(
                digests.slice(i, 1),
                by_digest.get((parsed.digest_id,), empty),
                quarantine.slice(start, rows),
            )
        )
        start += rows
    return staged


def stage_digest(parsed: ParsedDigest) -> StagedDigest:
    return stage_digests([parsed])[0]


def _digest_row(parsed: ParsedDigest, n_valid: int, quarantined: list[dict]) -> dict:
    """The staged digest row (DigestSchema without the build-time columns)."""
    return {
        "digest_id": parsed.digest_id,
        "source_path": parsed.source_path,
        "digest_date": parsed.digest_date,
        "date_label": parsed.date_label,
        "date_source": parsed.date_source,
        "n_entries": n_valid + sum(1 for row in quarantined if row["stage"] == "record"),
        "n_valid": n_valid,
        "n_quarantined": len(quarantined),
        "n_lines": parsed.n_nonblank_lines,
        "n_header_lines": parsed.n_header_lines,
        "n_quarantined_lines": sum(row["n_lines"] for row in quarantined),
        "n_bytes": parsed.n_bytes,
        "encoding": parsed.encoding,
        "warnings": "; ".join(parsed.warnings) or None,
        "landed_at": parsed.landed_at,
        "parser_version": PARSER_VERSION,
    }


class StagingArea:
    """Parse results in packs, on the warehouse's storage (a local folder or S3):
    `<warehouse>/staging/packs/<pack_id>/{digest,entries,quarantine}.parquet` hold the rows
    of a batch of digests (one pack per parse step), so a build reads a few files, not
    three per digest. Each file is written whole and the quarantine file, the marker,
    last: a pack without it is not there yet. A digest is staged once a complete pack holds
    it; one held by two packs (two runs staged the same bytes, or a merge was cut short)
    is read from the first. The small packs that day-by-day runs leave are merged into one
    from time to time (`compact`).

    Warehouses staged before packs hold `staging/digests/<digest_id>/`: packs of one
    digest, read the same way and merged away by the next compaction."""

    FILES = ("digest", "entries", "quarantine")
    MARKER = FILES[-1]  # written last: a pack without it is not staged
    FOLDERS = ("digests", "packs")  # digests/: one digest per pack, as staged before packs
    # A pack of fewer digests than this is small; more than MAX_SMALL_PACKS of them are
    # merged into one, so merging rewrites a bounded number of digests, never the history.
    SMALL_PACK = 100
    MAX_SMALL_PACKS = 16
    _READ_ATTEMPTS = 3  # a merge by another run may delete packs between listing and reading
    MAX_COUNT_PIECES = 8  # pieces of the word counts kept for related papers, then one
    MAX_SENTENCE_PIECES = 8  # pieces of the kept sentence hashes, then one

    def __init__(self, storage: Storage, prefix: str = "staging"):
        self.storage = storage
        self.prefix = prefix

    def _file(self, pack: str, name: str) -> str:
        return f"{self.prefix}/{pack}/{name}.parquet"

    def _packs(self) -> list[str]:
        """The complete packs (`packs/<id>`, or `digests/<id>` as staged before packs), in
        one listing per folder (one paged request each on S3, not one per digest)."""
        return sorted(
            f"{folder}/{path.split('/')[0]}"
            for folder in self.FOLDERS
            for path in self.storage.files(f"{self.prefix}/{folder}")
            if path.count("/") == 1 and path.endswith(f"/{self.MARKER}.parquet")
        )

    def _rows(self, name: str, packs: list[str], columns: list[str] | None = None) -> pl.DataFrame:
        """Rows of one kind from `packs`, each digest's from the first pack that holds it,
        with the pack in column `pack`."""

        def read(name: str, columns: list[str] | None) -> pl.DataFrame:
            files = [self._file(pack, name) for pack in packs]
            schema = None
            if name == "entries":  # packs staged before the entries' keys were kept lack them
                schema = {
                    column: dtype
                    for column, dtype in empty_frame(EntrySchema).schema.items()
                    if columns is None or column in columns
                }
            frame = self.storage.read_parquet(files, columns, file_column="pack", schema=schema)
            return frame.with_columns(_pack_of(pl.col("pack")))

        frame = read(name, columns)
        if name == "entries" and {"title", "abstract", "keys_version"} <= set(frame.columns):
            frame = with_entry_keys(frame)
        has_ids = name == "digest" and "digest_id" in frame.columns
        index = frame.select("digest_id", "pack") if has_ids else read("digest", ["digest_id"])
        if index["digest_id"].n_unique() == index.height:
            return frame
        first = index.sort("pack").unique("digest_id", keep="first")
        return frame.join(first, on=["digest_id", "pack"], how="semi", maintain_order="left")

    def _read(self, name: str, columns: list[str] | None = None) -> pl.DataFrame:
        """Rows of one kind from every pack, listed and read again when a merge by another
        run deleted a pack in between."""
        for attempt in range(self._READ_ATTEMPTS):
            packs = self._packs()
            if not packs:
                return self._empty(name).select(columns or pl.all())
            try:
                return self._rows(name, packs, columns)
            except FileNotFoundError:
                if attempt == self._READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _empty(name: str) -> pl.DataFrame:
        model = {"digest": DigestSchema, "entries": EntrySchema, "quarantine": QuarantineSchema}
        empty = empty_frame(model[name]).with_columns(pack=pl.lit(None, pl.String))
        return empty.drop(BUILD_TIME_DIGEST_COLUMNS) if name == "digest" else empty

    def digest_ids(self) -> list[str]:
        """The staged digests, sorted."""
        return sorted(self._read("digest", ["digest_id"])["digest_id"])

    def read(self, name: str) -> pl.DataFrame:
        """All staged rows of one kind (digest, entries or quarantine)."""
        return self._read(name).drop("pack")

    def entries_without_abstracts(self) -> tuple[pl.DataFrame, AbstractLoader]:
        """Every staged entry with its abstract null, and what loads the abstracts of given
        entries. A build adding a digest needs the abstracts of the few papers it touches:
        at 10,000 digests, every entry's abstract is 1.1 GB."""
        columns = empty_frame(EntrySchema).columns
        entries = self._read("entries", [c for c in columns if c != "abstract"]).drop("pack")
        # Which pack holds each digest, found by the first load and kept for the others
        # (adding a digest to 1,000, a build loads abstracts 5-6 times).
        first_packs: list[pl.DataFrame] = []

        def load(wanted: pl.DataFrame) -> pl.DataFrame:
            return self._abstracts_of(wanted, first_packs)

        # Entries staged with other keys get theirs computed where matched, from their
        # abstracts (see identity.with_entry_keys).
        return entries.with_columns(abstract=pl.lit(None, pl.String)).select(columns), load

    def _abstracts_of(self, entries: pl.DataFrame, first_packs: list[pl.DataFrame]) -> pl.DataFrame:
        """(digest_id, position, abstract) of staged `entries` (digest_id, position), each
        digest's read from the first pack holding it, as `read` does. `first_packs`: where
        the (digest_id, pack) found are kept, or were by an earlier call."""
        for attempt in range(self._READ_ATTEMPTS):  # a merge by another run may move them
            try:
                if not first_packs:
                    first_packs.append(self._first_packs())
                return self._abstracts_in_packs(entries, first_packs[0])
            except FileNotFoundError:
                first_packs.clear()  # found again from the packs there now
                if attempt == self._READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _first_packs(self) -> pl.DataFrame:
        """(digest_id, pack): the first pack holding each staged digest."""
        return (
            self._rows("digest", self._packs(), ["digest_id"])
            .select("digest_id", "pack")
            .sort("pack")
            .unique("digest_id", keep="first")
        )

    def _abstracts_in_packs(self, entries: pl.DataFrame, first_packs: pl.DataFrame) -> pl.DataFrame:
        wanted = entries.select("digest_id", "position").unique()
        ids = wanted["digest_id"].unique().implode()
        first = first_packs.filter(pl.col("digest_id").is_in(ids))
        files = [self._file(pack, "entries") for pack in first["pack"].unique().sort()]
        if not files:
            return wanted.with_columns(abstract=pl.lit(None, pl.String)).head(0)
        found = self.storage.read_parquet(
            files,
            ["digest_id", "position", "abstract"],
            file_column="pack",
            where=pl.col("digest_id").is_in(ids),
        ).with_columns(_pack_of(pl.col("pack")))
        return (
            found.join(first, on=["digest_id", "pack"], how="semi")
            .join(wanted, on=["digest_id", "position"], how="semi")
            .drop("pack")
        )

    def write(self, staged: list[StagedDigest], known: set[str] | None = None) -> list[str]:
        """Store the digests not staged yet as one pack; returns their ids. Two runs
        staging the same digests write the same pack. `known`: the staged ids, when the
        caller has just read them (reading them lists and opens every pack: at 10,000
        digests, a hundred runs' packs, 12 ms a batch); a digest staged by another run
        since is then staged twice, and read from the first pack holding it."""
        known = set(self.digest_ids()) if known is None else known
        fresh = {s.digest_id: s for s in staged if s.digest_id not in known}
        if fresh:
            self._write_pack(
                {name: pl.concat([getattr(s, name) for s in fresh.values()]) for name in self.FILES}
            )
        return list(fresh)

    def _write_pack(self, frames: dict[str, pl.DataFrame]) -> str:
        ids = "\n".join(sorted(frames["digest"]["digest_id"]))
        pack = f"packs/{hashlib.sha256(ids.encode()).hexdigest()[:32]}"
        for name in self.FILES:  # quarantine, the marker, comes last
            self.storage.write_parquet(frames[name], self._file(pack, name))
        return pack

    def compact(self) -> int:
        """Merge the small packs into one once there are more than MAX_SMALL_PACKS of them;
        returns how many digests moved. The merged pack is complete before the small ones
        go, so a reader meanwhile finds every digest (twice at worst: read once)."""
        packs = self._packs()
        if len(packs) <= self.MAX_SMALL_PACKS:
            return 0
        sizes = self._rows("digest", packs, ["digest_id"]).group_by("pack").len()
        small = sorted(sizes.filter(pl.col("len") < self.SMALL_PACK)["pack"])
        if len(small) <= self.MAX_SMALL_PACKS:
            return 0
        frames = {name: self._rows(name, small).drop("pack") for name in self.FILES}
        self._write_pack(frames)
        for pack in small:
            self.storage.delete(self._file(pack, self.MARKER))  # incomplete from here on
            self.storage.delete_folder(f"{self.prefix}/{pack}")
        return frames["digest"].height

    @property
    def _index_path(self) -> str:
        return f"{self.prefix}/landed-index.json"

    def landed_index(self) -> dict[str, list]:
        """key -> [size, mtime_ns, digest_id] of files already staged: a cache that lets a
        run skip re-hashing unchanged files (losing it only costs a re-hash)."""
        try:
            return json.loads(self.storage.read_bytes(self._index_path))
        except (OSError, ValueError):
            return {}

    def remember_landed(self, entries: dict[str, list]) -> None:
        if not entries:
            return
        index = self.landed_index() | entries
        self.storage.write_bytes(self._index_path, json.dumps(index, sort_keys=True).encode())

    def _related_file(self, name: str) -> str:
        return f"{self.prefix}/related/{name}"

    def save_related_state(
        self,
        key: str,
        vocabulary: pl.DataFrame,
        counts: WordCounts | SpilledCounts | Callable[[], WordCounts | SpilledCounts],
        kept_pieces: tuple[str, ...] = (),
        new_counts: WordCounts | SpilledCounts | None = None,
    ) -> None:
        """Keep what related_papers with content hash `key` was computed from: its
        vocabulary and the papers' word counts `counts` (or a function that makes them,
        called only when they are written). The counts are kept in pieces: the pieces they
        were read from (`kept_pieces`) and one more for `new_counts`, those counted by this
        build (default: all), so a build does not write again the counts of every paper;
        past MAX_COUNT_PIECES, all of them go into one. A build that finds no state
        recomputes related papers in full."""
        if vocabulary.height == 0 or self.storage.exists(self._related_file(f"{key}.pieces.json")):
            return
        pieces = list(kept_pieces)
        if new_counts is None or len(pieces) >= self.MAX_COUNT_PIECES:
            pieces, new_counts = [], counts() if callable(counts) else counts
        if new_counts.papers.height:
            pieces.append(uuid.uuid4().hex)
            papers_file, words_file = _piece_files(pieces[-1])
            if isinstance(new_counts, SpilledCounts):  # written already, as kept here
                self.storage.write_file(new_counts.words_file, self._related_file(words_file))
            else:
                self.storage.write_parquet(new_counts.words, self._related_file(words_file))
            self.storage.write_parquet(new_counts.papers, self._related_file(papers_file))
        self.storage.write_parquet(vocabulary, self._related_file(f"{key}.vocabulary.parquet"))
        # The list of pieces last: without it, the state is not used.
        self.storage.write_bytes(
            self._related_file(f"{key}.pieces.json"), json.dumps(pieces).encode()
        )

    def keep_related_state(self, key: str) -> None:
        """Delete every related-papers state but the one saved under `key`: called once a
        release with that related_papers hash is published, not when a build saves its
        state, which would delete the state of a concurrent build about to publish (and
        its next build would recompute related papers in full, with other weights)."""
        pieces = self.count_pieces(key)
        keep = {f"{key}.vocabulary.parquet", f"{key}.pieces.json"}
        keep |= {file for piece in pieces for file in _piece_files(piece)}
        for name in self.storage.files(f"{self.prefix}/related"):
            if name not in keep:
                self.storage.delete(self._related_file(name))

    def count_pieces(self, key: str) -> tuple[str, ...]:
        """The pieces that hold the word counts of the state saved under `key`."""
        try:
            return tuple(
                json.loads(self.storage.read_bytes(self._related_file(f"{key}.pieces.json")))
            )
        except (OSError, ValueError):
            return ()

    def related_state(
        self, key: str, pieces: tuple[str, ...] | None = None
    ) -> tuple[pl.DataFrame, WordCounts] | None:
        """(vocabulary, word counts) saved under `key`, or None. A paper counted in two
        pieces (its text changed) has the counts of the later one. `pieces`:
        count_pieces(key), when the caller has read them already."""
        pieces = self.count_pieces(key) if pieces is None else pieces
        if not pieces:
            return None
        try:
            vocabulary = self._vocabulary(key)
            counts = self._counts(pieces)
        except (OSError, pl.exceptions.PolarsError):
            return None
        return vocabulary, counts

    def weighed_related_state(
        self, key: str, pieces: tuple[str, ...] | None = None
    ) -> tuple[Vocabulary, WeighedCounts] | None:
        """The vocabulary saved under `key` and the counts of the words it weighs, or None
        (none saved, or hashed otherwise): all a build needs while that vocabulary is
        current. Every count is read only if asked for."""
        pieces = self.count_pieces(key) if pieces is None else pieces
        if not pieces:
            return None
        try:
            vocabulary = Vocabulary.from_frame(self._vocabulary(key))
            if vocabulary is None:
                return None
            counts = self._counts(pieces, excluding=vocabulary.common())
        except (OSError, pl.exceptions.PolarsError):
            return None

        def read_all() -> WordCounts | None:
            state = self.related_state(key, pieces)
            return None if state is None else state[1]

        return vocabulary, WeighedCounts(counts, vocabulary, read_all)

    def _vocabulary(self, key: str) -> pl.DataFrame:
        return self.storage.read_parquet([self._related_file(f"{key}.vocabulary.parquet")])

    def _counts(self, pieces: tuple[str, ...], excluding: pl.Series | None = None) -> WordCounts:
        """The word counts kept in `pieces`, but the rows of the words `excluding`."""
        counts = [self._read_piece(piece, excluding) for piece in pieces]
        # The counts of papers counted again in a later piece are dropped; a piece is
        # copied only when it has any (a paper's text seldom changes).
        for i in range(len(counts) - 1):
            later = pl.concat([c.papers["paper_id"] for c in counts[i + 1 :]])
            stale = counts[i].papers["paper_id"].is_in(later.implode())
            if stale.any():
                counts[i] = counts[i].without(stale)
        return WordCounts.concat(counts)

    def _read_piece(self, piece: str, excluding: pl.Series | None = None) -> WordCounts:
        files = [self._related_file(file) for file in _piece_files(piece)]
        kept = None if excluding is None else ~pl.col("word").is_in(excluding.implode())
        if len(files) == 1:  # a list of words per paper, as an earlier version kept them
            counts = _from_lists(self.storage.read_parquet(files))
            if kept is None:
                return counts
            return WordCounts.of_rows(
                counts.papers, counts.words.with_row_index("row").filter(kept)
            )
        papers_file, words_file = files
        papers = self.storage.read_parquet([papers_file])
        if kept is None:
            words = self.storage.read_parquet([words_file])
            n_words = words.height
        else:  # the rows left out are not read: their number is in the file's footer
            found = self.storage.read_parquet([words_file], where=kept, row_index="row")
            n_words = self.storage.n_rows(words_file)
        if papers["n"].sum() != n_words:  # damaged: related papers computed in full
            raise pl.exceptions.ShapeError(f"{piece}: {n_words} words for the papers' n")
        return WordCounts(papers, words) if kept is None else WordCounts.of_rows(papers, found)

    def _changes_file(self, release: int, papers_hash: str) -> str:
        return f"{self.prefix}/changes/{int(release)}-{papers_hash}.parquet"

    def save_paper_changes(self, release: int, papers_hash: str, changes: pl.DataFrame) -> None:
        """Keep the diff from release `release`'s papers to the papers with content hash
        `papers_hash`, for the release that publishes them."""
        self.storage.write_parquet(changes, self._changes_file(release, papers_hash))

    def keep_paper_changes(self, release: int) -> None:
        """Delete the kept diffs against releases before `release`: called once `release`
        is published (like keep_related_state, not by a build, which would delete the diff
        of a concurrent build about to publish)."""
        for name in self.storage.files(f"{self.prefix}/changes"):
            if not name.startswith(f"{int(release)}-"):
                self.storage.delete(f"{self.prefix}/changes/{name}")

    def paper_changes(self, release: int, papers_hash: str) -> pl.DataFrame | None:
        """The kept diff from release `release` to papers `papers_hash`, or None."""
        try:
            return self.storage.read_parquet([self._changes_file(release, papers_hash)])
        except (OSError, pl.exceptions.PolarsError):
            return None

    def _row_hashes_file(self, papers_hash: str) -> str:
        # Row hashes are Polars' own (see hashing.row_hashes): kept for one version of it.
        return f"{self.prefix}/papers/{papers_hash}-polars-{pl.__version__}.parquet"

    def save_paper_row_hashes(self, papers_hash: str, hashes: pl.DataFrame) -> None:
        """Keep the (paper_id, row_hash) of the papers with content hash `papers_hash`: the
        next build hashes the papers it keeps from these, without reading their rows."""
        self.storage.write_parquet(hashes, self._row_hashes_file(papers_hash))

    def keep_paper_row_hashes(self, papers_hash: str) -> None:
        """Delete the kept row hashes of other papers than `papers_hash`: called once a
        release publishes them (as keep_related_state)."""
        kept = self._row_hashes_file(papers_hash).rsplit("/", 1)[1]
        for name in self.storage.files(f"{self.prefix}/papers"):
            if name != kept:
                self.storage.delete(f"{self.prefix}/papers/{name}")

    def paper_row_hashes(self, papers_hash: str) -> pl.DataFrame | None:
        """The kept (paper_id, row_hash) of papers `papers_hash`, or None."""
        try:
            return self.storage.read_parquet([self._row_hashes_file(papers_hash)])
        except (OSError, pl.exceptions.PolarsError):
            return None

    @property
    def _sentences_folder(self) -> str:
        return f"{self.prefix}/matching/sentences"

    def _sentence_pieces(self) -> list[str]:
        legacy = f"{self.prefix}/matching/sentences.parquet"  # one file, before pieces
        folder = self._sentences_folder
        pieces = [f"{folder}/{name}" for name in self.storage.files(folder)]
        return [legacy, *pieces] if self.storage.exists(legacy) else pieces

    def save_sentences(self, frame: pl.DataFrame, kept: pl.DataFrame | None = None) -> None:
        """Keep the sentence hashes of the papers' latest abstracts (SentenceCache): the
        rows of `frame` that `kept` (what sentences() gave this build) lacks, as a piece of
        their own, so a build does not write every paper's again (541,222 papers: 0.46 s);
        past MAX_SENTENCE_PIECES, all of them as one, and the other pieces go."""
        pieces = self._sentence_pieces()
        if kept is not None and len(pieces) < self.MAX_SENTENCE_PIECES:
            frame, pieces = frame.join(kept, on=["paper_id", "abstract_hash"], how="anti"), []
        if frame.height:
            self.storage.write_parquet(
                frame, f"{self._sentences_folder}/{uuid.uuid4().hex}.parquet"
            )
        for piece in pieces:  # merged into the one just written
            self.storage.delete(piece)

    def sentences(self) -> pl.DataFrame | None:
        """The kept sentence hashes, or None (then every abstract is hashed again). A row
        is kept once per (paper, abstract): two runs may have written the same rows."""
        try:
            pieces = self._sentence_pieces()
            frame = self.storage.read_parquet(pieces) if pieces else None
        except (OSError, pl.exceptions.PolarsError):
            return None  # a piece merged away by another run meanwhile: only time is lost
        key = ["paper_id", "abstract_hash"]
        if frame is not None and len(pieces) > 1 and frame.select(key).is_duplicated().any():
            frame = frame.unique(key, keep="first", maintain_order=True)
        return frame


def _pack_of(uri: pl.Expr) -> pl.Expr:
    """A pack's name from one of its files' URIs:
    .../staging/<folder>/<id>/<name>.parquet -> <folder>/<id>."""
    return uri.str.split("/").list.slice(-3, 2).list.join("/")


def _piece_files(piece: str) -> tuple[str, ...]:
    """The files of a piece of word counts: (papers, words), or the one file of a piece
    kept as a list of words per paper by an earlier version."""
    if piece.endswith(".parquet"):
        return (f"counts/{piece}",)
    return (f"counts/{piece}.papers.parquet", f"counts/{piece}.words.parquet")


def _from_lists(counts: pl.DataFrame) -> WordCounts:
    """WordCounts of (paper_id, words, tf) rows, a list of words per paper."""
    return WordCounts(
        counts.select("paper_id", n=pl.col("words").list.len().cast(pl.UInt32)),
        counts.select(
            pl.col("words").explode(empty_as_null=False).alias("word"),
            pl.col("tf").explode(empty_as_null=False),
        ),
    )
