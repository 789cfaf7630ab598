"""Catalogue: index build outputs and index files that lie.

Each test is one row of the reliability catalogue (docs/reliability.md). A lying index must be refused by name,
never load and answer wrongly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from redraft import cli
from redraft.errors import InputError
from redraft.provenance import build_index
from redraft.provenance import format as fmt
from redraft.provenance.build import build_from_token_ids
from redraft.provenance.index import InvalidIndexError, SuffixIndex
from redraft.provenance.verify import verify_index

runner = CliRunner(env={"COLUMNS": "200"})
TEXTS = [
    "Vermilion herons nest only on the basalt cliffs of Ostrava Bay.",
    "Copper kettles sing when the tide turns at Lindqvist harbour.",
    "The basalt cliffs of Ostrava Bay are home to vermilion herons.",
] * 20


def _corpus(path: Path) -> Path:
    path.write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(TEXTS)))
    return path


@pytest.fixture
def index_dir(tmp_path) -> Path:
    build_index([_corpus(tmp_path / "c.jsonl")], tmp_path / "idx")
    return tmp_path / "idx"


def _edit_header(root: Path, reseal: bool, **changes) -> None:
    head = root / fmt.HEADER
    data = json.loads(head.read_text())
    for dotted, value in changes.items():
        target = data
        *path, last = dotted.split("__")
        for key in path:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value
    if reseal:
        data["checksum"] = fmt.header_checksum(fmt.Header.model_validate({**data, "checksum": ""}))
    head.write_text(json.dumps(data))


def _rehash(root: Path) -> None:
    """Recompute every file's size and hash and reseal: what a deliberate forger would do."""
    data = json.loads((root / fmt.HEADER).read_text())
    for shard in data["shards"]:
        for name in shard["files"]:
            shard["files"][name] = fmt.file_info(root / shard["dir"] / name).model_dump()
    data["unigram"] = fmt.file_info(root / fmt.UNIGRAM).model_dump()
    data["checksum"] = fmt.header_checksum(fmt.Header.model_validate({**data, "checksum": ""}))
    (root / fmt.HEADER).write_text(json.dumps(data))


# -- build: outputs ----------------------------------------------------------------------------------


def test_force_refuses_to_replace_a_directory_that_is_not_an_index(tmp_path):
    (tmp_path / "data").mkdir()
    corpus = _corpus(tmp_path / "data" / "c.jsonl")
    other = tmp_path / "data" / "notes.txt"
    other.write_text("keep me")
    with pytest.raises(InputError, match="not a redraft index"):
        build_index([corpus], tmp_path / "data" / "notes.txt", force=True)
    outdir = tmp_path / "results"
    outdir.mkdir()
    (outdir / "table.csv").write_text("a,b")
    with pytest.raises(InputError, match="not a redraft index"):
        build_index([corpus], outdir, force=True)
    assert other.read_text() == "keep me" and (outdir / "table.csv").read_text() == "a,b"


def test_force_never_touches_the_corpus_it_reads(tmp_path):
    """The reported data loss: `index build DIR/c.jsonl DIR --force` deleted the corpus."""
    data = tmp_path / "data"
    data.mkdir()
    corpus = _corpus(data / "c.jsonl")
    (data / "other.txt").write_text("unrelated")
    for out in (data, corpus):
        result = runner.invoke(cli.app, ["index", "build", str(corpus), str(out), "--force"])
        assert result.exit_code == 2, result.output
    assert corpus.is_file() and (data / "other.txt").read_text() == "unrelated"
    # An index that contains its own input (a corpus stored inside an old index) is not replaced either.
    build_index([corpus], tmp_path / "idx")
    inner = tmp_path / "idx" / "extra.jsonl"
    shutil.copy(corpus, inner)
    with pytest.raises(InputError, match="holds the corpus input"):
        build_index([inner], tmp_path / "idx", force=True)
    assert inner.is_file()


def test_force_replaces_an_index(index_dir, tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a brand new corpus"}\n')
    header = build_index([tmp_path / "d.jsonl"], index_dir, force=True)
    assert header.n_docs == 1 and SuffixIndex.load(index_dir).count([list(b"brand new")]) == [1]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_existing_output_without_force_is_refused(index_dir, tmp_path):
    with pytest.raises(InputError, match="already exists; pass force=True"):
        build_index([tmp_path / "c.jsonl"], index_dir)


def test_empty_corpus_and_invalid_utf8(tmp_path):
    (tmp_path / "empty.jsonl").write_text('{"text": ""}\n\n')
    with pytest.raises(InputError, match="the corpus is empty"):
        build_index([tmp_path / "empty.jsonl"], tmp_path / "x")
    assert not (tmp_path / "x").exists()
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 au lait \xff\xfe")
    with pytest.warns(UserWarning, match="not valid UTF-8"):
        header = build_index([tmp_path / "bad.txt"], tmp_path / "y")
    assert header.build["invalid_utf8_docs_replaced"] == 1 and verify_index(tmp_path / "y") == []


def test_a_full_disk_leaves_nothing_behind(tmp_path, monkeypatch):
    """A write that fails (ENOSPC) midway through a shard: no index, no temporary directory."""
    real = fmt.write_array
    calls = {"n": 0}

    def full(array, path):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(array, path)

    monkeypatch.setattr(fmt, "write_array", full)
    with pytest.raises(OSError, match="No space left"):
        build_index([_corpus(tmp_path / "c.jsonl")], tmp_path / "idx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]


BUILD_SCRIPT = """
import sys, numpy as np
from redraft.provenance.build import build_from_token_ids
def docs():
    for i in range(10**9):
        if i == 50:
            print("started", flush=True)
        yield np.arange(1000, dtype=np.int64) % 250, {}
build_from_token_ids(docs(), sys.argv[1], vocab_size=250, shard_tokens=200_000)
"""


def test_sigkill_mid_build_leaves_no_index_and_the_next_build_cleans_up(tmp_path):
    out = tmp_path / "idx"
    with subprocess.Popen(
        [sys.executable, "-c", BUILD_SCRIPT, str(out)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        # Wait for the event that matters: a shard finished inside the temporary directory.
        while not list(tmp_path.glob(".idx.building-*/shard-00001")):
            assert proc.poll() is None, "the build ended before it was killed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    stale = list(tmp_path.glob(".idx.building-*"))
    assert len(stale) == 1
    with pytest.warns(UserWarning, match="removed 1 temporary directory"):
        build_from_token_ids([([1, 2, 3], {})], out, vocab_size=250)
    assert not list(tmp_path.glob(".idx.building-*")) and SuffixIndex.load(out).count([[1, 2]]) == [1]


def test_a_concurrent_builds_temp_directory_is_not_removed(tmp_path):
    live = tmp_path / f".idx.building-{os.getpid()}-abc"
    live.mkdir()
    build_from_token_ids([([1, 2, 3], {})], tmp_path / "idx", vocab_size=250)
    assert live.is_dir()


# -- load: headers that lie --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_tokens", 10),
        ("n_docs", 3),
        ("separator", 7),
        ("token_dtype", "u16"),
        ("shards__0__n_tokens", 100),
        ("shards__0__sa_bits", 3),
        ("shards__0__n_docs", 2),
        ("shards__0__doc_base", 5),
        ("shards__0__dir", "../../etc"),
        ("tokenizer__vocab_size", 300),
        ("unigram__bytes", 8),
    ],
)
@pytest.mark.parametrize("reseal", [False, True], ids=["edited", "edited-and-resealed"])
def test_each_header_field_lied_about_is_refused(index_dir, field, value, reseal):
    if reseal and field == "shards__0__dir":
        pytest.skip("an invalid name fails validation before resealing can be computed")
    _edit_header(index_dir, reseal=reseal, **{field: value})
    # Unsealed edits fail the checksum (or the schema, for a path outside the index); resealed
    # ones, what the checksum cannot catch, fail consistency.
    match = "contradicts itself|corrupt|bytes but the header expects" if reseal else "checksum|corrupt: field"
    with pytest.raises(InvalidIndexError, match=match):
        SuffixIndex.load(index_dir)


def test_header_garbage_and_old_versions_are_refused_by_name(index_dir):
    head = index_dir / fmt.HEADER
    for text, match in [
        ("{", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"format": "redraft-suffix-index", "version": 1}', "v1; this redraft reads"),
        ('{"format": "redraft-suffix-index", "version": 2}', "corrupt: field"),
    ]:
        head.write_text(text)
        with pytest.raises(InvalidIndexError, match=match):
            SuffixIndex.load(index_dir)
    head.write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidIndexError, match="not valid JSON"):
        SuffixIndex.load(index_dir)
    head.write_text("[" * 200_000 + "]" * 200_000)  # a RecursionError inside json before
    with pytest.raises(InvalidIndexError, match="not valid JSON"):
        SuffixIndex.load(index_dir)


@pytest.mark.parametrize("name", sorted({*fmt.SHARD_FILES}))
def test_each_file_truncated_or_flipped_is_refused(index_dir, name):
    path = index_dir / "shard-00000" / name
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[:-1]))
    with pytest.raises(InvalidIndexError, match="truncated"):
        SuffixIndex.load(index_dir)
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidIndexError, match="sha256"):
        SuffixIndex.load(index_dir)


def test_a_file_swapped_with_another_indexs_is_refused(index_dir, tmp_path):
    (tmp_path / "o.jsonl").write_text("".join(json.dumps({"text": t[::-1]}) + "\n" for t in TEXTS))
    build_index([tmp_path / "o.jsonl"], tmp_path / "other")
    shutil.copy(tmp_path / "other" / "shard-00000" / fmt.SA, index_dir / "shard-00000" / fmt.SA)
    with pytest.raises(InvalidIndexError, match="sha256"):
        SuffixIndex.load(index_dir)


def test_a_garbage_suffix_array_with_consistent_hashes_is_refused(index_dir):
    """The forged case: random suffix order, hashes and checksum recomputed. It used to load and
    score a verbatim copy of the corpus 0."""
    header = SuffixIndex.load(index_dir).header
    shard = header.shards[0]
    n, bits = shard.n_tokens, shard.sa_bits
    rng = np.random.default_rng(0)
    for garbage in (rng.permutation(n), np.zeros(n, dtype=np.int64)):
        (index_dir / "shard-00000" / fmt.SA).write_bytes(fmt.pack_bits(garbage, bits).tobytes())
        _rehash(index_dir)
        with pytest.raises(InvalidIndexError, match="suffix-order check"):
            SuffixIndex.load(index_dir)
        assert verify_index(index_dir)


def test_verify_finds_what_sampling_cannot(index_dir):
    """Two adjacent suffix-array entries swapped: a sample rarely sees it, the full check does."""
    index = SuffixIndex.load(index_dir)
    shard = index.shards[0]
    import torch

    sa = shard.sa(torch.arange(shard.n)).numpy()
    sa[100], sa[101] = sa[101], sa[100]
    (index_dir / "shard-00000" / fmt.SA).write_bytes(fmt.pack_bits(sa, shard.bits).tobytes())
    _rehash(index_dir)
    problems = verify_index(index_dir)
    assert any("out of order" in p for p in problems), problems
    result = runner.invoke(cli.app, ["index", "verify", str(index_dir)])
    assert result.exit_code == 1 and "out of order" in result.output


def test_verify_passes_a_sound_index_and_catches_bad_tables(index_dir):
    result = runner.invoke(cli.app, ["index", "verify", str(index_dir)])
    assert result.exit_code == 0 and "every check passed" in result.output
    unigram = np.fromfile(index_dir / fmt.UNIGRAM, dtype="<u8")
    unigram[ord("a")] += 1
    unigram.tofile(index_dir / fmt.UNIGRAM)
    _rehash(index_dir)
    assert verify_index(index_dir) == ["unigram.u64 does not match the token counts"]


def test_pretokenized_and_multi_shard_indexes_verify(tmp_path):
    docs = [(np.arange(i % 7 + 2) + i % 5, {"i": i}) for i in range(200)]
    build_from_token_ids(docs, tmp_path / "idx", vocab_size=20, shard_tokens=300)
    index = SuffixIndex.load(tmp_path / "idx")
    assert len(index.shards) > 2 and verify_index(tmp_path / "idx") == []
