"""The topic taxonomy: a small, fixed list of machine-learning areas, each assigned by a
transparent rule. A topic's pattern (lower case, matched against the lower-cased text)
scores 2 for a match in the title and 1 for each match in the abstract; a paper gets every
topic that scores 2 or more, in the order listed here, or `other` when none does.
"""

from __future__ import annotations

import polars as pl

OTHER = "other"
MIN_TOPIC_SCORE = 2

# name -> (what it covers, pattern)
TAXONOMY: dict[str, tuple[str, str]] = {
    "diffusion": (
        "diffusion and score-based generative models",
        r"diffusion|denois|score-based|\bddpm|\bddim",
    ),
    "language_models": (
        "large language models, prompting, instruction tuning, reasoning with LLMs",
        r"language models?\b|\bllms?\b|\bgpt|\bbert\b|chain-of-thought|instruction[- ]tun"
        r"|prompt",
    ),
    "reinforcement_learning": (
        "reinforcement learning, policies, rewards, bandits",
        r"reinforcement learning|\brl\b|polic(?:y|ies)\b|reward|q-learning|markov decision|bandit",
    ),
    "continual_learning": (
        "continual, lifelong and class-incremental learning",
        r"continual|lifelong|catastrophic forgetting|(?:class|task)-incremental"
        r"|incremental learning",
    ),
    "optimization": (
        "optimizers, training dynamics, convergence",
        r"optimi[sz]er|stochastic gradient|\bsgd\b|\badam\b|convergence|convex|learning rate"
        r"|second-order|hessian|gradient descent",
    ),
    "distillation": (
        "knowledge distillation, teacher-student training",
        r"distill|teacher model|student model|teacher-student",
    ),
    "quantization": (
        "quantization and low-bit models",
        r"quantiz|low-bit|\b[1-8]-bit\b|binari[sz]",
    ),
    "pruning_sparsity": (
        "pruning, sparsity and model compression",
        r"prun(?:e|ing)|sparsity|sparse (?:model|network|training)|compression|lottery ticket",
    ),
    "architecture_search": (
        "neural architecture search",
        r"architecture search|\bnas\b|search space of architectures",
    ),
    "parameter_efficient_finetuning": (
        "LoRA, adapters and other parameter-efficient fine-tuning",
        r"\blora\b|low-rank adaptation|parameter[- ]efficient|\badapters?\b|\bpeft\b|prompt tuning",
    ),
    "computer_vision": (
        "images, video, detection, segmentation",
        r"\bimages?\b|\bvision\b|\bvisual|segmentation|object detection|\bvideos?\b",
    ),
    "generative_models": (
        "GANs, VAEs, flows and other generative models",
        r"generative|\bgans?\b|\bvaes?\b|variational autoencoder|normali[sz]ing flow",
    ),
    "graph_learning": (
        "graph neural networks and learning on graphs",
        r"\bgraphs?\b|\bgnns?\b|message passing",
    ),
    "federated_learning": ("federated and decentralized learning", r"federated|decentrali[sz]ed"),
    "speech_audio": ("speech and audio", r"\bspeech|\baudio|\basr\b|acoustic"),
    "theory": (
        "learning theory: bounds, complexity, guarantees",
        r"theorem|we prove|upper bound|lower bound|sample complexity|\bregret|generalization bound",
    ),
    "robustness": (
        "adversarial robustness, distribution shift, spurious correlations",
        r"adversarial|robustness|out-of-distribution|distribution shift|spurious",
    ),
    "domain_adaptation": (
        "domain adaptation and test-time adaptation",
        r"domain adaptation|test-time adaptation|domain shift|source-free|domain generali[sz]ation",
    ),
    "self_supervised": (
        "self-supervised, contrastive and representation learning",
        r"self-supervised|contrastive|representation learning",
    ),
    "meta_learning": (
        "meta-learning, few-shot and in-context learning",
        r"meta-learn|few-shot|in-context learning",
    ),
    "mixture_of_experts": ("mixture-of-experts models", r"mixture[- ]of[- ]experts|\bmoe\b"),
    "bayesian": (
        "Bayesian and probabilistic methods",
        r"bayesian|posterior|gaussian process|variational inference",
    ),
    "multimodal": (
        "vision-language and other multimodal models",
        r"multi-?modal|vision-language|text-to-image|image-text|text-to-video",
    ),
}


def topics_of(frame: pl.DataFrame, title: str = "title", abstract: str = "abstract") -> pl.Series:
    """Topics of each row of `frame` as a list, in taxonomy order; ["other"] when none
    applies. Each topic's rule is a column of its own, which Polars runs side by side, and
    the texts are lower-cased once (53,976 papers: 0.37-0.43 s; as one expression with a
    branch per topic, 0.88-0.99 s lazily)."""
    lowered = frame.select(
        title=pl.col(title).str.to_lowercase(), abstract=pl.col(abstract).str.to_lowercase()
    )
    hits = lowered.select(
        (
            2 * pl.col("title").str.count_matches(pattern)
            + pl.col("abstract").str.count_matches(pattern)
        )
        .ge(MIN_TOPIC_SCORE)
        .alias(name)
        for name, (_, pattern) in TAXONOMY.items()
    )
    # Joined and split again: three times faster than concatenating 23 columns as lists.
    found = pl.concat_str(
        [pl.when(pl.col(name)).then(pl.lit(name)) for name in TAXONOMY],
        separator=",",
        ignore_nulls=True,
    )
    listed = pl.when(found != "").then(found).otherwise(pl.lit(OTHER)).str.split(",")
    return hits.select(topics=listed).to_series()
