"""The five real seed digests through the real Dagster graph, queried from the catalog."""

import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.defs.inprocess import ingest
from tests.conftest import SEEDS_DIR, SEEDS_MTIME, set_mtime


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """The seeds ingested once for the module's read-only queries."""
    if not SEEDS_DIR.is_dir():
        pytest.skip(f"the real seed digests are not at {SEEDS_DIR} (../shared/seeds)")
    root = tmp_path_factory.mktemp("seeds")
    landing, warehouse = root / "landing", root / "warehouse"
    landing.mkdir()
    for seed in sorted(SEEDS_DIR.glob("*.txt")):
        set_mtime(Path(shutil.copy(seed, landing)), SEEDS_MTIME)
    outcome = ingest(landing, warehouse)
    assert outcome.published and outcome.release["release"] == 1
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(elsewhere)  # views must not depend on the working directory
        yield from _connect(warehouse)


def _connect(warehouse):
    con = duckdb.connect(str(warehouse / "catalog.duckdb"), read_only=True)
    # Stock DuckDB: no extension may be installed or loaded behind our back.
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    yield con
    con.close()


def scalar(con, sql, params=()):
    return con.execute(sql, params).fetchone()[0]


def test_seed_figures(catalog):
    assert scalar(catalog, "SELECT sum(n_valid) FROM digests") == 325
    assert scalar(catalog, "SELECT count(*) FROM appearances") == 325
    assert scalar(catalog, "SELECT count(*) FROM papers") == 268
    assert scalar(catalog, "SELECT count(*) FROM digests") == 5
    assert scalar(catalog, "SELECT count(*) FROM digests WHERE status = 'ingested'") == 5
    assert scalar(catalog, "SELECT count(*) FROM quarantine") == 0
    assert scalar(catalog, "SELECT papers_added FROM releases WHERE release = 1") == 268


def test_just_one_byte_appears_four_times(catalog):
    n = scalar(
        catalog,
        "SELECT n_appearances FROM papers WHERE title LIKE ?",
        ["Just One Byte (per gradient):%"],
    )
    assert n == 4


def test_daily_papers_header_seed_parses_like_the_others(catalog):
    rows = catalog.execute(
        "SELECT source_path, n_header_lines, n_valid, n_quarantined, n_lines, digest_date "
        "FROM digests ORDER BY source_path"
    ).fetchall()
    by_name = {r[0][:3]: r for r in rows}
    assert by_name["001"][1] == 6  # the extra `Daily Papers` line
    assert all(r[1] == 5 for k, r in by_name.items() if k != "001")
    assert all(row[3] == 0 for row in rows)  # nothing quarantined
    assert by_name["001"][2] == 65 and by_name["001"][4] == 6 + 2 * 65
    assert str(by_name["000"][5]) == "2025-03-14"


def paper(con, title_prefix, *columns):
    """One paper's columns, found by the start of its title."""
    rows = con.execute(
        f"SELECT {', '.join(columns)} FROM papers WHERE starts_with(title, ?)",  # noqa: S608 (the tests' own column names)
        [title_prefix],
    ).fetchall()
    assert len(rows) == 1, (title_prefix, rows)
    return rows[0] if len(columns) > 1 else rows[0][0]


LAMB = "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes"
LAMB_CODE = "https://github.com/tensorflow/addons/blob/master/tensorflow_addons/optimizers/lamb.py"


def test_lamb_has_its_code_link_and_name(catalog):
    links, repo, name = paper(catalog, LAMB, "links", "github_repo", "acronym")
    assert {"url": LAMB_CODE, "kind": "code"} in links
    assert repo == "tensorflow/addons"
    assert name == "LAMB"  # "... a new layerwise adaptive large batch optimization
    # technique called LAMB" in the abstract


def test_acronyms_from_titles_and_abstracts(catalog):
    assert paper(catalog, "TAME: Task Agnostic", "acronym") == "TAME"
    assert paper(catalog, "LoRA-GA: Low-Rank", "acronym") == "LoRA-GA"
    assert paper(catalog, "Sophia: A Scalable", "acronym") == "Sophia"
    assert paper(catalog, "Improved Distribution Matching Distillation", "acronym") == "DMD2"
    assert paper(catalog, "Pareto Domain Adaptation", "acronym") == "ParetoDA"


def test_no_link_keeps_trailing_punctuation_or_braces(catalog):
    bad = scalar(
        catalog,
        "SELECT count(*) FROM (SELECT unnest(links) AS l FROM papers) "
        "WHERE regexp_matches(l.url, '[.)}]$') OR l.url LIKE '%{%'",
    )
    assert bad == 0
    assert scalar(catalog, "SELECT count(*) FROM papers WHERE len(links) > 0") >= 40


def test_links_have_kinds_and_repos(catalog):
    kinds = dict(
        catalog.execute(
            "SELECT l.url, l.kind FROM (SELECT unnest(links) AS l FROM papers)"
        ).fetchall()
    )
    assert kinds["https://huface.online/YiDuo1999/Llama-3-Physician-8B-Instruct"] == "model"
    assert kinds["https://gohyojun15.github.io/ANT_diffusion/"] == "project_page"  # was /{url}.
    assert kinds["https://github.com/TianjinYellow/StableSPAM.git"] == "code"
    assert paper(catalog, "LoRA-GA: Low-Rank", "github_repo") == "Outsider565/LoRA-GA"
    assert paper(catalog, "Stable-SPAM", "github_repo") == "TianjinYellow/StableSPAM"
    assert (
        scalar(catalog, "SELECT count(*) FROM papers WHERE has_code <> (github_repo IS NOT NULL)")
        == 0
    )


def test_abstracts_are_cleaned_and_kept_raw(catalog):
    raw, clean = scalar(
        catalog,
        "SELECT [abstract_raw, abstract] FROM papers WHERE abstract_raw LIKE '%96.4\\%%'",
    )
    assert "96.4\\%" in raw and "96.4%" in clean and "\\%" not in clean
    assert scalar(catalog, "SELECT count(*) FROM papers WHERE abstract LIKE '%{url}%'") == 0
    assert scalar(catalog, "SELECT count(*) FROM papers WHERE abstract_raw LIKE '%{url}%'") == 1
    escaped = "SELECT count(*) FROM papers WHERE contains({}, '\\%')"
    assert scalar(catalog, escaped.format("abstract_raw")) >= 10
    assert scalar(catalog, escaped.format("abstract")) == 0


def test_every_paper_has_a_topic_or_other(catalog):
    assert scalar(catalog, "SELECT count(*) FROM papers WHERE len(topics) = 0") == 0
    assert (
        scalar(
            catalog,
            "SELECT count(*) FROM papers WHERE list_contains(topics, 'other') AND len(topics) > 1",
        )
        == 0
    )
    assert "continual_learning" in paper(catalog, "TAME: Task Agnostic", "topics")
    assert "parameter_efficient_finetuning" in paper(catalog, "LoRA-GA: Low-Rank", "topics")
    assert {"language_models", "optimization"} <= set(
        paper(catalog, "Sophia: A Scalable", "topics")
    )
    assert "domain_adaptation" in paper(catalog, "Pareto Domain Adaptation", "topics")
    assert "distillation" in paper(catalog, "Improved Distribution Matching Distillation", "topics")
    # Most papers fall in the taxonomy.
    assert scalar(catalog, "SELECT avg((topics <> ['other'])::INT) FROM papers") > 0.8


def test_keyphrases_and_word_counts(catalog):
    phrases = paper(catalog, "Sophia: A Scalable", "keyphrases")
    assert len(phrases) == 5 and phrases[0] == "sophia" and "diagonal hessian" in phrases
    assert scalar(catalog, "SELECT min(len(keyphrases)) FROM papers") >= 1
    assert scalar(catalog, "SELECT min(n_words) FROM papers") > 20


def test_title_variants_and_match_reasons(catalog):
    variants, n = paper(catalog, "Just One Byte (per gradient)", "title_variants", "n_appearances")
    assert n == 4 and len(variants) >= 1
    reasons = dict(
        catalog.execute("SELECT match_reason, count(*) FROM appearances GROUP BY ALL").fetchall()
    )
    assert reasons["first_seen"] == 268  # one per paper
    assert sum(reasons.values()) == 325


def test_related_papers_are_the_neighbours_you_would_expect(catalog):
    assert (
        scalar(
            catalog,
            "SELECT max(n) FROM (SELECT count(*) AS n FROM related_papers GROUP BY paper_id)",
        )
        == 10
    )
    related = [
        title
        for (title,) in catalog.execute(
            "SELECT q.title FROM related_papers r JOIN papers p USING (paper_id) "
            "JOIN papers q ON q.paper_id = r.related_id "
            "WHERE starts_with(p.title, 'LoRA-GA: Low-Rank') ORDER BY r.rank"
        ).fetchall()
    ]
    assert sum("Low-Rank" in t or "LoRA" in t or "Parameter" in t for t in related[:5]) >= 3


def test_paper_ids_are_stable_when_more_digests_land(seeds_dir, tmp_path):
    """Seeds A alone, versus A then B in a second warehouse: A's papers keep their ids."""
    import shutil

    from tests.conftest import SEEDS_MTIME, set_mtime

    seeds = sorted(seeds_dir.glob("*.txt"))
    first, second = seeds[:3], seeds[3:]

    def land(folder, files):
        folder.mkdir(exist_ok=True)
        for seed in files:
            set_mtime(Path(shutil.copy(seed, folder)), SEEDS_MTIME)
        return folder

    def ids(warehouse):
        con = duckdb.connect(str(warehouse / "catalog.duckdb"), read_only=True)
        return dict(con.execute("SELECT title_key, paper_id FROM papers").fetchall())

    ingest(land(tmp_path / "a", first), tmp_path / "wa")
    alone = ids(tmp_path / "wa")
    landing = land(tmp_path / "ab", first)
    ingest(landing, tmp_path / "wab")
    ingest(land(landing, second), tmp_path / "wab")
    together = ids(tmp_path / "wab")
    assert len(together) == 268 and len(alone) < 268
    assert {k: together[k] for k in alone} == alone
