"""Catalogue: model and tokenizer directories that ask for custom code are refused, and nothing
from them runs, whichever way they are named (model path, index header, verifier, training)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from redraft import _hf, cli
from redraft.agents.transformers_llm import TransformersLLM
from redraft.errors import InputError
from redraft.provenance import build_index
from redraft.provenance.tokenizers import load_tokenizer

runner = CliRunner(env={"COLUMNS": "200"})
EVIL = """
import pathlib
pathlib.Path(__file__).with_name("OWNED").write_text("custom code ran")
from transformers import LlamaConfig as _Base
class EvilConfig(_Base):
    model_type = "llama"
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A real (tiny) Llama directory with the embedded tokenizer, saved by transformers."""
    from transformers import AutoTokenizer

    from redraft.agents.embedded import embedded_model_dir
    from tests.tiny import tiny_llama

    d = tmp_path_factory.mktemp("model")
    tok = AutoTokenizer.from_pretrained(embedded_model_dir(), local_files_only=True)
    tiny_llama(tok).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _poison(src: Path, dst: Path, config: str) -> Path:
    shutil.copytree(src, dst)
    (dst / "evil.py").write_text(EVIL)
    data = json.loads((dst / config).read_text())
    data["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoTokenizer": ["evil.EvilConfig", None]}
    (dst / config).write_text(json.dumps(data))
    return dst


def test_the_clean_directory_loads(model_dir):
    llm = TransformersLLM(str(model_dir))
    assert llm.context_length == 256


@pytest.mark.parametrize("config", ["config.json", "tokenizer_config.json"])
def test_a_model_directory_asking_for_custom_code_is_refused(model_dir, tmp_path, config):
    bad = _poison(model_dir, tmp_path / "bad", config)
    with pytest.raises(InputError, match=f"asks to run custom code \\(auto_map in {config}\\)"):
        TransformersLLM(str(bad))
    result = runner.invoke(cli.app, ["run", "--model", str(bad), "--prompt", "hi", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "custom code" in result.output
    assert not (bad / "OWNED").exists()


def test_without_the_precheck_transformers_still_refuses_because_trust_is_false(model_dir, tmp_path, monkeypatch):
    """Defence in depth: trust_remote_code=False is passed explicitly, so transformers raises
    instead of prompting, and no code runs even if the directory check were bypassed."""
    bad = _poison(model_dir, tmp_path / "bad", "config.json")
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "model_type": "evil-arch"}))  # no built-in class
    monkeypatch.setattr(_hf, "refuse_custom_code", lambda source: None)
    from transformers import AutoConfig

    with pytest.raises(InputError, match="needs custom code to load"):
        _hf.from_pretrained(AutoConfig, bad)
    assert not (bad / "OWNED").exists()


def test_an_index_header_naming_a_custom_code_tokenizer_is_refused(model_dir, tmp_path):
    tok_dir = tmp_path / "tok"
    shutil.copytree(model_dir, tok_dir)
    (tmp_path / "c.jsonl").write_text('{"text": "the cat sat on the mat"}\n')
    build_index([tmp_path / "c.jsonl"], tmp_path / "idx", load_tokenizer(str(tok_dir)))
    _poison(model_dir, tmp_path / "swap", "tokenizer_config.json")
    shutil.rmtree(tok_dir)
    (tmp_path / "swap").rename(tok_dir)  # the directory the header names now asks for custom code
    result = runner.invoke(cli.app, ["index", "query", str(tmp_path / "idx"), "the cat sat"])
    assert result.exit_code == 2 and "custom code" in result.output
    assert not (tok_dir / "OWNED").exists()


def test_an_nli_verifier_directory_asking_for_custom_code_is_refused(model_dir, tmp_path):
    from redraft.critics.factuality.verifiers import NLIVerifier

    bad = _poison(model_dir, tmp_path / "bad", "config.json")
    with pytest.raises(InputError, match="custom code"):
        NLIVerifier(str(bad))
    assert not (bad / "OWNED").exists()


def test_every_from_pretrained_in_redraft_goes_through_the_guard():
    root = Path(_hf.__file__).parent
    offenders = [
        f"{p.relative_to(root)}:{n}"
        for p in root.rglob("*.py")
        if p.name != "_hf.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if ".from_pretrained(" in line
    ]
    assert offenders == []


def test_a_model_config_nested_too_deeply_is_named_not_a_recursion_error(model_dir, tmp_path):
    bad = tmp_path / "deep"
    shutil.copytree(model_dir, bad)
    (bad / "config.json").write_text('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(InputError, match=r"config\.json is JSON nested too deeply"):
        TransformersLLM(str(bad))
    result = runner.invoke(cli.app, ["run", "--model", str(bad), "--prompt", "hi", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "nested too deeply" in " ".join(result.output.split())
