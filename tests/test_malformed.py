"""A corpus with one case per kind of bad input ingests in one run and loses nothing."""

import datetime as dt
import re

import duckdb
import polars as pl

from pipelines.core.parsing import MAX_LINE_BYTES
from pipelines.defs.inprocess import ingest
from tests.conftest import abstract_for, digest_text, set_mtime

LANDED = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
GOOD = [
    ("Good Paper One", abstract_for("first topic")),
    ("Good Paper Two", abstract_for("second topic")),
]


def malformed_corpus(folder):
    orphan_title = "\n\n".join(["new", "Mar 1", "Lonely Title", *GOOD[0], *GOOD[1]])
    orphan_abstract = "\n\n".join(["new", "Mar 2", *GOOD[0], abstract_for("stray"), *GOOD[1]])
    files = {
        "clean-with-noise.txt": (
            "\ufeff" + digest_text("Mar 3", GOOD).replace("\n", "  \r\n")
        ).encode(),
        "title-without-abstract.txt": orphan_title.encode(),
        "abstract-without-title.txt": orphan_abstract.encode(),
        "empty.txt": b"",
        "binary.txt": bytes(range(256)) * 64,
        "no-date.txt": digest_text(None, GOOD).encode(),
        "impossible-date.txt": digest_text("Feb 30", GOOD).encode(),
        "long-line.txt": "\n\n".join(
            ["new", "Mar 4", *GOOD[0], "x" * (MAX_LINE_BYTES + 1), *GOOD[1]]
        ).encode(),
        "cp1252.txt": digest_text("Mar 5", [("Café “Quoted” Models", abstract_for("café"))]).encode(
            "cp1252"
        ),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
        set_mtime(folder / name, LANDED)
    return files


def nonblank_lines(data: bytes) -> int:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return sum(1 for line in re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff")) if line.strip())


def test_malformed_corpus_ingests_and_loses_nothing(landing, warehouse):
    files = malformed_corpus(landing)
    outcome = ingest(landing, warehouse)
    assert outcome.published
    con = duckdb.connect(str(warehouse / "catalog.duckdb"), read_only=True)
    digests = con.sql("SELECT * FROM digests").pl()
    quarantine = con.sql("SELECT * FROM quarantine").pl()
    assert digests.height == len(files)

    for name, data in files.items():
        row = digests.filter(pl.col("source_path") == name).row(0, named=True)
        q = quarantine.filter(pl.col("source_path") == name)
        # counted independently of the parser
        assert nonblank_lines(data) == (
            row["n_header_lines"] + 2 * row["n_valid"] + int(q["n_lines"].sum())
        ), name

    reasons = dict(quarantine.group_by("source_path").agg(pl.col("reason").sort()).iter_rows())
    assert reasons == {
        "title-without-abstract.txt": ["title_without_abstract"],
        "abstract-without-title.txt": ["abstract_without_title"],
        "empty.txt": ["empty_file"],
        "binary.txt": ["undecodable"],
        "no-date.txt": ["no_date_line"],
        "impossible-date.txt": ["impossible_date"],
        "long-line.txt": ["line_too_long"],
    }
    # the bad text itself is kept
    stray = quarantine.filter(pl.col("reason") == "abstract_without_title")["raw_text"][0]
    assert stray == abstract_for("stray")
    binary = quarantine.filter(pl.col("reason") == "undecodable")["raw_text"][0]
    assert binary.encode("latin-1") == files["binary.txt"]
    assert all(quarantine["message"].str.len_chars() > 10)

    status = dict(digests.select("source_path", "status").iter_rows())
    assert {n for n, s in status.items() if s == "rejected"} == {
        "empty.txt",
        "binary.txt",
        "no-date.txt",
        "impossible-date.txt",
    }
    cp = digests.filter(pl.col("source_path") == "cp1252.txt").row(0, named=True)
    assert cp["encoding"] == "cp1252" and "not UTF-8" in cp["warnings"]
    titles = set(con.sql("SELECT title FROM papers").pl()["title"])
    assert titles == {"Good Paper One", "Good Paper Two", "Café “Quoted” Models"}
