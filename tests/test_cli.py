"""The `papers` command as a user runs it (in process, through Typer)."""

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.conftest import abstract_for, write_digest

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@pytest.fixture
def papers(landing, warehouse, monkeypatch):
    monkeypatch.setenv("PAPERS_LANDING_DIR", str(landing))
    monkeypatch.setenv("PAPERS_WAREHOUSE_DIR", str(warehouse))
    runner = CliRunner()

    def run(*args, ok=True):
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def releases(papers):
    return json.loads(papers("releases", "-f", "json").stdout)


def test_ingest_twice_publishes_one_release_then_adding_a_digest_publishes_another(papers, landing):
    write_digest(
        landing,
        "a.txt",
        "Mar 14",
        [("Paper A", abstract_for("a")), ("Paper B", abstract_for("b"))],
        T0,
    )
    assert "Published release 1" in papers("ingest").stdout
    assert "No change" in papers("ingest").stdout
    assert len(releases(papers)) == 1

    write_digest(
        landing,
        "b.txt",
        "Mar 15",
        [
            ("Paper B", abstract_for("b")),
            ("Paper C", abstract_for("c")),
            ("Paper D", abstract_for("d")),
        ],
        T0,
    )
    assert "Published release 2" in papers("ingest").stdout
    rows = releases(papers)
    assert [r["release"] for r in rows] == [1, 2]
    assert (rows[1]["papers_added"], rows[1]["papers_removed"]) == (2, 0)
    assert rows[1]["papers_updated"] == 1  # Paper B: last_seen and n_appearances moved
    diff = json.loads(papers("diff", "1", "2", "-f", "json").stdout)
    assert sorted((d["change"], d["title"]) for d in diff) == [
        ("added", "Paper C"),
        ("added", "Paper D"),
        ("updated", "Paper B"),
    ]
    assert "last_seen" in next(d for d in diff if d["change"] == "updated")["changed_columns"]


def test_same_date_digest_with_new_content_supersedes(papers, landing):
    write_digest(landing, "first.txt", "Mar 14", [("Old", abstract_for("old"))], T0)
    papers("ingest")
    write_digest(
        landing, "second.txt", "Mar 14", [("New", abstract_for("new"))], T0 + dt.timedelta(hours=2)
    )
    papers("ingest")
    out = json.loads(
        papers("sql", "SELECT source_path, status FROM digests ORDER BY 1", "-f", "json").stdout
    )
    assert out == [
        {"source_path": "first.txt", "status": "superseded"},
        {"source_path": "second.txt", "status": "ingested"},
    ]
    titles = papers("sql", "SELECT title FROM papers", "-f", "csv").stdout.split()
    assert titles == ["title", "New"]
    assert releases(papers)[-1]["papers_removed"] == 1


def test_same_bytes_landing_twice_change_nothing(papers, landing):
    path = write_digest(landing, "a.txt", "Mar 14", [("Paper A", abstract_for("a"))], T0)
    papers("ingest")
    (landing / "copy.txt").write_bytes(path.read_bytes())
    assert "No change" in papers("ingest").stdout
    assert papers("sql", "SELECT count(*) AS n FROM digests", "-f", "csv").stdout.split() == [
        "n",
        "1",
    ]


def test_sql_on_an_older_release(papers, landing):
    write_digest(landing, "a.txt", "Mar 14", [("Paper A", abstract_for("a"))], T0)
    papers("ingest")
    write_digest(landing, "b.txt", "Mar 15", [("Paper B", abstract_for("b"))], T0)
    papers("ingest")
    count = "SELECT count(*) AS n FROM papers"
    assert papers("sql", count, "-f", "csv").stdout.split() == ["n", "2"]
    assert papers("sql", count, "--release", "1", "-f", "csv").stdout.split() == ["n", "1"]
    old = papers("sql", "SELECT max(release) AS r FROM releases", "--release", "1", "-f", "csv")
    assert old.stdout.split() == ["r", "1"]
    table = papers("sql", "SELECT title FROM papers ORDER BY title").stdout
    assert "Paper A" in table and "Paper B" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sql", "SELECT 1"], "run `papers ingest` first"),
        (["ingest", "--landing", "/does/not/exist"], "does not exist"),
    ],
)
def test_user_mistakes_get_one_plain_line(papers, args, message):
    result = papers(*args, ok=False)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_bad_query_and_unknown_release(papers, landing):
    write_digest(landing, "a.txt", "Mar 14", [("Paper A", abstract_for("a"))], T0)
    papers("ingest")
    bad = papers("sql", "SELEC nonsense", ok=False)
    assert bad.exit_code == 1 and "query failed" in bad.stderr
    missing = papers("sql", "SELECT 1", "--release", "9", ok=False)
    assert missing.exit_code == 1 and "release 9 is not retained" in missing.stderr


def test_related_finds_a_paper_by_id_title_or_part_of_it(papers, landing):
    topics = {
        "Graph Pooling Networks": "graph neural network pooling",
        "Graph Attention Networks": "graph neural network attention",
        "Speech Recognition at Scale": "speech recognition",
        "Protein Folding Dynamics": "protein folding",
    }
    write_digest(
        landing, "a.txt", "Mar 14", [(t, abstract_for(a, 4)) for t, a in topics.items()], T0
    )
    papers("ingest")
    ranked = json.loads(papers("related", "graph pooling networks.", "-f", "json").stdout)
    assert ranked[0]["title"] == "Graph Attention Networks" and ranked[0]["rank"] == 1
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert "Graph Pooling Networks" not in [r["title"] for r in ranked]
    by_id = json.loads(papers("related", ranked[0]["paper_id"], "-f", "json").stdout)
    assert by_id[0]["title"] == "Graph Pooling Networks"
    by_part = json.loads(papers("related", "Protein Folding", "-f", "json").stdout)
    by_typo = json.loads(papers("related", "Protien Folding Dynamics", "-f", "json").stdout)
    assert by_part == by_typo and len(by_part) >= 1

    ambiguous = papers("related", "Graph", ok=False)
    assert ambiguous.exit_code == 1 and "2 papers match 'Graph'" in ambiguous.output
    unknown = papers("related", "Quantum Gravity", ok=False)
    assert unknown.exit_code == 1 and "no paper matches" in unknown.output
    assert len(unknown.output.strip().splitlines()) == 1
