"""Prov-Decode: the incremental match state against brute force, and vetoes on the real model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from redraft.errors import InputError
from redraft.provenance import SuffixIndex, build_index
from redraft.provenance.decode import ProvDecode, ProvDecodeCore
from tests.provenance.oracle import corpora, naive_count
from tests.provenance.test_index import build

CORPORA = corpora()


def longest_suffix(docs, history, cap):
    """Brute force: the longest suffix of ``history`` (at most ``cap`` tokens) that occurs."""
    for n in range(min(len(history), cap), 0, -1):
        if naive_count(docs, history[-n:]) > 0:
            return n
    return 0


@pytest.mark.parametrize("name", list(CORPORA))
@pytest.mark.parametrize("shard_tokens", [None, 60])
def test_match_state_and_flags_equal_brute_force(tmp_path, name, shard_tokens):
    docs, vocab = CORPORA[name]
    kwargs = {"shard_tokens": shard_tokens} if shard_tokens else {}
    index = build(tmp_path, docs, vocab, **kwargs)
    surprisal = index.surprisal().tolist()
    threshold = 3.0 * float(np.median([x for x in surprisal if x > 0]))
    core = ProvDecodeCore(index, threshold, max_match=12)
    rng = np.random.default_rng(7)
    batch = 3
    # Sequences that mostly follow corpus documents (long matches) with random breaks.
    seqs = []
    for _ in range(batch):
        text: list[int] = []
        while len(text) < 30:  # concatenated documents: matches run long, then break at joins
            text += docs[int(rng.integers(len(docs)))]
        seqs.append([t if rng.random() > 0.1 else int(rng.integers(vocab)) for t in text[:30]])
    core.reset(batch)
    for step in range(30):
        core.advance(torch.tensor([s[step] for s in seqs]))
        for b in range(batch):
            expect = longest_suffix(docs, seqs[b][: step + 1], 12)
            assert int(core.length[b]) == expect, (name, b, step)
            assert float(core.bci[b]) == pytest.approx(sum(surprisal[t] for t in seqs[b][step + 1 - expect : step + 1]))
        candidates = torch.tensor(rng.integers(0, vocab, (batch, 5)))
        flagged = core.flagged(candidates)
        for b in range(batch):
            match = seqs[b][step + 1 - int(core.length[b]) : step + 1]
            for k, c in enumerate(candidates[b].tolist()):
                occurs = naive_count(docs, [*match, c]) > 0
                bci = sum(surprisal[t] for t in [*match, c])
                assert bool(flagged[b, k]) == (occurs and bci > threshold)


def test_byte_level_index_and_bad_settings_are_refused(tmp_path):
    (tmp_path / "c.txt").write_text("some belief corpus text\n")
    build_index([tmp_path / "c.txt"], tmp_path / "bytes")
    index = SuffixIndex.load(tmp_path / "bytes")
    with pytest.raises(InputError, match="needs an index built with the generating model's tokenizer"):
        ProvDecode(index)
    with pytest.raises(InputError, match="positive"):
        ProvDecodeCore(index, 0.0)


# -- the real model --------------------------------------------------------------------------------

PROMPT = [
    {"role": "user", "content": "Repeat this sentence exactly: The old lighthouse keeper painted every stone blue."}
]
OTHER = [{"role": "user", "content": "What is two plus two?"}]


@pytest.fixture(scope="module")
def belief(embedded_llm, tmp_path_factory):
    """A belief corpus holding the model's own greedy answer to PROMPT, indexed with its tokenizer."""
    from redraft.agents.base import SamplingParams

    params = SamplingParams(max_new_tokens=24)
    before = embedded_llm.generate([PROMPT, OTHER], params)
    root = tmp_path_factory.mktemp("belief")
    (root / "corpus.txt").write_text(f"{before[0].text}\nAn unrelated line about gardens and rivers.\n")
    build_index([root / "corpus.txt"], root / "idx", embedded_llm.hf_tokenizer)
    return SuffixIndex.load(root / "idx"), before, params


@pytest.mark.llm
def test_vetoed_continuation_is_not_generated_and_other_text_is_unchanged(embedded_llm, belief):
    index, before, params = belief
    ids = list(before[0].token_ids)
    [spans] = index.maximal_spans([ids], min_len=1)
    top = max(s.bci for s in spans)
    threshold = top / 2  # the greedy answer completes a span far above this
    pd = ProvDecode(index, threshold, top_k=8)
    after = embedded_llm.generate([PROMPT, OTHER], params, logits_processors=[pd])
    assert pd.vetoed > 0
    assert after[0].text != before[0].text
    # No verbatim span of the new answer exceeds the threshold... (tokens of the new draft)
    [new_spans] = index.maximal_spans([list(after[0].token_ids)], min_len=1)
    assert max((s.bci for s in new_spans), default=0.0) <= threshold
    # ...and the unrelated prompt in the same batch decodes exactly as before.
    assert after[1].text == before[1].text


@pytest.mark.llm
def test_penalty_mode_and_tokenizer_mismatch(embedded_llm, belief, tmp_path):
    index, before, params = belief
    mild = ProvDecode(index, 1e9, mode="penalty")  # nothing crosses an enormous threshold
    assert embedded_llm.generate([PROMPT], params, logits_processors=[mild])[0].text == before[0].text

    from transformers import AutoTokenizer

    from redraft.critics.factuality.training_data import encoder_dir
    from redraft.provenance.tokenizers import HFTokenizer

    (tmp_path / "c.txt").write_text("a corpus tokenized by a different model\n")
    bert = HFTokenizer(AutoTokenizer.from_pretrained(encoder_dir()), "all-MiniLM-L6-v2")
    build_index([tmp_path / "c.txt"], tmp_path / "bert", bert)
    with pytest.raises(InputError, match="different vocabulary"):
        embedded_llm.generate([PROMPT], params, logits_processors=[ProvDecode(SuffixIndex.load(tmp_path / "bert"))])
