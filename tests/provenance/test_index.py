"""The suffix index against brute force: builders, count, find, longest_match, maximal_spans."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redraft.errors import InputError
from redraft.provenance import (
    ByteTokenizer,
    SuffixIndex,
    build_from_token_ids,
    build_index,
    suffix_array,
    torch_suffix_array,
)
from redraft.provenance import shard as shard_module
from tests.provenance.oracle import corpora, naive_count, naive_longest, naive_sa

CORPORA = corpora()


@pytest.fixture(autouse=True, params=["compiled", "torch"])
def search(request, monkeypatch):
    """Every test here runs twice on the CPU: through the compiled kernel, which the CPU uses by
    default, and through the torch search that CUDA runs."""
    original = SuffixIndex.__init__

    def init(self, root, header, device, *, compiled=None):
        wanted = request.param == "compiled" and device.type == "cpu"
        original(self, root, header, device, compiled=wanted if compiled is None else compiled)

    monkeypatch.setattr(SuffixIndex, "__init__", init)
    return request.param


def build(tmp_path, docs, vocab, name="idx", **kwargs):
    build_from_token_ids(
        ((d, {"title": f"doc{i}"}) for i, d in enumerate(docs)), tmp_path / name, vocab_size=vocab, **kwargs
    )
    return SuffixIndex.load(tmp_path / name)


def flat(docs, sep):
    return [t for d in docs for t in (sep, *d)]


@pytest.mark.parametrize("name", list(CORPORA))
def test_both_builders_equal_the_brute_force_suffix_array(name):
    docs, vocab = CORPORA[name]
    tokens = np.array(flat(docs, vocab), dtype=np.uint16)
    expected = naive_sa(tokens.tolist())
    assert suffix_array(tokens, "divsufsort").tolist() == expected
    assert suffix_array(tokens, "torch").tolist() == expected


def test_the_packed_suffix_array_on_disk_is_the_suffix_array(tmp_path):
    docs, vocab = CORPORA["zipf"]
    index = build(tmp_path, docs, vocab)
    [shard] = index.shards
    tokens = shard.tokens.to(torch.int64).tolist()
    assert shard.sa(torch.arange(shard.n)).tolist() == naive_sa(tokens)
    assert shard.bits == (shard.n - 1).bit_length()


def test_torch_builder_on_degenerate_inputs():
    assert torch_suffix_array(torch.tensor([7, 7, 7, 7])).tolist() == [3, 2, 1, 0]
    assert torch_suffix_array(torch.tensor([5])).tolist() == [0]
    assert torch_suffix_array(torch.tensor([], dtype=torch.int64)).tolist() == []


@pytest.mark.parametrize("name", list(CORPORA))
def test_count_and_find_equal_a_naive_scan(tmp_path, name):
    docs, vocab = CORPORA[name]
    index = build(tmp_path, docs, vocab)
    rng = np.random.default_rng(1)
    patterns = []
    for _ in range(300):  # substrings of the corpus (present) and random sequences (mostly absent)
        d = docs[rng.integers(len(docs))]
        i = int(rng.integers(len(d)))
        patterns.append(d[i : i + int(rng.integers(1, 12))])
        patterns.append(rng.integers(0, vocab, rng.integers(1, 5)).tolist())
    assert index.count(patterns) == [naive_count(docs, p) for p in patterns]
    lo, hi = index.find(patterns)
    [sa] = [s.sa(torch.arange(s.n)).tolist() for s in index.shards]
    tokens = index.shards[0].tokens.to(torch.int64).tolist()
    for p, low, high in zip(patterns, lo[0].tolist(), hi[0].tolist(), strict=True):
        for rank in range(low, high):  # every suffix in the range starts with the pattern
            assert tokens[sa[rank] : sa[rank] + len(p)] == p
        assert high - low == naive_count(docs, p)


@pytest.mark.parametrize("name", list(CORPORA))
def test_longest_match_equals_brute_force(tmp_path, name):
    docs, vocab = CORPORA[name]
    index = build(tmp_path, docs, vocab)
    rng = np.random.default_rng(2)
    seqs = [docs[3][2:] + rng.integers(0, vocab, 10).tolist() + docs[7], rng.integers(0, vocab, 30).tolist()]
    m = index.longest_match(seqs)
    for b, seq in enumerate(seqs):
        lengths = m.lengths[m.offsets[b] : m.offsets[b + 1]].tolist()
        counts = m.counts[m.offsets[b] : m.offsets[b + 1]].tolist()
        assert lengths == [naive_longest(docs, seq, i) for i in range(len(seq))]
        assert counts == [naive_count(docs, seq[i : i + n]) if n else 0 for i, n in enumerate(lengths)]
        # The ranges, found from each position's insertion rank, are find()'s for the same patterns.
        lo, hi = index.find([seq[i : i + n] for i, n in enumerate(lengths)])
        assert m.lo[:, m.offsets[b] : m.offsets[b + 1]].tolist() == lo.tolist()
        assert m.hi[:, m.offsets[b] : m.offsets[b + 1]].tolist() == hi.tolist()


def _wide_corpus() -> tuple[list[list[int]], int]:
    """Token ids above 65,535 (a u32 index) with a repeated 30-token segment, so that samples share
    more than every level's tokens."""
    rng = np.random.default_rng(5)
    segment = (70_000 + rng.integers(0, 6, 30)).tolist()
    docs = [(70_000 + rng.integers(0, 6, int(rng.integers(0, 12)))).tolist() + segment for _ in range(15)]
    return docs, 70_010


KEYED = {**CORPORA, "wide": _wide_corpus()}


@pytest.mark.parametrize(("sample", "sorted_from"), [(1, 10**9), (3, 1)])
@pytest.mark.parametrize("name", list(KEYED))
def test_sampled_keys_narrow_to_a_range_holding_the_answer(tmp_path, monkeypatch, name, sample, sorted_from):
    """With a key for every (or every third) suffix, every level and group path is taken: the
    bounds ``narrow`` returns must hold the brute-force rank for patterns of every length, and the
    queries built on them must still equal the naive scans. ``sorted_from=1`` sends every lookup
    through the sorted path large batches take."""
    monkeypatch.setattr(shard_module, "SAMPLE", sample)
    monkeypatch.setattr(shard_module, "SORTED_SEARCH", sorted_from)
    docs, vocab = KEYED[name]
    index = build(tmp_path, docs, vocab)
    [shard] = index.shards
    tokens = shard.tokens.to(torch.int64).tolist()
    suffixes = [tokens[p:] for p in naive_sa(tokens)]
    levels = shard.levels
    assert all(bool((k[1:] >= k[:-1]).all()) for k in levels.keys)
    assert levels.ends[-1] > levels.ends[0]  # the keys reach past level 0
    rng = np.random.default_rng(3)
    patterns = [[]]
    for _ in range(200):
        d = docs[rng.integers(len(docs))]
        i = int(rng.integers(len(d)))
        patterns.append(d[i : i + int(rng.integers(1, 40))])
        patterns.append([*d[i : i + int(rng.integers(0, 20))], int(rng.integers(0, vocab))])
    window = torch.tensor([(p + [-2] * 40)[:40] for p in patterns], dtype=torch.int64)
    length = torch.tensor([len(p) for p in patterns])
    for upper in (False, True):
        lo, hi = levels.narrow(
            window, torch.arange(len(patterns)), length, shard.n, torch.full_like(length, upper, dtype=torch.bool)
        )
        for p, low, high in zip(patterns, lo.tolist(), hi.tolist(), strict=True):
            k = len(p)
            if upper:  # the first suffix greater than the pattern on its first len(p) tokens
                rank = next((r for r, x in enumerate(suffixes) if x[:k] > p), shard.n)
            else:  # the first suffix at or above the pattern
                rank = next((r for r, x in enumerate(suffixes) if x >= p), shard.n)
            assert low < rank <= high, (p, upper)
            assert high - low <= max(2 * sample, 2) or len(p) >= levels.ends[-1]
    queries = [p for p in patterns if p]
    assert index.count(queries) == [naive_count(docs, p) for p in queries]
    seq = docs[2][3:] + docs[4] + docs[1][:9]
    assert index.longest_match([seq]).lengths.tolist() == [naive_longest(docs, seq, i) for i in range(len(seq))]


def test_maximal_spans_bci_and_attribution(tmp_path):
    docs, vocab = CORPORA["repeated"]
    index = build(tmp_path, docs, vocab)
    seq = [49, 49, *docs[0][3:30], 48, *docs[5][:12]]
    [spans] = index.maximal_spans([seq], min_len=1, max_docs=3)
    lengths = [naive_longest(docs, seq, i) for i in range(len(seq))]
    expected, furthest = [], 0
    for i, n in enumerate(lengths):
        if n and i + n > furthest:
            expected.append((i, i + n))
            furthest = i + n
    assert [(s.start, s.end) for s in spans] == expected
    assert index.maximal_ranges([seq], min_len=1) == [expected]
    counts = np.bincount([t for d in docs for t in d], minlength=vocab).astype(float)
    total = counts.sum() + vocab  # add-one smoothing
    for s in spans:
        tokens = seq[s.start : s.end]
        assert s.count == naive_count(docs, tokens)
        assert s.bci == pytest.approx(sum(-math.log((counts[t] + 1) / total) for t in tokens))
        assert s.bci_max == pytest.approx(max(-math.log((counts[t] + 1) / total) for t in tokens))
        assert len(s.docs) == min(3, s.count)
        for ref in s.docs:  # the named document really holds the span at that offset
            assert docs[ref.doc][ref.offset : ref.offset + s.length] == tokens
            assert ref.meta == {"id": ref.doc, "title": f"doc{ref.doc}"}


def test_unseen_tokens_add_nothing_to_bci(tmp_path):
    index = build(tmp_path, [[0, 1, 2, 3]], 10)
    surprisal = index.surprisal()
    assert surprisal[5:].tolist() == [0.0] * 5  # never seen: no contribution
    assert bool((surprisal[:4] > 0).all())


@pytest.mark.parametrize("name", list(CORPORA))
def test_shards_answer_like_one_index(tmp_path, name):
    docs, vocab = CORPORA[name]
    one = build(tmp_path, docs, vocab, "one")
    many = build(tmp_path, docs, vocab, "many", shard_tokens=60)
    assert len(many.shards) > 3
    rng = np.random.default_rng(3)
    patterns = [docs[int(rng.integers(len(docs)))][:k] for k in range(1, 8)] + [rng.integers(0, vocab, 3).tolist()]
    assert many.count(patterns) == one.count(patterns)
    seq = docs[1] + docs[2]
    assert many.longest_match([seq]).lengths.tolist() == one.longest_match([seq]).lengths.tolist()
    assert many.longest_match([seq]).counts.tolist() == one.longest_match([seq]).counts.tolist()
    m = many.longest_match([seq])  # in a shard without the match, its range is empty at the insertion rank
    lo, hi = many.find([seq[i : i + n] for i, n in enumerate(m.lengths.tolist())])
    assert (m.lo.tolist(), m.hi.tolist()) == (lo.tolist(), hi.tolist())
    spans = many.maximal_spans([seq], max_docs=50)[0]
    for s in spans:
        refs = {(r.doc, r.offset) for r in s.docs}
        assert s.count == naive_count(docs, seq[s.start : s.end])
        assert len(refs) == s.count  # every occurrence found once, across shards
        for doc, offset in refs:
            assert docs[doc][offset : offset + s.length] == seq[s.start : s.end]
    assert [many.document(i) for i in range(len(docs))] == [list(d) for d in docs]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    docs=st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=25), min_size=1, max_size=8),
    patterns=st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=6), min_size=1, max_size=10),
    builder=st.sampled_from(["divsufsort", "torch"]),
)
def test_property_counts_and_longest_matches(tmp_path_factory, docs, patterns, builder):
    tmp = tmp_path_factory.mktemp("h")
    index = build(tmp, docs, 6, builder=builder)
    assert index.count(patterns) == [naive_count(docs, p) for p in patterns]
    seq = [t for p in patterns for t in p]
    assert index.longest_match([seq]).lengths.tolist() == [naive_longest(docs, seq, i) for i in range(len(seq))]


def test_byte_index_from_jsonl_counts_like_python(tmp_path):
    texts = ["the cat sat on the mat", "the dog sat", "a cat, a hat"]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts)))
    build_index([tmp_path / "c.jsonl"], tmp_path / "idx")
    index = SuffixIndex.load(tmp_path / "idx")
    tok = ByteTokenizer()
    words = ["the", "cat", "sat", " a", "at", "dog", "cow", "t"]
    assert index.count([tok.encode(w) for w in words]) == [sum(t.count(w) for t in texts) for w in words]
    assert index.header.tokenizer.kind == "bytes" and index.header.token_dtype == "u8"
    [span] = [s for s in index.maximal_spans([tok.encode("my cat sat on it")])[0] if s.length >= 8]
    assert tok.decode(tok.encode("my cat sat on it")[span.start : span.end]) == " cat sat on "
    assert span.docs[0].meta == {"id": 0, "n": 0}


def test_text_files_are_documents(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("alpha beta")
    (tmp_path / "corpus" / "b.txt").write_text("beta gamma")
    build_index([tmp_path / "corpus"], tmp_path / "idx")
    index = SuffixIndex.load(tmp_path / "idx")
    assert index.header.n_docs == 2
    assert index.count([list(b"beta")]) == [2]
    assert index.attribute(list(b"gamma"))[0].meta["path"].endswith("b.txt")


# -- bad input -------------------------------------------------------------------------------------


def test_empty_corpus_is_refused_and_leaves_nothing(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"text": ""}\n\n')
    with pytest.raises(InputError, match="corpus is empty"):
        build_index([tmp_path / "c.jsonl"], tmp_path / "idx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]


def test_invalid_utf8_is_replaced_and_reported(tmp_path):
    (tmp_path / "c.jsonl").write_bytes(b'{"text": "caf\xe9 ok"}\n{"text": "fine"}\n')
    with pytest.warns(UserWarning, match="1 document"):
        header = build_index([tmp_path / "c.jsonl"], tmp_path / "idx")
    assert header.build["invalid_utf8_docs_replaced"] == 1
    assert SuffixIndex.load(tmp_path / "idx").count([list("caf\ufffd".encode())]) == [1]


def test_interrupted_build_leaves_nothing_that_loads(tmp_path, monkeypatch):
    import redraft.provenance.build as build_mod

    (tmp_path / "c.jsonl").write_text('{"text": "hello"}\n')

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build_mod, "suffix_array", killed)
    with pytest.raises(KeyboardInterrupt):
        build_index([tmp_path / "c.jsonl"], tmp_path / "idx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]


def test_existing_index_needs_force(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"text": "hello"}\n')
    build_index([tmp_path / "c.jsonl"], tmp_path / "idx")
    with pytest.raises(InputError, match="already exists; pass force=True"):
        build_index([tmp_path / "c.jsonl"], tmp_path / "idx")
    (tmp_path / "c.jsonl").write_text('{"text": "bye"}\n')
    build_index([tmp_path / "c.jsonl"], tmp_path / "idx", force=True)
    assert SuffixIndex.load(tmp_path / "idx").count([list(b"bye")]) == [1]


@pytest.fixture
def small_index(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"text": "the quick brown fox"}\n')
    build_index([tmp_path / "c.jsonl"], tmp_path / "idx")
    return tmp_path / "idx"


def test_truncated_index_is_refused(small_index):
    sa = small_index / "shard-00000" / "sa.bin"
    sa.write_bytes(sa.read_bytes()[:-4])
    with pytest.raises(InputError, match=r"sa.bin has .* bytes but the header expects .*truncated"):
        SuffixIndex.load(small_index)


def test_tampered_index_is_refused(small_index):
    tokens = small_index / "shard-00000" / "tokens.bin"
    data = bytearray(tokens.read_bytes())
    data[3] ^= 1
    tokens.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"tokens.bin does not match its sha256"):
        SuffixIndex.load(small_index)


def test_a_directory_without_header_is_not_an_index(tmp_path):
    with pytest.raises(InputError, match="is not a redraft index"):
        SuffixIndex.load(tmp_path)


def test_token_ids_outside_the_vocabulary_are_refused(small_index):
    with pytest.raises(InputError, match=r"token id 300 is outside the index vocabulary \[0, 256\)"):
        SuffixIndex.load(small_index).count([[1, 300]])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_a_gpu_is_an_error_not_a_fallback(small_index):
    with pytest.raises(InputError, match=r"no CUDA device is available.*device='auto'"):
        SuffixIndex.load(small_index, device="cuda")
    assert SuffixIndex.load(small_index, device="auto").device.type == "cpu"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_cuda_give_identical_answers(tmp_path):
    docs, vocab = CORPORA["repeated"]
    build(tmp_path, docs, vocab)
    cpu, gpu = SuffixIndex.load(tmp_path / "idx"), SuffixIndex.load(tmp_path / "idx", device="cuda")
    seqs = [docs[0] + docs[1], docs[2][::-1]]
    assert cpu.maximal_spans(seqs) == gpu.maximal_spans(seqs)
    tokens = np.array(flat(docs, vocab), dtype=np.uint16)
    assert suffix_array(tokens, "torch", device="cuda").tolist() == suffix_array(tokens, "divsufsort").tolist()


def test_range_max_equals_slicing():
    """The sparse-table maximum behind each span's bci_max, against a slice per range."""
    rng = np.random.default_rng(7)
    values = rng.random(300)
    start = rng.integers(0, 300, 2000)
    length = np.array([int(rng.integers(1, 301 - s)) for s in start])
    expected = [values[s : s + n].max() for s, n in zip(start, length, strict=True)]
    assert shard_module.range_max(values, start, length).tolist() == expected


@pytest.mark.parametrize("sample", [1, 64])
def test_a_long_match_with_the_first_suffix_is_measured_in_full(tmp_path, monkeypatch, sample):
    """A pattern below every suffix starts between the virtual bound -1 and rank 0: the LCP with
    rank 0 must be measured past the first chunk although the other bound reads nothing."""
    monkeypatch.setattr(shard_module, "SAMPLE", sample)
    docs = [[0] * 40, [1, 2, 3] * 5, [0, 0, 1]]
    index = build(tmp_path, docs, 4)
    seq = [0] * 35
    assert index.longest_match([seq]).lengths.tolist() == [naive_longest(docs, seq, i) for i in range(35)]
    assert index.count([seq, [0] * 41]) == [naive_count(docs, seq), 0]
