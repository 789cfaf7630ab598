"""Evidence windows: the words of the retrieved passages a verifier reads for a claim."""

from __future__ import annotations

import random

import pytest

from redraft.critics.factuality import Passage
from redraft.critics.factuality.windows import best_window, content_terms

FILLER = ["river", "mountain", "valley", "forest", "desert", "ocean", "island", "plain", "harbor", "canyon"]


@pytest.mark.parametrize("seed", range(20))
def test_a_planted_sentence_is_read_whole(seed):
    """Property: a sentence of at most 3/4 window whose terms occur nowhere else in the passages
    lies wholly inside the chosen window (windows start every quarter window)."""
    rng = random.Random(seed)
    words = rng.choice([8, 12, 16, 24])
    planted = [f"fact{seed}x{i}" for i in range(rng.randint(2, 3 * words // 4))]
    passages = [[rng.choice(FILLER) for _ in range(rng.randint(words, 5 * words))] for _ in range(3)]
    target = rng.randrange(3)
    at = rng.randint(0, len(passages[target]))
    passages[target][at:at] = planted
    ps = [Passage(doc=i, title=f"Doc {i}", text=" ".join(t)) for i, t in enumerate(passages)]
    window = best_window(" ".join(rng.sample(planted, k=len(planted))), ps, words)
    assert window.passage is ps[target]
    assert " ".join(planted) in window.text
    part = rng.sample(planted, k=max(1, len(planted) // 2))  # a claim naming some of it: all of those
    assert set(part) <= set(best_window(" ".join(part), ps, words).text.split())
    assert len(window.text.split()) == words + 2  # "Doc i:" then the window


def test_numbers_outweigh_words_and_ties_go_to_retrieval_order():
    early = Passage(doc=0, title="A", text="Curie lived in Paris")
    late = Passage(doc=1, title="B", text="Curie arrived 1891")
    assert best_window("Curie lived in 1891", [early, late], words=4).passage is late  # 1891 counts 2
    assert best_window("Curie", [early, late], words=4).passage is early


def test_short_evidence_is_read_whole_and_marked_uncut():
    p = Passage(doc=0, title="", text="Paris is the capital of France.")
    window = best_window("Paris is a capital.", [p], words=24)
    assert (window.text, window.cut) == ("Paris is the capital of France.", False)
    assert best_window("x", [], words=4).text == ""
    with pytest.raises(ValueError, match="words"):
        best_window("x", [p], words=0)


def test_content_terms_drop_stop_words():
    assert content_terms("The Curie lab was in Paris, in 1903.") == {"curie", "lab", "paris", "1903"}
