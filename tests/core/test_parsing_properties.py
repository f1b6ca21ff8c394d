"""Property-based tests: whatever corruption a digest suffers, the parser never raises,
loses no line, and every valid entry has a title and an abstract."""

import datetime as dt
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.core.parsing import MAX_LINE_BYTES, parse_digest
from pipelines.core.synthetic import generate_digests

LANDED = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
# A few real-shaped digests to corrupt (small, so thousands of examples stay fast).
BASE = [text for _, text in generate_digests(3, seed=7, entries_per_digest=6)]

line_edits = st.sampled_from(
    [
        "drop",
        "duplicate",
        "swap",
        "truncate",
        "control",
        "nul",
        "long",
        "empty",
        "blank_block",
        "crlf",
        "cr",
    ]
)


def corrupt_lines(lines: list[str], edits: list[tuple[str, int]]) -> list[str]:
    lines = list(lines)
    for edit, at in edits:
        if not lines:
            break
        i = at % len(lines)
        if edit == "drop":
            del lines[i]
        elif edit == "duplicate":
            lines.insert(i, lines[i])
        elif edit == "swap" and len(lines) > 1:
            j = (i + 1) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif edit == "truncate":
            lines[i] = lines[i][: max(1, len(lines[i]) // 3)]
        elif edit == "control":
            lines[i] = lines[i][:5] + "\x07\x1b" + lines[i][5:]
        elif edit == "nul":
            lines[i] = lines[i] + "\x00"
        elif edit == "long":
            lines[i] = "y" * (MAX_LINE_BYTES + 10)
        elif edit == "empty":
            lines[i] = ""
        elif edit == "blank_block":
            lines[i:i] = ["", "   ", "\t", ""]
        elif edit == "crlf":  # this one line ends in CRLF: mixed line endings
            lines[i] = lines[i] + "\r"
        elif edit == "cr":  # an old-Mac line break inside the line
            lines[i] = lines[i][:7] + "\r" + lines[i][7:]
    return lines


def encode(text: str, encoding: str, newline: str) -> bytes:
    text = text.replace("\n", newline)
    if encoding == "utf-8-sig":
        return "\ufeff".encode() + text.encode()
    return text.encode(encoding, errors="replace")


def nonblank_lines(data: bytes, digest) -> int:
    """Independent count, decoding as the parser reports it did."""
    encoding = digest.encoding or "latin-1"
    text = data.decode("utf-8" if encoding == "utf-8-sig" else encoding)
    return sum(1 for line in re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff")) if line.strip())


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(BASE),
    edits=st.lists(st.tuples(line_edits, st.integers(min_value=0, max_value=10_000)), max_size=8),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    junk=st.binary(max_size=40),
    junk_at=st.integers(min_value=0, max_value=10_000),
)
def test_corrupted_digests_never_raise_and_lose_nothing(
    base, edits, encoding, newline, junk, junk_at
):
    data = encode("\n".join(corrupt_lines(base.split("\n"), edits)), encoding, newline)
    if junk:  # raw bytes spliced in: re-encoding damage, binary debris
        cut = junk_at % (len(data) + 1)
        data = data[:cut] + junk + data[cut:]
    digest = parse_digest(data, "fuzzed.txt", LANDED)
    assert digest.lines_accounted() == digest.n_nonblank_lines
    if digest.encoding is not None:
        assert digest.n_nonblank_lines == nonblank_lines(data, digest)
    for entry in digest.entries:
        assert entry.title.strip() and entry.abstract.strip()
        assert entry.abstract_line > entry.title_line
    if digest.rejected_reason:
        [row] = digest.quarantine
        assert row.reason == digest.rejected_reason and digest.entries == []
