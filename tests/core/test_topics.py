import polars as pl

from pipelines.core.topics import OTHER, TAXONOMY, topics_of


def topics(title: str, abstract: str) -> list[str]:
    return topics_of(pl.DataFrame({"title": [title], "abstract": [abstract]})).item().to_list()


def test_a_title_match_alone_assigns_a_topic():
    assert topics("Knowledge Distillation at Scale", "We study students.") == ["distillation"]


def test_one_passing_mention_in_the_abstract_is_not_enough():
    assert topics("A Study", "Unlike diffusion, we use nothing of the kind.") == [OTHER]
    assert topics("A Study", "Diffusion models and denoising steps.") == ["diffusion"]


def test_topics_follow_the_taxonomy_order():
    found = topics("Quantized Diffusion Models", "Low-bit quantization of diffusion denoisers.")
    assert found == [t for t in TAXONOMY if t in {"diffusion", "quantization"}]


def test_every_topic_has_a_description_and_a_pattern():
    for name, (description, pattern) in TAXONOMY.items():
        assert description and pattern, name


def test_each_row_gets_its_own_topics():
    frame = pl.DataFrame(
        {
            "name": ["Graph Pooling", "A Study"],
            "text": ["We pool graphs.", "Federated clients and decentralized servers."],
        }
    )
    found = topics_of(frame, title="name", abstract="text")
    assert found.to_list() == [["graph_learning"], ["federated_learning"]]
