"""The labelled evaluation set of the paper matcher, and the command that scores it.

    uv run python benchmarks/matching.py            # precision, recall, F1 of the matcher
    uv run python benchmarks/matching.py --write    # regenerate benchmarks/matching_pairs.jsonl

Each pair is two digest entries (title, abstract) made from synthetic papers and labelled
by how they were made: variants of one paper (case, Unicode forms, punctuation and
spacing, typos, a revised abstract, scraping debris) are the same paper; collisions
(one title, another abstract), papers whose titles differ by a word or a character, and
unrelated papers are not. The matcher decides each pair as the pipeline would: the first
entry lands on one day, the second on the next. The baseline is exact lower-cased-title
equality, the obvious alternative.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from pipelines.core.identity import assign_paper_ids  # noqa: E402
from pipelines.core.synthetic import synthetic_paper  # noqa: E402

PAIRS_FILE = ROOT / "benchmarks" / "matching_pairs.jsonl"
PAIRS_PER_CATEGORY = 40

# --- variants of one title ---------------------------------------------------------------


def _case(rng: random.Random, title: str) -> str:
    style = rng.choice(["lower", "upper", "title", "swap_words"])
    if style == "lower":
        return title.lower()
    if style == "upper":
        return title.upper()
    if style == "title":
        return title.title()
    words = title.split(" ")
    i = rng.randrange(len(words))
    words[i] = words[i].swapcase()
    return " ".join(words)


def _unicode(rng: random.Random, title: str) -> str:
    out = title
    for plain, fancy in [("fi", "\ufb01"), ("fl", "\ufb02"), ("ff", "\ufb00")]:
        if plain in out and rng.random() < 0.8:
            out = out.replace(plain, fancy, 1)
    out = out.replace("-", rng.choice(["\u2010", "\u2013", "\u2014"]))
    out = out.replace(":", rng.choice([":", "\uff1a", "\ua789"]))
    words = out.split(" ")
    i = rng.randrange(len(words))
    words[i] = f"\u201c{words[i]}\u201d"
    out = " ".join(words)
    if rng.random() < 0.5:
        out = out.replace(" ", "\u00a0", 2)
    if out == title:  # nothing to swap: accent a vowel instead
        out = title.replace("e", "\u00e9", 1)
    return out


def _punctuation(rng: random.Random, title: str) -> str:
    out = title
    edits = rng.sample(["colon", "hyphen", "spaces", "period", "comma"], 2)
    for edit in edits:
        if edit == "colon":
            out = out.replace(":", rng.choice([" :", " -", ""]), 1)
        elif edit == "hyphen":
            out = out.replace("-", rng.choice([" ", ""]), 1)
        elif edit == "spaces":
            out = out.replace(" ", "  ", 1) + " "
        elif edit == "period":
            out = out + "."
        else:
            out = out.replace(" for ", ", for ", 1)
    return out if out != title else title + "."


def _typo(rng: random.Random, title: str, n: int | None = None) -> str:
    """The title after 1-2 character edits (n of them), never the title itself: swapping
    two equal letters would leave a "one typo apart" pair with one title."""
    while (typo := _edits(rng, title, n)) == title:
        pass
    return typo


def _edits(rng: random.Random, title: str, n: int | None) -> str:
    chars = list(title)
    for _ in range(n or rng.choice([1, 2])):
        letters = [i for i, c in enumerate(chars) if c.isalpha()]
        i = rng.choice(letters)
        kind = rng.choice(["substitute", "delete", "insert", "transpose"])
        if kind == "substitute":
            chars[i] = rng.choice([c for c in "aeioulnrst" if c != chars[i].lower()])
        elif kind == "delete":
            del chars[i]
        elif kind == "insert":
            chars.insert(i, rng.choice("aeioulnrst"))
        elif i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


# --- variants of one abstract ------------------------------------------------------------


def _revise(rng: random.Random, abstract: str) -> str:
    """A revised abstract: a few words changed, and a sentence added or removed."""
    words = abstract.split(" ")
    for _ in range(rng.randint(2, 4)):
        i = rng.randrange(len(words) - 1)
        words[i] = rng.choice(["substantially", "novel", "our", "several", "new", "robust"])
    sentences = " ".join(words).split(". ")
    if rng.random() < 0.5 and len(sentences) > 4:
        del sentences[rng.randrange(1, len(sentences) - 2)]
    else:
        sentences.insert(
            rng.randrange(1, len(sentences)),
            "We also report results on an additional held-out benchmark",
        )
    return ". ".join(sentences)


def _rewrite(rng: random.Random, abstract: str) -> str:
    """A heavier revision: two sentences rewritten, then the small edits of _revise."""
    sentences = abstract.split(". ")
    for i in rng.sample(range(1, len(sentences) - 1), 2):
        sentences[i] = (
            "In contrast to earlier drafts, " + sentences[i][:1].lower() + sentences[i][1:]
        )
    return _revise(rng, ". ".join(sentences))


def _debris(rng: random.Random, abstract: str) -> str:
    """Scraping debris: an escaped percent, a link placeholder, doubled spaces."""
    out = abstract.replace("%", "\\%")
    out = out.replace(". ", ".  ", 2)
    return out.replace(" (Synthetic", " {url}. (Synthetic", 1)


# --- the pairs ---------------------------------------------------------------------------


def _retitle(rng: random.Random, title: str) -> str:
    """Another paper's title that differs from this one by a word."""
    words = title.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) > 3 and w[0].isupper()]
    i = rng.choice(candidates or list(range(len(words))))
    pool = ["Reasoning", "Planning", "Translation", "Retrieval", "Segmentation", "Robotics"]
    words[i] = rng.choice([w for w in pool if w != words[i]])
    return " ".join(words)


def make_pairs(seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    papers = iter(synthetic_paper(rng, i) for i in range(100_000))
    pairs: list[dict] = []

    def add(category: str, same: bool, a: tuple[str, str], b: tuple[str, str]) -> None:
        pairs.append(
            {
                "id": len(pairs) + 1,
                "category": category,
                "same_paper": same,
                "a_title": a[0],
                "a_abstract": a[1],
                "b_title": b[0],
                "b_abstract": b[1],
            }
        )

    for _ in range(PAIRS_PER_CATEGORY):
        p, q = next(papers), next(papers)
        add("case", True, (p.title, p.abstract), (_case(rng, p.title), p.abstract))
        p = next(papers)
        add("unicode_forms", True, (p.title, p.abstract), (_unicode(rng, p.title), p.abstract))
        p = next(papers)
        add("punctuation", True, (p.title, p.abstract), (_punctuation(rng, p.title), p.abstract))
        p = next(papers)
        add("typo", True, (p.title, p.abstract), (_typo(rng, p.title), p.abstract))
        p = next(papers)
        add("revised_abstract", True, (p.title, p.abstract), (p.title, _revise(rng, p.abstract)))
        p = next(papers)
        variant = (_typo(rng, _case(rng, p.title), 1), _debris(rng, _revise(rng, p.abstract)))
        add("typo+revised+debris", True, (p.title, p.abstract), variant)
        p = next(papers)
        add("title_extended", True, (p.title, p.abstract), (f"{p.title} (Extended)", p.abstract))
        p = next(papers)
        add("heavy_revision", True, (p.title, p.abstract), (p.title, _rewrite(rng, p.abstract)))
        # Not the same paper.
        p, q = next(papers), next(papers)
        add("collision", False, (p.title, p.abstract), (p.title, q.abstract))
        p, q = next(papers), next(papers)
        # Same title, and the other abstract speaks of the same method name.
        name = p.title.split(":")[0] if ":" in p.title else p.title.split(" ")[0]
        other = q.abstract.replace(q.title.split(":")[0], name) if ":" in q.title else q.abstract
        add("collision_same_name", False, (p.title, p.abstract), (p.title, other))
        p, q = next(papers), next(papers)
        add(
            "title_one_word_apart",
            False,
            (p.title, p.abstract),
            (_retitle(rng, p.title), q.abstract),
        )
        p, q = next(papers), next(papers)
        add(
            "title_one_typo_apart",
            False,
            (p.title, p.abstract),
            (_typo(rng, p.title, 1), q.abstract),
        )
        p, q = next(papers), next(papers)
        add("unrelated", False, (p.title, p.abstract), (q.title, q.abstract))
    return pairs


def write_pairs(path: Path = PAIRS_FILE) -> None:
    with path.open("w", encoding="utf-8") as out:
        for pair in make_pairs():
            out.write(json.dumps(pair, ensure_ascii=False) + "\n")


def read_pairs(path: Path = PAIRS_FILE) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def matcher_says_same(pair: dict) -> bool:
    day = dt.date(2025, 1, 1)
    entries = pl.DataFrame(
        {
            "digest_id": [f"{1:064x}", f"{2:064x}"],
            "digest_date": [day, day + dt.timedelta(days=1)],
            "position": [1, 1],
            "title": [pair["a_title"], pair["b_title"]],
            "abstract": [pair["a_abstract"], pair["b_abstract"]],
        },
        schema_overrides={"position": pl.Int32},
    )
    return assign_paper_ids(entries)["paper_id"].n_unique() == 1


def baseline_says_same(pair: dict) -> bool:
    return pair["a_title"].lower() == pair["b_title"].lower()


def scores(labels: list[bool], predictions: list[bool]) -> dict:
    tp = sum(p and t for p, t in zip(predictions, labels, strict=True))
    fp = sum(p and not t for p, t in zip(predictions, labels, strict=True))
    fn = sum(t and not p for p, t in zip(predictions, labels, strict=True))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def evaluate(pairs: list[dict]) -> dict:
    labels = [p["same_paper"] for p in pairs]
    matcher = [matcher_says_same(p) for p in pairs]
    baseline = [baseline_says_same(p) for p in pairs]
    errors = [
        {"id": p["id"], "category": p["category"], "same_paper": p["same_paper"]}
        for p, said in zip(pairs, matcher, strict=True)
        if said != p["same_paper"]
    ]
    return {
        "pairs": len(pairs),
        "positives": sum(labels),
        "matcher": scores(labels, matcher),
        "baseline_exact_lower_title": scores(labels, baseline),
        "matcher_errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the labelled pairs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--pairs", type=Path, default=PAIRS_FILE)
    args = parser.parse_args()
    if args.write:
        write_pairs(args.pairs)
    result = evaluate(read_pairs(args.pairs))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['pairs']} labelled pairs ({result['positives']} same-paper)")
    print(f"{'method':<28}{'precision':>10}{'recall':>8}{'F1':>7}{'FP':>5}{'FN':>5}")
    for name in ("matcher", "baseline_exact_lower_title"):
        s = result[name]
        print(
            f"{name:<28}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}"
            f"{s['fp']:>5}{s['fn']:>5}"
        )
    for error in result["matcher_errors"]:
        print(f"  matcher wrong on pair {error['id']} ({error['category']})")


if __name__ == "__main__":
    main()
