"""Span selection (self-contained trimming, filters), calibration, and infini-gram as a count oracle."""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redraft.provenance import ByteTokenizer, SuffixIndex, build_index
from redraft.provenance.bci import SpanFilters, find_spans, roc, self_contained, threshold_at_fpr

TOK = ByteTokenizer()


@pytest.mark.parametrize(
    ("text", "span", "expected"),
    [
        # (text, the raw match as a substring, the self-contained pieces)
        ("xx quick brown fox jumps yy", "ick brown fox jum", ["brown fox"]),
        ("The cat sat. Then it ran away.", "cat sat. Then it ran", ["cat sat.", "Then it ran"]),
        ("one two\nthree four", "one two\nthree four", ["one two", "three four"]),
        ("abc", "b", []),
    ],
)
def test_self_contained_pieces(text, span, expected):
    enc = TOK.encode_with_offsets(text)
    start = len(text[: text.index(span)].encode())
    end = start + len(span.encode())
    pieces = self_contained(text, enc, start, end)
    assert [TOK.decode(enc.ids[a:b]) for a, b in pieces] == expected


@given(st.text())
def test_byte_offsets_name_the_character_each_byte_encodes(text):
    enc = TOK.encode_with_offsets(text)
    per_char = [(b, i) for i, ch in enumerate(text) for b in ch.encode("utf-8")]
    assert enc.ids == [b for b, _ in per_char]
    assert enc.starts == [i for _, i in per_char] and enc.ends == [i + 1 for _, i in per_char]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("c")
    docs = [
        "Vermilion herons nest only on the basalt cliffs of Ostrava Bay.",
        "The committee meets on Mondays. The committee meets on Mondays.",
        "Herons eat fish. Gulls eat fish. Otters eat fish.",
    ]
    (d / "c.jsonl").write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(docs)))
    build_index([d / "c.jsonl"], d / "idx")
    return SuffixIndex.load(d / "idx"), docs


def test_filters_min_len_max_count_and_density(corpus):
    index, _ = corpus
    text = "Do vermilion herons nest only on the basalt cliffs? The committee meets on Mondays, eat fish."
    everything = find_spans(index, TOK, [text], SpanFilters(min_len=4, density=None))[0]
    texts = [s.text for s in everything]
    assert "herons nest only on the basalt cliffs" in texts
    assert "The committee meets on Mondays" in texts
    assert all(s.length >= 4 for s in everything)
    rare_only = find_spans(index, TOK, [text], SpanFilters(min_len=4, density=None, max_count=1))[0]
    assert {s.text for s in rare_only} == {t for t, s in zip(texts, everything, strict=True) if s.count <= 1}
    top = find_spans(index, TOK, [text], SpanFilters(min_len=4, density=0.02))[0]
    assert len(top) == 2  # ceil(0.02 * 93 bytes)
    assert [s.bci for s in top] == sorted((s.bci for s in everything), reverse=True)[:2]


def test_roc_and_calibration():
    safe, flagged = [0.0, 10.0, 12.0, 40.0], [35.0, 50.0, 60.0]
    points = {p.threshold: (p.fpr, p.tpr) for p in roc(safe, flagged)}
    assert points[12.0] == (0.25, 1.0) and points[40.0] == (0.0, 2 / 3)
    assert threshold_at_fpr(safe, flagged, target_fpr=0.25).threshold == 12.0
    assert threshold_at_fpr(safe, flagged, target_fpr=0.0).threshold == 40.0
    with pytest.raises(ValueError, match="no threshold reaches"):
        threshold_at_fpr([5.0], [1.0], target_fpr=-0.1)


def test_counts_agree_with_infini_gram(tmp_path):
    """infini-gram's own indexer and engine, on the same byte-level corpus, as an independent oracle."""
    pytest.importorskip("infini_gram")
    rng = random.Random(0)
    words = [w.strip(".,") for w in Path(__file__).read_text(encoding="utf-8").split() if w.isascii()]
    docs = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 60))) for _ in range(300)]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "c.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    build_index([tmp_path / "data" / "c.jsonl"], tmp_path / "ours")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "infini_gram.indexing",
            "--data_dir",
            str(tmp_path / "data"),
            "--save_dir",
            str(tmp_path / "ig"),
            "--token_dtype",
            "u8",
            "--cpus",
            "1",
            "--mem",
            "1",
            "--ulimit",
            str(hard),
        ],
        check=True,
        capture_output=True,
    )
    from infini_gram.engine import InfiniGramEngine

    engine = InfiniGramEngine(index_dir=str(tmp_path / "ig"), eos_token_id=254, vocab_size=255, token_dtype="u8")
    ours = SuffixIndex.load(tmp_path / "ours")
    blob = "\n".join(docs).encode()
    queries = []
    for _ in range(2000):
        n = rng.randint(1, 12)
        if rng.random() < 0.7:  # substrings of the corpus
            i = rng.randrange(len(blob) - n)
            q = list(blob[i : i + n])
            if 10 in q:  # "\n" joined documents here; it is not in the corpus
                continue
        else:
            q = [rng.randrange(32, 127) for _ in range(n)]
        queries.append(q)
    expected = [engine.count(input_ids=q)["count"] for q in queries]
    assert ours.count(queries) == expected
    assert sum(c > 0 for c in expected) > 1000  # most queries really occur
