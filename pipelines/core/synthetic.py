"""Deterministic synthetic digests, shaped like real ones. Every file it writes is
named `synthetic-YYYY-MM-DD.txt` so nobody mistakes it for real data.

Shape taken from real digests: ~65 entries per digest, titles of 20-140 characters
(often `Name: subtitle`), abstracts of ~1,400-1,900 characters, about one entry in six a
paper already listed in an earlier digest, and titles that tell papers apart: in real
digests two different papers almost never share a title (none do in the seed digests), so
here about one new paper in a hundred takes an earlier paper's title, on purpose.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HEADER = [
    "new",
    "Get trending papers in your email inbox!",
    "Subscribe",
    "byAK and the research community",
]

_ADJECTIVES = """adaptive scalable robust efficient sparse hierarchical contrastive causal
multimodal federated generative discrete continual latent implicit autoregressive
probabilistic lightweight unified self-supervised""".split()
_TOPICS = """diffusion models|language models|reinforcement learning|graph neural networks|
vision transformers|knowledge distillation|quantization|neural architecture search|
time series forecasting|speech recognition|code generation|instruction tuning|
mixture of experts|retrieval augmentation|optimization|continual learning|
low-rank adaptation|image editing|video generation|reward modeling""".replace("\n", "").split("|")
_TASKS = """reasoning|long-context modeling|image synthesis|planning|few-shot learning|
robotic manipulation|machine translation|question answering|anomaly detection|
protein design|3D reconstruction|recommendation""".replace("\n", "").split("|")
_SETTINGS = """at Scale|in the Wild|on Edge Devices|under Distribution Shift|from Few Examples|
without Labels|for Low-Resource Languages|in Medical Imaging|with Noisy Labels|in Real Time|
across Domains|on a Budget|from Human Feedback|for Autonomous Driving|in Open Worlds|
with Synthetic Data|under Privacy Constraints|for Scientific Discovery|on Long Videos|
at Test Time|for Multilingual Text|with Limited Memory|in Simulation|from Pixels""".replace(
    "\n", " "
).split("|")
_LEADS = ["Towards", "Rethinking", "Revisiting", "Understanding", "On", "Scaling"]
_VERBS = "improves|accelerates|stabilizes|simplifies|scales|regularizes".split("|")
_SENTENCES = [
    "Recent progress in {topic} has changed how practitioners approach {task}.",
    "However, existing methods remain {adj} only in narrow settings and fail to generalize.",
    "In this work, we introduce {name}, a {adj} framework for {task} built on {topic}.",
    "Our key insight is that a {adj} objective {verb} training without extra supervision.",
    "We provide a theoretical analysis showing that {name} converges under mild assumptions.",
    "Extensive experiments on {n} benchmarks show that {name} outperforms strong baselines.",
    "Compared with prior {topic} approaches, {name} reduces compute by {n}x.",
    "Ablation studies confirm that each component of {name} contributes to the gains.",
    "We further show that {name} transfers to {task} with minimal tuning.",
    "These results suggest that {name} is a promising direction for {adj} {task}.",
    "The design is simple, requires no additional data, and is easy to implement.",
    "We release models and evaluation scripts to support future research.",
]


@dataclass(frozen=True)
class SyntheticPaper:
    title: str
    abstract: str


_SYLLABLES = """Lo Ra Ve Zen Qu Mi Tor Ka Sy Nex Al Bri Cor Dy El Fa Gro Hy Io Ju Lum Mo Ny
Or Pa Rho Sol Tri Um Vo Wa Xe Yo Zu Ar Be Ci Da Eno Fi Ga Hu Is Ja Ke Li Ma No""".split()
_SUFFIXES = ["", "-2", "X", "Net", "GPT", "-R1", "++", "Bench", "Former", "-VL"]


def synthetic_paper(rng: random.Random, index: int) -> SyntheticPaper:
    topic, task, adj = rng.choice(_TOPICS), rng.choice(_TASKS), rng.choice(_ADJECTIVES)
    # About 45 million method names, so that titles, and the sentences naming the method,
    # rarely repeat across papers, as in real digests.
    name = "".join(rng.sample(_SYLLABLES, 4)) + rng.choice(_SUFFIXES)
    title = rng.choices(
        [
            f"{name}: {adj.capitalize()} {topic.capitalize()} for {task.capitalize()}",
            f"{adj.capitalize()} {topic.capitalize()} {rng.choice(_VERBS)} "
            f"{task.capitalize()} {rng.choice(_SETTINGS)}",
            f"{rng.choice(_LEADS)} {adj.capitalize()} {task.capitalize()} with "
            f"{rng.choice(_ADJECTIVES).capitalize()} {topic.capitalize()} "
            f"{rng.choice(_SETTINGS)}",
        ],
        weights=[45, 15, 40],  # 44% of the seed digests' titles have a colon
    )[0]
    title = f"{title} ({index})" if rng.random() < 0.02 else title
    sentences = []
    while sum(len(s) for s in sentences) < rng.randint(1350, 1850):
        template = rng.choice(_SENTENCES)
        sentences.append(
            template.format(
                topic=rng.choice(_TOPICS),
                task=task,
                adj=rng.choice(_ADJECTIVES),
                name=name,
                verb=rng.choice(_VERBS),
                n=rng.randint(2, 40),
            )
        )
    abstract = " ".join(sentences)
    if rng.random() < 0.3:
        abstract += f" Code is available at https://github.com/synthetic-lab/{name.lower()}."
    # A per-paper token keeps abstracts of different papers clearly different.
    abstract = f"{abstract} (Synthetic paper {index}.)"
    return SyntheticPaper(title, abstract)


def generate_digests(
    n_digests: int,
    seed: int = 0,
    entries_per_digest: int = 65,
    repeat_rate: float = 0.17,
    title_collision_rate: float = 0.01,
    start: dt.date = dt.date(2025, 1, 1),
) -> Iterator[tuple[str, str]]:
    """(file name, text) for `n_digests` consecutive daily digests, deterministic by seed."""
    rng = random.Random(seed)
    pool: list[SyntheticPaper] = []
    for day in range(n_digests):
        date = start + dt.timedelta(days=day)
        chosen: list[SyntheticPaper] = []
        seen_titles: set[str] = set()
        n_entries = max(1, int(rng.gauss(entries_per_digest, entries_per_digest / 8)))
        while len(chosen) < n_entries:
            recent = pool[-entries_per_digest * 7 :]
            if recent and rng.random() < repeat_rate:
                paper = rng.choice(recent)
            else:
                paper = synthetic_paper(rng, len(pool))
                if pool and rng.random() < title_collision_rate:
                    # Another paper under an earlier paper's title: two papers, one title.
                    paper = SyntheticPaper(rng.choice(pool).title, paper.abstract)
                pool.append(paper)
            if paper.title.casefold() not in seen_titles:
                seen_titles.add(paper.title.casefold())
                chosen.append(paper)
        lines = [*HEADER, date.strftime("%b %-d")]
        for paper in chosen:
            lines += [paper.title, paper.abstract]
        yield f"synthetic-{date.isoformat()}.txt", "\n\n".join(lines) + "\n"


def write_digests(folder: Path, n_digests: int, seed: int = 0, **options) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate_digests(n_digests, seed, **options):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
