"""Which entries are the same paper, and the paper's stable id.

Two entries are one paper when their abstracts say so: the same abstract, or one revised
by small edits. Titles narrow the search and guard the decision: a folded title (see
`text.title_key_expr`) equal to one the paper went by, or within a typo or two of it.
Two papers that share a title but whose abstracts clearly differ stay apart.

Matching is incremental. Entries of digests already published keep the paper_id they were
published with; only the others are matched, against every paper known so far, through
two indexes (folded title, abstract sentences) rather than against every paper.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
from rapidfuzz import fuzz

from pipelines.core.frames import by_slices
from pipelines.core.text import SPACING, abstract_key_expr, fold_abstract, title_key_expr
from schemas.tables import MATCH_REASONS

# Similarity (RapidFuzz ratio, 0-100) from which two abstracts are one paper's: revisions
# of one abstract score above 90; unrelated abstracts on the same topic score 40-70.
# Chosen on the labelled pairs in benchmarks/matching (see BENCHMARKS.md).
SAME_ABSTRACT_MIN_SIMILARITY = 80.0
# Similarity from which two folded titles are variants (a typo or two) of one title.
SIMILAR_TITLE_MIN_SIMILARITY = 85.0
# An identical abstract merges entries whatever their titles, when it is this long.
SAME_ABSTRACT_MIN_CHARS = 200
# Sentences shared by more papers than this are boilerplate, not evidence.
MAX_PAPERS_PER_SENTENCE = 16
# The order in which entries are matched, and in which assign_paper_ids returns them.
ENTRY_ORDER = ["digest_date", "position", "digest_id"]
# An entry's matching keys are computed once, when it is staged, not by every build for
# every entry of the history. Bump with any change to what entry_keys computes: entries
# staged under another version have their keys computed again when read.
ENTRY_KEYS_VERSION = 1


def entry_keys() -> dict[str, pl.Expr]:
    """The matching keys of entries (title, abstract): EntrySchema's title_key,
    abstract_hash and keys_version."""
    return {
        "title_key": title_key_expr("title"),
        "abstract_hash": pl.col("abstract").hash(0),
        "keys_version": pl.lit(ENTRY_KEYS_VERSION, pl.Int16),
    }


# (digest_id, position, abstract) of the given entries (digest_id, position). Entries may be
# given with their abstracts null, and a loader for those the work needs: adding a digest
# needs the abstracts of the papers it touches, not the history's.
AbstractLoader = Callable[[pl.DataFrame], pl.DataFrame]


def fill_abstracts(rows: pl.DataFrame, load: AbstractLoader | None) -> pl.DataFrame:
    """`rows` (entries: digest_id, position, abstract) with the abstracts that are null
    loaded. A valid entry's abstract is never null: null is not loaded."""
    if rows["abstract"].null_count() == 0:
        return rows
    missing = rows.filter(pl.col("abstract").is_null()).select("digest_id", "position")
    if load is None:
        raise ValueError(f"{missing.height} entries lack their abstract and none can be loaded")
    missing = missing.unique()
    loaded = load(missing).select("digest_id", "position", _loaded="abstract")
    if loaded.height != missing.height:  # staging lost them: a build must not go on
        raise ValueError(f"{missing.height - loaded.height} entries' abstracts were not found")
    return (
        rows.join(loaded, on=["digest_id", "position"], how="left", maintain_order="left")
        .with_columns(abstract=pl.coalesce("abstract", "_loaded"))
        .drop("_loaded")
    )


# Entries whose abstracts are loaded at once where they were given null, in ENTRY_ORDER:
# one chunk's digests lie in a few staged packs, and only one chunk's abstracts are held
# at a time. A full build of 10,000 digests held every entry's abstract (1.2 GB) through
# its matching; loaded 13,000 entries scattered over every digest at once, the reading
# took 1.7 GB, while 50,000 consecutive entries took 88 MB. The latest abstracts of the
# 541,222 papers of 10,000 digests (850 MB) were loaded at a peak of 1,328 MB above what
# was held before in chunks of 100,000, 1,028 MB in chunks of 25,000 (2.4 s, 2.8 s).
ENTRIES_PER_LOAD = 25_000


def abstracts_in_chunks(
    rows: pl.DataFrame,
    load: AbstractLoader | None,
    chunk: pl.Series | None = None,
) -> pl.Series:
    """The abstract of each of `rows` (digest_id, position, abstract), those given null
    loaded by `load` a chunk of rows at a time: rows whose `chunk` number is the same
    (by default ENTRIES_PER_LOAD rows in their order), so rows in ENTRY_ORDER are loaded a
    few packs at a time. Each chunk's abstracts are copied out of what was read, which
    holds the rest of those digests' abstracts too."""
    rows = rows.select("digest_id", "position", "abstract")
    if rows["abstract"].null_count() == 0:
        return rows["abstract"]
    if chunk is None:
        chunk = pl.int_range(rows.height, dtype=pl.UInt32, eager=True) // ENTRIES_PER_LOAD
    numbered = rows.with_row_index("_row").with_columns(_chunk=chunk)
    loaded = [
        fill_abstracts(part.drop("_chunk"), load).select("_row", abstract=_copied("abstract"))
        for part in numbered.partition_by("_chunk", maintain_order=True)
    ]
    return pl.concat(loaded, how="vertical").sort("_row")["abstract"]


def _copied(text: str) -> pl.Expr:
    """The strings of column `text` in buffers of their own (a concatenation makes new
    strings), not views into the buffers they were read in."""
    return pl.concat_str(pl.col(text), pl.lit(""))


def with_entry_keys(entries: pl.DataFrame, load: AbstractLoader | None = None) -> pl.DataFrame:
    """`entries` with their matching keys: those kept under ENTRY_KEYS_VERSION as they
    are, the others (none kept, or kept by another version) computed now, from their
    abstracts (loaded by `load` where null)."""
    if "keys_version" not in entries.columns:
        return fill_abstracts(entries, load).with_columns(**entry_keys())
    stale = (entries["keys_version"] != ENTRY_KEYS_VERSION).fill_null(True)
    if not stale.any():
        return entries
    rows = stale.arg_true()
    fresh = fill_abstracts(entries[rows], load).select("abstract", **entry_keys())
    return entries.with_columns(
        entries[name].cast(fresh[name].dtype).scatter(rows, fresh[name]) for name in fresh.columns
    )


def mint_paper_id(title_key: str, abstract_key: str) -> str:
    """Id of a new paper, derived from its first-seen entry so that a fresh build from the
    same files mints the same ids whatever order the files landed in."""
    digest = hashlib.sha256(f"{title_key}\x1f{abstract_key}".encode()).hexdigest()
    return f"p{digest[:15]}"


@dataclass(eq=False)  # compared by identity: cheap membership tests
class _Paper:
    paper_id: str
    abstract_key: str  # the latest abstract seen: revisions are matched against it
    title_keys: set[str] = field(default_factory=set)


class PaperIndex:
    """The papers a new (title, abstract) pair may belong to (the known candidates, and
    the papers minted so far in this build), indexed by folded title and by sentence.
    `boilerplate` is decided before matching, over the known papers and the new pairs
    together, so whether a sentence is evidence does not depend on the order of entries."""

    def __init__(self) -> None:
        self.papers: dict[str, _Paper] = {}
        self.by_title: dict[str, list[_Paper]] = {}
        self.by_sentence: dict[int, list[_Paper]] = {}
        self.boilerplate: set[int] = set()  # sentences too common to be evidence

    def add(self, paper_id: str, title_key: str, abstract_key: str, sentences: list[int]) -> None:
        """Record that `paper_id` appeared with this title and abstract (latest last)."""
        paper = self.papers.get(paper_id)
        if paper is None:
            paper = self.papers[paper_id] = _Paper(paper_id, abstract_key)
        paper.abstract_key = abstract_key
        if title_key not in paper.title_keys:
            paper.title_keys.add(title_key)
            self.by_title.setdefault(title_key, []).append(paper)
        for sentence in sentences:
            if sentence in self.boilerplate:
                continue
            holders = self.by_sentence.setdefault(sentence, [])
            if paper not in holders[-2:]:
                holders.append(paper)

    def match(self, title_key: str, abstract_key: str, sentences: list[int]) -> str | None:
        """The paper this pair belongs to, or None for a new paper."""
        candidates = dict.fromkeys(self.by_title.get(title_key, ()))  # an ordered set
        # A paper sharing sentences is a candidate when it shares two, or all there are:
        # one sentence in common is what unrelated abstracts on one topic have.
        need, shared = min(2, len(sentences)), {}
        for sentence in sentences:
            holders = self.by_sentence.get(sentence)
            if holders:
                for paper in holders:
                    n = shared[paper] = shared.get(paper, 0) + 1
                    if n == need:
                        candidates[paper] = None
        best, best_score = None, (0.0, 0.0)
        for paper in candidates:
            score = _score(paper, title_key, abstract_key)
            if score is not None and score > best_score:
                best, best_score = paper, score
        return best.paper_id if best else None


def _score(paper: _Paper, title_key: str, abstract_key: str) -> tuple[float, float] | None:
    """(abstract similarity, title similarity) when the pair is this paper, else None."""
    title = max(fuzz.ratio(title_key, known) for known in paper.title_keys)
    if abstract_key == paper.abstract_key:
        if title >= SIMILAR_TITLE_MIN_SIMILARITY or len(abstract_key) >= SAME_ABSTRACT_MIN_CHARS:
            return 100.0, title
        return None
    if title < SIMILAR_TITLE_MIN_SIMILARITY:
        return None
    abstract = fuzz.ratio(
        abstract_key, paper.abstract_key, score_cutoff=SAME_ABSTRACT_MIN_SIMILARITY
    )
    return (abstract, title) if abstract else None


class SentenceCache:
    """The sentence hashes of each paper's latest abstract (paper_id, abstract_hash,
    sentences), kept between builds: hashing the sentences of every known abstract is
    most of what finding a new digest's candidates costs. An abstract whose hash is not
    cached is hashed again, so a missing or stale cache costs time, never a wrong match."""

    COLUMNS = ("paper_id", "abstract_hash", "sentences")

    def __init__(self, frame: pl.DataFrame | None = None) -> None:
        empty = pl.DataFrame(
            schema={
                "paper_id": pl.String,
                "abstract_hash": pl.UInt64,
                "sentences": pl.List(pl.UInt64),
            }
        )
        self.frame = frame.select(self.COLUMNS) if frame is not None else empty

    def sentences_of(
        self,
        latest: pl.DataFrame,
        hashed: pl.DataFrame | None = None,
        load: AbstractLoader | None = None,
    ) -> pl.DataFrame:
        """(paper_id, abstract_hash, sentences) of `latest` (paper_id, abstract and its
        entry's abstract_hash, digest_id and position): cached, found in `hashed`
        (abstract_hash, sentences), or hashed now (abstracts not given loaded by `load`)."""
        keyed = latest.select("paper_id", "abstract_hash").with_row_index("row")
        # Joined on the paper too: the cache holds a row per paper, so it needs no
        # deduplicating by hash, which copied every list (541,222 papers: 0.36 s, not 0.49).
        # The abstracts are not joined, only gathered for the rows the cache misses: adding
        # a digest to 10,000, the join took 0.66-0.97 s with them, 0.34-0.42 s without.
        found = keyed.join(self.frame, on=["paper_id", "abstract_hash"], how="left")
        missing = found.filter(pl.col("sentences").is_null()).drop("sentences")
        carried = [c for c in ("abstract", "digest_id", "position") if c in latest.columns]
        missing = missing.hstack(latest.select(pl.col(carried).gather(missing["row"])))
        if hashed is not None:
            # Their rows found by hash, then the lists gathered once: made distinct first,
            # the lists were copied twice (541,273 papers of a full build, at its peak).
            first = hashed.select("abstract_hash").with_row_index("_hashed")
            found_rows = missing.join(
                first.unique("abstract_hash"), on="abstract_hash", how="left", maintain_order="left"
            )["_hashed"]
            missing = missing.with_columns(hashed["sentences"].gather(found_rows))
        else:
            missing = missing.with_columns(sentences=pl.lit(None, self.frame.schema["sentences"]))
        unhashed = pl.col("sentences").is_null()
        return pl.concat(
            [
                found.filter(~unhashed).select(self.COLUMNS),
                missing.filter(~unhashed).select(self.COLUMNS),
                fill_abstracts(missing.filter(unhashed), load).select(
                    "paper_id", "abstract_hash", sentences=_sentences_expr("abstract")
                ),
            ],
            how="vertical",
        )


def assign_paper_ids(
    entries: pl.DataFrame,
    published: pl.DataFrame | None = None,
    sentence_cache: SentenceCache | None = None,
    load: AbstractLoader | None = None,
) -> pl.DataFrame:
    """Add `paper_id`, `title_key`, `match_reason` and `published_as_is` to entries, in
    ENTRY_ORDER. `published_as_is`: the entry kept the id published for its digest and
    position, having the title published there.

    entries: digest_id, position, digest_date, title, abstract (other columns are kept).
    published: digest_id, position, title, paper_id (and match_reason) of the entries
    already published (the published appearances); they keep their ids. The others are
    matched in (digest_date, position) order, so results are deterministic, against the
    known papers that could be theirs: those found through the two indexes, computed in
    Polars, so the Python work follows what is new rather than everything published.
    `sentence_cache` is used and left holding the sentences of every paper's latest
    abstract. Abstracts given null are loaded by `load` where needed, a chunk of entries
    at a time (see ENTRIES_PER_LOAD): those of the entries matched, of papers an entry
    joined and of cached sentences missed. They are returned null as given: a build of
    every staged digest never holds every abstract.
    """
    cache = sentence_cache or SentenceCache()
    entries = with_entry_keys(entries.sort(ENTRY_ORDER), load)
    columns = ["digest_id", "position", "title", "paper_id", "match_reason"]
    if published is not None and published.height:
        published = published.select(c for c in columns if c in published.columns)
        # An entry keeps the id published for its digest and position if it has the title
        # published there. Joined on the two, the titles compared after: hashing the
        # titles too took twice as long (at 10,000 digests, 0.22-0.37 s against 0.16-0.19).
        entries = entries.join(
            published.rename(
                {"match_reason": "_published_reason", "title": "_title"}, strict=False
            ),
            on=["digest_id", "position"],
            how="left",
            maintain_order="left",
        )
        same_title = pl.col("title") == pl.col("_title")
        published_columns = [c for c in ("paper_id", "_published_reason") if c in entries.columns]
        entries = entries.with_columns(
            pl.when(same_title).then(c).alias(c) for c in published_columns
        ).drop("_title")
    else:
        entries = entries.with_columns(paper_id=pl.lit(None, pl.String))
    if "_published_reason" not in entries.columns:
        entries = entries.with_columns(_published_reason=pl.lit(None, pl.String))
    # The abstract's matching key is held as a fingerprint: the keys of every new entry
    # are as big as the abstracts (1 GB for the 644,705 entries of 10,000 digests, at the
    # full build's peak). The id a pair would be minted is taken while the key is at hand;
    # the few pairs that may match a paper (1,289 of 53,976 in a full build of 1,000
    # digests) have their key computed again.
    is_new = entries["paper_id"].is_null()
    unmatched = entries.filter(is_new)
    # Computed a slice at a time, beside the entries' own columns: a column made of slices
    # is in pieces, and gathering rows from one in pieces copies their strings (850 MB of
    # abstracts below for 10,000 digests), from one in a piece shares them. Abstracts not
    # given are loaded a chunk at a time for it, and let go with the chunk.
    new = unmatched.hstack(_keyed_loading(unmatched, load))
    pairs = (
        new.with_row_index("row")
        .group_by("title_key", "abstract_key", maintain_order=True)
        .agg("row", pl.col("sentences", "minted").first())
    )
    known = entries.filter(pl.col("paper_id").is_not_null())
    # The sentences of each known paper's latest abstract: cached, or hashed now.
    latest = pl.col("abstract", "abstract_hash", "digest_id", "position").last()
    known_latest = cache.sentences_of(known.group_by("paper_id").agg(latest), load=load)
    # How many pairs hold each sentence: counted once, for the boilerplate and lone pairs.
    counts = _sentence_counts(pairs)
    index = _index_of_candidates(known, known_latest, pairs, counts, load)
    alone = _alone(pairs, index, counts)
    first_row = pairs["row"].list.first()
    may_match = (~alone).arg_true()
    # Loaded where not given, in the chunks the keys were computed in.
    first = new.select("digest_id", "position", "abstract")[first_row.gather(may_match)]
    first_abstract = abstracts_in_chunks(
        first, load, first_row.gather(may_match) // ENTRIES_PER_LOAD
    )
    abstract_key = pl.Series("abstract_key", [None] * pairs.height, pl.String).scatter(
        may_match,
        first_abstract.to_frame().select(abstract_key_expr("abstract")).to_series(),
    )
    del first, first_abstract
    # The ids taken: of the known ones, only those a pair was minted (found by a join, not
    # a Python set of every known id: at 10,000 digests 0.03 s rather than 0.35 s); every
    # known id is looked at only to mint one again, which 60 bits make astronomically rare.
    known_ids = known["paper_id"]
    clashes = pairs.select("minted").join(known_ids.to_frame("minted"), on="minted", how="semi")
    taken = set(clashes["minted"].to_list())
    ids: list[str] = []
    # The sentences only of the pairs that go to the matcher: the others' are never read
    # (as Python lists, those of 541,273 pairs of 10,000 digests took 0.13 s to make).
    sentences_to_match = pl.select(pl.when(~alone).then(pairs["sentences"])).to_series()
    for i, (title_key, key, sentences, minted, is_alone) in enumerate(
        pl.select(
            pairs["title_key"], abstract_key, sentences_to_match, pairs["minted"], alone
        ).iter_rows()
    ):
        # A pair sharing nothing with any other can only be a new paper, and no later
        # pair can find it: it needs neither the matcher nor the index.
        paper_id = None if is_alone else index.match(title_key, key, sentences)
        if paper_id is None:
            paper_id = minted
            while paper_id in taken:
                if key is None:  # only a pair whose id is taken needs its abstract here
                    first = new.select("digest_id", "position", "abstract")[first_row[i]]
                    key = fold_abstract(abstracts_in_chunks(first, load)[0])
                paper_id = mint_paper_id(title_key, key + paper_id)
                if (known_ids == paper_id).any():
                    taken.add(paper_id)
            taken.add(paper_id)
        if not is_alone:
            index.add(paper_id, title_key, key, sentences)
        ids.append(paper_id)
    new_id = (
        pairs.select("row", new_id=pl.Series(ids, dtype=pl.String)).explode("row").sort("row")
    )["new_id"]
    # Let go of what matching alone needed before the cache is made, the peak of a full
    # build's matching: the index and the ids as Python objects, the pairs' sentences.
    del index, taken, ids, pairs, counts, sentences_to_match, abstract_key
    # `new` holds the entries without an id, in their order: its columns are set on those
    # rows rather than joined back on (digest_id, position), which hashed every entry of a
    # full build and copied its columns.
    row_in_new = pl.repeat(None, entries.height, dtype=pl.UInt32, eager=True).scatter(
        is_new.arg_true(),
        pl.int_range(new.height, dtype=pl.UInt32, eager=True),
    )
    entries = entries.with_columns(
        new_id.gather(row_in_new), new["abstract_key"].gather(row_in_new)
    ).with_columns(paper_id=pl.coalesce("paper_id", "new_id"))
    # A paper no new entry joined keeps its latest abstract: only the others are looked
    # up again. Looking every paper up twice, adding a digest to 10,000 built the tables
    # in 7.3-7.4 s rather than 6.3-6.5 s.
    joined = entries.filter(pl.col("new_id").is_not_null())["paper_id"].unique().implode()
    cache.frame = pl.concat(
        [
            known_latest.filter(~pl.col("paper_id").is_in(joined)),
            cache.sentences_of(
                entries.filter(pl.col("paper_id").is_in(joined)).group_by("paper_id").agg(latest),
                new.select("abstract_hash", "sentences"),
                load,
            ),
        ],
        how="vertical",
    )
    # Reasons are recomputed for every paper an entry joined (its first appearance may
    # have changed); the others keep the reasons they were published with.
    touched = (
        entries.filter(
            pl.col("new_id").is_not_null()
            | ~pl.col("_published_reason").is_in(list(MATCH_REASONS)).fill_null(False)
        )["paper_id"]
        .unique()
        .implode()
    )
    is_touched = entries.select(pl.col("paper_id").is_in(touched)).to_series()
    rows = entries.filter(is_touched).with_row_index("_order")
    needed = ["_order", "paper_id", *ENTRY_ORDER, "title", "title_key", "abstract_key"]
    keyed = pl.concat(
        [
            rows.filter(pl.col("abstract_key").is_not_null()).select(needed),
            fill_abstracts(rows.filter(pl.col("abstract_key").is_null()), load)
            .with_columns(abstract_key=_fingerprint(abstract_key_expr("abstract")))
            .select(needed),
        ]
    ).sort("_order")
    # Set in place rather than joined back on (digest_id, position), which hashed every
    # entry of a full build again at the peak of its matching.
    reasons = with_match_reasons(keyed)["match_reason"]
    return entries.with_columns(
        match_reason=entries["_published_reason"].clone().scatter(is_touched.arg_true(), reasons),
        published_as_is=~is_new,
    ).drop("new_id", "_published_reason", "abstract_key")


def _keyed_loading(unmatched: pl.DataFrame, load: AbstractLoader | None) -> pl.DataFrame:
    """_keyed of `unmatched` (digest_id, position, title_key, abstract, in ENTRY_ORDER),
    their abstracts loaded by `load` where null, ENTRIES_PER_LOAD entries at a time."""
    columns = ["digest_id", "position", "title_key", "abstract"]
    if unmatched["abstract"].null_count() == 0:
        return by_slices(unmatched.select("title_key", "abstract"), _keyed)

    def keyed(chunk: pl.DataFrame) -> pl.DataFrame:
        loaded = fill_abstracts(chunk, load).select("title_key", "abstract")
        return by_slices(loaded, _keyed)

    return by_slices(unmatched.select(columns), keyed, ENTRIES_PER_LOAD)


def _keyed(entries: pl.DataFrame) -> pl.DataFrame:
    """(abstract_key, sentences, minted) of new entries (title_key, abstract): their
    abstract key's fingerprint, their sentences, and the id their (title, abstract) pair
    would be minted."""
    keyed = entries.select(
        "title_key",
        abstract_key=abstract_key_expr("abstract"),
        sentences=_sentences_expr("abstract"),
    )
    minted = map(mint_paper_id, keyed["title_key"].to_list(), keyed["abstract_key"].to_list())
    return keyed.select(
        abstract_key=_fingerprint(pl.col("abstract_key")),
        sentences="sentences",
        minted=pl.Series(list(minted), dtype=pl.String),
    )


def _fingerprint(text: pl.Expr) -> pl.Expr:
    """128 bits that tell one text from another (two hashes with different seeds): equal
    for equal texts; for two different ones, equal with odds of one in 2**128."""
    return pl.struct(text.hash(0).alias("h0"), text.hash(1).alias("h1"))


def _sentences_expr(abstract: str) -> pl.Expr:
    """Hashes of the abstract's sentences of 30+ characters (short ones are generic), as
    written but for case and spacing: cheap enough to run over every known paper, and a
    revision or scraping debris leaves most sentences as they were."""
    return (
        pl.col(abstract)
        .str.to_lowercase()
        .str.replace_all(SPACING, " ")
        .str.split(". ")
        .list.eval(pl.element().filter(pl.element().str.len_chars() >= 30).hash(seed=0))
    )


def _pair_sentences(pairs: pl.DataFrame) -> pl.DataFrame:
    """(row, sentence): the distinct sentences of each pair, row being the pair's number."""
    # Each pair's list made distinct before it is exploded: making the exploded rows
    # distinct took 1.66 s and 1.3 GB at its peak for the 7.8 million of 10,000 digests'
    # pairs, this 0.16 s and 60 MB.
    return (
        pairs.select(
            row=pl.int_range(pl.len(), dtype=pl.UInt32),
            sentence=pl.col("sentences").list.unique(),
        )
        .explode("sentence")
        .drop_nulls()
    )


def _alone(pairs: pl.DataFrame, index: PaperIndex, counts: pl.DataFrame) -> pl.Series:
    """Whether each (title_key, abstract_key, sentences) pair shares its folded title and
    every sentence that is evidence (not boilerplate) with no other pair and no indexed
    paper: then nothing can match it. `counts`: _sentence_counts(pairs)."""
    shared = counts.filter(pl.col("n") > 1)["sentence"]
    evidence = pl.concat([shared, pl.Series(list(index.by_sentence), dtype=pl.UInt64)])
    evidence = evidence.filter(~evidence.is_in(list(index.boilerplate)))
    # The pairs holding a shared sentence: a filter of their sentences, not a count of each
    # over them all (a group-by of the 7.8 million of 10,000 digests' pairs).
    sharing = (
        pairs.select(row=pl.int_range(pl.len(), dtype=pl.UInt32), sentence="sentences")
        .explode("sentence")
        .filter(pl.col("sentence").is_in(evidence.implode()))["row"]
        .unique()
    )
    row = pl.int_range(pl.len(), dtype=pl.UInt32)
    return (
        pairs.select(
            ~(pl.len().over("title_key") > 1)
            & ~pl.col("title_key").is_in(list(index.by_title))
            & ~row.is_in(sharing.implode())
        )
        .to_series()
        .alias("alone")
    )


def _sentence_counts(pairs: pl.DataFrame) -> pl.DataFrame:
    """(sentence, n): how many of the pairs hold each sentence."""
    # Sorted and counted in runs rather than grouped: the 7.8 million of 10,000 digests'
    # pairs in 0.3 s and 200 MB at the peak rather than 0.6 s and 650 MB.
    runs = _pair_sentences(pairs)["sentence"].sort().rle()
    return runs.struct.unnest().select(sentence="value", n=pl.col("len").cast(pl.UInt32))


def _index_of_candidates(
    known: pl.DataFrame,
    latest: pl.DataFrame,
    pairs: pl.DataFrame,
    counts: pl.DataFrame,
    load: AbstractLoader | None = None,
) -> PaperIndex:
    """A PaperIndex of the known papers that could be one of the new pairs: those that
    went by one of their folded titles, or share a sentence with one of their abstracts
    (`latest`: the sentences of each known paper's latest abstract, as
    SentenceCache.sentences_of gives them). Sentences held by more than
    MAX_PAPERS_PER_SENTENCE known papers and new pairs together are boilerplate.
    `counts`: _sentence_counts(pairs)."""
    index = PaperIndex()
    if pairs.height == 0:
        return index
    # Narrowed to the new pairs' titles before made distinct: distinct over every known
    # entry first took 0.07 s of 0.11 s adding a digest to 1,000.
    titles = (
        known.select("paper_id", "title_key")
        .join(pairs.select("title_key").unique(), on="title_key", how="semi")
        .unique()
    )
    # The known papers' sentences held by a new pair, as (row of `latest`, sentence): rows,
    # not ids, and counted without making the pairs distinct first. Boilerplate makes them
    # many (2.3 million at 10,000 digests): with ids, and distinct, 0.6-0.7 s; so 0.13 s.
    holding = (
        latest.select(row=pl.int_range(pl.len(), dtype=pl.UInt32), sentence="sentences")
        .explode("sentence")
        .filter(pl.col("sentence").is_in(counts["sentence"].implode()))
    )
    # A sentence is boilerplate when the pairs alone hold it too often, or the pairs and the
    # known papers together: only the sentences known papers hold are summed (none in a
    # full build, whose 4.6 million distinct sentences of 10,000 digests are not grouped
    # again).
    held = holding.group_by("sentence").agg(n=pl.col("row").n_unique().cast(pl.UInt32))
    together = held.join(counts, on="sentence", how="left", suffix="_pairs").select(
        "sentence", n=pl.col("n") + pl.col("n_pairs")
    )
    too_many = pl.col("n") > MAX_PAPERS_PER_SENTENCE
    common = pl.concat([counts.filter(too_many), together.filter(too_many)], how="vertical")
    index.boilerplate = set(common["sentence"].to_list())
    holders = holding.join(common, on="sentence", how="anti")["row"].unique()
    candidates = (
        pl.concat([titles["paper_id"], latest["paper_id"].gather(holders)]).unique().implode()
    )
    rows = fill_abstracts(known.filter(pl.col("paper_id").is_in(candidates)), load).select(
        "paper_id",
        "title_key",
        abstract_key=abstract_key_expr("abstract"),
        sentences=_sentences_expr("abstract"),
    )
    for paper_id, title_key, abstract_key, sentences in rows.iter_rows():
        index.add(paper_id, title_key, abstract_key, sentences)
    return index


def with_match_reasons(entries: pl.DataFrame) -> pl.DataFrame:
    """`match_reason` of each entry, against its paper's first appearance. It depends only
    on the result, never on what was published before, so a rebuild gives the same rows."""
    # Each entry's paper's first entry, by one sort of the entries rather than a window
    # per column, each a group-by of every entry (the 644,705 entries of a full build of
    # 10,000 digests: 0.26 s rather than 1.65 s).
    by_paper = (
        entries.select("paper_id", *ENTRY_ORDER)
        .with_row_index("row")
        .sort("paper_id", *ENTRY_ORDER)
        .select(
            "row",
            first=pl.col("row").gather(
                pl.when(pl.col("paper_id").is_first_distinct())
                .then(pl.int_range(pl.len(), dtype=pl.UInt32))
                .forward_fill()
            ),
        )
    )
    first_row = pl.zeros(entries.height, pl.UInt32, eager=True).scatter(
        by_paper["row"], by_paper["first"]
    )
    first = {
        name: entries[name].gather(first_row) for name in ("title", "title_key", "abstract_key")
    }
    is_first = first_row == pl.int_range(entries.height, dtype=pl.UInt32, eager=True)
    same_abstract = pl.col("abstract_key") == first["abstract_key"]
    same_key = pl.col("title_key") == first["title_key"]
    entries = entries.with_columns(
        _first_key=first["title_key"],
        match_reason=pl.when(is_first)
        .then(pl.lit("first_seen"))
        .when(same_abstract & (pl.col("title") == first["title"]))
        .then(pl.lit("exact"))
        .when(same_abstract & same_key)
        .then(pl.lit("normalized_title"))
        .when(same_key)
        .then(pl.lit("revised_abstract"))
        .when(same_abstract)
        .then(pl.lit("same_abstract"))  # refined below where the titles are close
        .otherwise(pl.lit("fuzzy_title+abstract")),
    )
    fuzzy = entries.filter(pl.col("match_reason") == "same_abstract")
    if fuzzy.height:
        close = [
            fuzz.ratio(a, b) >= SIMILAR_TITLE_MIN_SIMILARITY
            for a, b in fuzzy.select("title_key", "_first_key").iter_rows()
        ]
        entries = entries.with_columns(
            match_reason=pl.when(
                pl.col("match_reason") == "same_abstract",
                pl.struct("digest_id", "position").is_in(
                    fuzzy.filter(pl.Series(close, dtype=pl.Boolean))
                    .select(pl.struct("digest_id", "position"))
                    .to_series()
                    .implode()
                ),
            )
            .then(pl.lit("fuzzy_title+abstract"))
            .otherwise(pl.col("match_reason"))
        )
    return entries.drop("_first_key")
