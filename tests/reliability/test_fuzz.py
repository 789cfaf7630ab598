"""Property-based fuzzing of the readers of untrusted files: nothing may escape but redraft's own
errors (a few hundred cases each, in the default suite)."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redraft._jsonl import read_objects
from redraft.errors import RedraftError
from redraft.provenance import build_index
from redraft.provenance import format as fmt
from redraft.provenance.build import CorpusStats, iter_documents
from redraft.provenance.index import SuffixIndex
from redraft.provenance.verify import verify_index

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pristine")
    (d / "c.jsonl").write_text(
        "".join(json.dumps({"text": f"document {i} about cats and dogs"}) + "\n" for i in range(30))
    )
    build_index([d / "c.jsonl"], d / "idx")
    return d / "idx"


def _copy(pristine: Path) -> Path:
    target = Path(tempfile.mkdtemp()) / "idx"
    shutil.copytree(pristine, target)
    return target


def _load_everything(root: Path) -> None:
    try:
        index = SuffixIndex.load(root)
        index.count([list(b"cats"), list(b"document 1")])
        index.maximal_spans([list(b"document 12 about cats and dogs")])
    except RedraftError:
        pass
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


def _paths(data: object, prefix: tuple = ()) -> list[tuple]:
    if isinstance(data, dict):
        return [prefix, *[p for k, v in data.items() for p in _paths(v, (*prefix, k))]]
    if isinstance(data, list):
        return [prefix, *[p for i, v in enumerate(data) for p in _paths(v, (*prefix, i))]]
    return [prefix]


@FUZZ
@given(choice=st.integers(0, 10_000), value=json_values, reseal=st.booleans())
def test_fuzzed_header_fields_raise_only_redraft_errors(pristine, choice, value, reseal):
    root = _copy(pristine)
    data = json.loads((root / fmt.HEADER).read_text())
    paths = [p for p in _paths(data) if p]
    *parent, last = paths[choice % len(paths)]
    target = data
    for key in parent:
        target = target[key]
    target[last] = value
    if reseal:
        # An invalid header cannot be resealed; it must still be refused on load.
        with contextlib.suppress(ValueError):
            data["checksum"] = fmt.header_checksum(fmt.Header.model_validate({**data, "checksum": ""}))
    (root / fmt.HEADER).write_text(json.dumps(data))
    _load_everything(root)


@FUZZ
@given(
    name=st.sampled_from([fmt.UNIGRAM, *(f"shard-00000/{n}" for n in fmt.SHARD_FILES)]),
    offset=st.integers(0, 10_000),
    garbage=st.binary(min_size=1, max_size=64),
    truncate=st.booleans(),
)
def test_fuzzed_index_files_raise_only_redraft_errors(pristine, name, offset, garbage, truncate):
    root = _copy(pristine)
    path = root / name
    data = bytearray(path.read_bytes())
    if truncate:
        data = data[: offset % max(1, len(data))]
    else:
        at = offset % max(1, len(data))
        data[at : at + len(garbage)] = garbage
    path.write_bytes(bytes(data))
    _load_everything(root)


def test_fuzzed_index_files_are_also_caught_by_the_full_verify(pristine):
    root = _copy(pristine)
    tokens = root / "shard-00000" / fmt.TOKENS
    data = bytearray(tokens.read_bytes())
    data[5] ^= 0x20
    tokens.write_bytes(bytes(data))
    assert verify_index(root)  # the sha256 catches it; verify reports instead of raising
    shutil.rmtree(root.parent)


@FUZZ
@given(
    content=st.binary(max_size=400)
    | st.lists(json_values, max_size=5).map(lambda rows: "\n".join(json.dumps(r) for r in rows).encode())
)
def test_fuzzed_prompt_files_raise_only_redraft_errors(content):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.jsonl"
        path.write_bytes(content)
        try:
            for _, row in read_objects(path, "prompt", '{"prompt": "..."}'):
                assert isinstance(row["prompt"], str)
        except RedraftError:
            pass


@FUZZ
@given(content=st.binary(max_size=400))
def test_fuzzed_corpus_files_raise_only_redraft_errors(content):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.jsonl"
        path.write_bytes(content)
        try:
            for text, meta in iter_documents([path], CorpusStats()):
                assert isinstance(text, str) and isinstance(meta, dict)
        except RedraftError:
            pass


def test_deeply_nested_json_is_an_input_error_not_a_recursion_error(tmp_path):
    (tmp_path / "c.jsonl").write_bytes(b"[" * 100_000 + b"\n")
    with pytest.raises(RedraftError, match="nested too deeply"):
        list(iter_documents([tmp_path / "c.jsonl"], CorpusStats()))
    with pytest.raises(RedraftError, match="nested too deeply"):
        list(read_objects(tmp_path / "c.jsonl", "prompt", "{}"))
