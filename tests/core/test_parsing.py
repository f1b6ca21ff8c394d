import datetime as dt

import pytest

from pipelines.core.parsing import MAX_LINE_BYTES, infer_digest_date, parse_digest
from tests.conftest import abstract_for, digest_text

LANDED = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)
ENTRIES = [
    ("TAME: Task Agnostic Continual Learning", abstract_for("continual learning")),
    ("Scaling Laws for Tiny Models", abstract_for("scaling laws")),
    ("Upsample or Upweight? Balanced Training", abstract_for("data balancing")),
]


def parse(text: str | bytes, name: str = "digest.txt", landed=LANDED):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return parse_digest(data, name, landed)


def assert_nothing_lost(parsed, data: bytes, encoding="utf-8"):
    import re

    text = data.decode(encoding).removeprefix("\ufeff")
    nonblank = sum(1 for line in re.split(r"\r\n|\r|\n", text) if line.strip())
    assert parsed.n_nonblank_lines == nonblank
    assert parsed.lines_accounted() == nonblank


def test_clean_digest_parses_every_entry_with_line_spans():
    text = digest_text("Mar 14", ENTRIES)
    parsed = parse(text)
    assert parsed.status == "ingested"
    assert parsed.digest_date == dt.date(2025, 3, 14)
    assert parsed.date_label == "Mar 14"
    assert parsed.n_header_lines == 5  # four header lines and the date line
    assert [(e.title, e.abstract) for e in parsed.entries] == ENTRIES
    first = parsed.entries[0]
    assert (first.position, first.title_line, first.abstract_line) == (1, 11, 13)
    assert parsed.quarantine == []
    assert parsed.digest_id == __import__("hashlib").sha256(text.encode()).hexdigest()
    assert_nothing_lost(parsed, text.encode())


def test_daily_papers_header_line_is_recognised():
    header = [
        "new",
        "Get trending papers in your email inbox!",
        "Subscribe",
        "Daily Papers",
        "byAK and the research community",
    ]
    parsed = parse(digest_text("Sep 11", ENTRIES, header=header))
    assert parsed.n_header_lines == 6
    assert len(parsed.entries) == 3 and parsed.quarantine == []


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda t: t.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda t: "\ufeff" + t, id="bom"),
        pytest.param(lambda t: t.replace("\n", "  \t\n"), id="trailing-whitespace"),
        pytest.param(lambda t: t.replace("\n\n", "\n\n\n\n \n"), id="blank-runs"),
    ],
)
def test_formatting_noise_changes_nothing(transform):
    clean = parse(digest_text("Mar 14", ENTRIES))
    noisy_text = transform(digest_text("Mar 14", ENTRIES))
    noisy = parse(noisy_text)
    assert [(e.title, e.abstract) for e in noisy.entries] == ENTRIES
    assert noisy.digest_date == clean.digest_date and noisy.quarantine == []
    assert_nothing_lost(noisy, noisy_text.encode())


def test_title_without_abstract_is_quarantined_and_later_entries_still_parse():
    entries = [ENTRIES[0], ("An Orphan Title", None), ENTRIES[1], ENTRIES[2]]
    lines = ["new", "Mar 14"]
    for title, abstract in entries:
        lines += [title] + ([abstract] if abstract else [])
    text = "\n\n".join(lines) + "\n"
    parsed = parse(text)
    assert [e.title for e in parsed.entries] == [t for t, _ in ENTRIES]
    [row] = parsed.quarantine
    assert row.reason == "title_without_abstract"
    assert row.raw_text == "An Orphan Title" and row.line_start == 9  # new, date, T, A, then it
    assert "no abstract" in row.message
    assert_nothing_lost(parsed, text.encode())


def test_abstract_without_title_is_quarantined_and_later_entries_still_parse():
    orphan = abstract_for("orphaned abstracts")
    lines = ["new", "Mar 14", ENTRIES[0][0], ENTRIES[0][1], orphan, *ENTRIES[1], *ENTRIES[2]]
    text = "\n\n".join(lines) + "\n"
    parsed = parse(text)
    assert [e.title for e in parsed.entries] == [t for t, _ in ENTRIES]
    [row] = parsed.quarantine
    assert (row.reason, row.raw_text) == ("abstract_without_title", orphan)
    assert_nothing_lost(parsed, text.encode())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "empty_file", id="empty"),
        pytest.param(b"\n\n  \r\n", "empty_file", id="only-blank"),
        pytest.param(bytes(range(256)) * 40, "undecodable", id="binary"),
        pytest.param(b"\x00\x01\x02text\x00" * 50, "undecodable", id="nul-bytes"),
        pytest.param(digest_text(None, ENTRIES).encode(), "no_date_line", id="no-date"),
        pytest.param(digest_text("Feb 30", ENTRIES).encode(), "impossible_date", id="feb-30"),
        pytest.param(digest_text("Apr 31", ENTRIES).encode(), "impossible_date", id="apr-31"),
    ],
)
def test_bad_files_are_rejected_whole_with_reason_and_raw_text(data, reason):
    parsed = parse(data)
    assert parsed.status == "rejected"
    assert parsed.rejected_reason == reason
    assert parsed.entries == []
    [row] = parsed.quarantine
    assert row.reason == reason and row.message
    # raw_text is the file itself: latin-1 for non-text keeps every byte.
    expected = data.decode("latin-1") if reason == "undecodable" else data.decode()
    assert row.raw_text == expected.removeprefix("\ufeff")
    assert parsed.lines_accounted() == parsed.n_nonblank_lines


def test_absurdly_long_line_is_quarantined_alone():
    huge = "word " * (MAX_LINE_BYTES // 4)
    lines = ["new", "Mar 14", *ENTRIES[0], "A Title Whose Abstract Is Huge", huge, *ENTRIES[1]]
    text = "\n\n".join(lines) + "\n"
    parsed = parse(text)
    assert [e.title for e in parsed.entries] == [ENTRIES[0][0], ENTRIES[1][0]]
    reasons = sorted(q.reason for q in parsed.quarantine)
    assert reasons == ["line_too_long", "title_without_abstract"]
    long_row = next(q for q in parsed.quarantine if q.reason == "line_too_long")
    assert long_row.raw_text == huge.strip() and "limit" in long_row.message
    assert_nothing_lost(parsed, text.encode())


@pytest.mark.parametrize("extra_chars", [0, 1])
def test_a_line_is_measured_in_bytes_not_characters(extra_chars):
    """4-byte characters: a line of MAX_LINE_BYTES // 4 of them is exactly the limit."""
    wide = "\U0001f600" * (MAX_LINE_BYTES // 4 + extra_chars)
    lines = ["new", "Mar 14", *ENTRIES[0], wide, *ENTRIES[1]]
    text = "\n\n".join(lines) + "\n"
    parsed = parse(text)
    reasons = [q.reason for q in parsed.quarantine]
    assert reasons == (["line_too_long"] if extra_chars else ["abstract_without_title"])
    assert_nothing_lost(parsed, text.encode())


@pytest.mark.parametrize("control", ["\x0b", "\x1f", "\x85", "\x7f"])
def test_a_line_with_a_control_character_is_quarantined_alone(control):
    title, abstract = ENTRIES[1]
    lines = ["new", "Mar 14", *ENTRIES[0], title, abstract[:50] + control + abstract[50:]]
    text = "\n\n".join([*lines, *ENTRIES[2]]) + "\n"
    parsed = parse(text)
    assert [e.title for e in parsed.entries] == [ENTRIES[0][0], ENTRIES[2][0]]
    assert sorted(q.reason for q in parsed.quarantine) == [
        "control_characters",
        "title_without_abstract",
    ]
    assert_nothing_lost(parsed, text.encode())


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_non_utf8_text_is_decoded_and_flagged(encoding):
    entries = [("Café Models: “Smart” Quotes – and Dashes", abstract_for("café naïveté"))]
    if encoding == "latin-1":
        entries = [("Café Models Über Alles", abstract_for("café naïveté"))]
    data = digest_text("Mar 14", entries).encode(encoding)
    parsed = parse(data)
    assert parsed.status == "ingested"
    assert parsed.entries[0].title == entries[0][0]
    assert parsed.encoding in ("cp1252", "latin-1")
    assert any("not UTF-8" in w for w in parsed.warnings)


def test_duplicate_entry_in_one_digest_is_quarantined_once():
    text = digest_text("Mar 14", [ENTRIES[0], ENTRIES[1], ENTRIES[0]])
    parsed = parse(text)
    assert len(parsed.entries) == 2
    [row] = parsed.quarantine
    assert row.reason == "duplicate_entry" and row.n_lines == 2
    assert_nothing_lost(parsed, text.encode())


@pytest.mark.parametrize(
    ("month", "day", "name", "landed", "expected", "source"),
    [
        (3, 14, "digest.txt", LANDED, dt.date(2025, 3, 14), "landed_at"),
        # a date after the landing time (+1 day) belongs to the previous year
        (9, 11, "digest.txt", LANDED, dt.date(2024, 9, 11), "landed_at"),
        (6, 2, "digest.txt", LANDED, dt.date(2025, 6, 2), "landed_at"),
        (6, 3, "digest.txt", LANDED, dt.date(2024, 6, 3), "landed_at"),
        (
            12,
            31,
            "d.txt",
            dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
            dt.date(2024, 12, 31),
            "landed_at",
        ),
        (2, 29, "d.txt", LANDED, dt.date(2024, 2, 29), "landed_at"),
        (2, 29, "d.txt", dt.datetime(2027, 1, 5, tzinfo=dt.UTC), dt.date(2024, 2, 29), "landed_at"),
        (3, 14, "digest-2019-03-14.txt", LANDED, dt.date(2019, 3, 14), "file_name"),
        (3, 14, "x_2031-01-01_y.txt", LANDED, dt.date(2031, 3, 14), "file_name"),
    ],
)
def test_year_inference(month, day, name, landed, expected, source):
    assert infer_digest_date(month, day, name, landed) == (expected, source)


def test_year_from_file_name_wins_in_parse():
    parsed = parse(digest_text("Mar 14", ENTRIES), name="sub/digest-2023-03-14.txt")
    assert parsed.digest_date == dt.date(2023, 3, 14)
    assert parsed.date_source == "file_name"


def test_full_month_names_and_feb_29_in_non_leap_file_name_year():
    assert parse(digest_text("March 14", ENTRIES)).digest_date == dt.date(2025, 3, 14)
    leap = parse(digest_text("Feb 29", ENTRIES), name="d-2023-02-28.txt")
    assert leap.rejected_reason is None
    # 2023 has no Feb 29: the file-name year cannot hold, the landing time decides
    assert leap.digest_date == dt.date(2024, 2, 29)
