"""The default verifier ships with the package: it loads with no training and no download, holds
its README figure on a fixed held-out slice, and a damaged copy is refused by name."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from redraft import cli
from redraft._manifest import MANIFEST, check_manifest
from redraft.critics import CriticOptions, make_critic
from redraft.critics.factuality import training as T
from redraft.critics.factuality import training_data as D
from redraft.critics.factuality import verifiers as V
from redraft.critics.factuality.kb import Passage
from redraft.errors import InputError, ModelNotFoundError

ROOT = Path(__file__).resolve().parents[2]
SLICE = Path(__file__).with_name("data") / "verifier_slice.jsonl"
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """A fresh install: nothing trained into the cache."""
    monkeypatch.setenv("REDRAFT_CACHE_DIR", str(tmp_path / "cache"))


def readme_slice_figure() -> float:
    """The balanced accuracy docs/factuality.md states for the fixed slice: the one place it is
    written (the README's headline table quotes it, checked below)."""
    found = re.search(
        r"verifier_slice\.jsonl`[^\n]*?balanced accuracy \*\*(0\.\d+)\*\*",
        (ROOT / "docs" / "factuality.md").read_text(),
    )
    assert found, "docs/factuality.md must state the shipped verifier's figure on the fixed slice"
    return float(found.group(1))


def test_the_readme_headline_quotes_the_factuality_page():
    figure = f"balanced accuracy **{readme_slice_figure():.3f}**"
    assert figure in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_shipped_verifier_holds_its_readme_figure_on_the_fixed_held_out_slice():
    rows = [json.loads(line) for line in SLICE.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 102 and {r["source"] for r in rows} == {
        "halueval-dialogue",
        "factual-summary-pairs",
        "wiki-vs-false-claims",
    }
    verifier = V.trained_verifier(V.SHIPPED)
    verdicts = verifier.verify([r["claim"] for r in rows], [[Passage(0, r["title"], r["body"])] for r in rows])
    # Each row is the window the verifier read when the slice was written: it must read it unchanged.
    assert [v.premise for v in verdicts] == [f"{r['title']}: {r['body']}" if r["title"] else r["body"] for r in rows]
    metrics = T.Metrics.of([r["label"] for r in rows], [int(v.p_supported >= 0.5) for v in verdicts])
    assert metrics.balanced_accuracy >= readme_slice_figure() - 0.02


def test_a_fresh_install_uses_the_shipped_verifier_everywhere(fresh_cache):
    from redraft.agents.testing import ScriptedLLM

    assert V.default_verifier_path() == V.SHIPPED
    assert CriticOptions().verifier == "default"
    critic = make_critic("factuality", ScriptedLLM([]), CriticOptions())
    assert critic.verifier.name == "default" and critic.verifier.window_words == D.WINDOW_WORDS
    # The manifest records how the shipped copy was made.
    provenance = check_manifest(V.SHIPPED).provenance
    assert provenance["command"].startswith("redraft verifier train")
    assert provenance["data"] == {d: T.DATA_PACKAGES[d].version for d in T.TRAINING_DATA}


def _damaged_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "shipped"
    shutil.copytree(V.SHIPPED, copy)
    monkeypatch.setattr(V, "SHIPPED", copy)
    return copy


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.write_bytes(f.read_bytes()[:-1000]), "is truncated or was changed"),
        (lambda f: f.write_bytes(f.read_bytes()[:100] + b"\x00" + f.read_bytes()[101:]), "does not match the sha256"),
        (lambda f: f.unlink(), "is missing, though MANIFEST.json lists it"),
    ],
    ids=["truncated", "one-byte-changed", "deleted"],
)
def test_a_damaged_shipped_verifier_is_refused_by_name(tmp_path, monkeypatch, fresh_cache, damage, message):
    copy = _damaged_copy(tmp_path, monkeypatch)
    damage(copy / "model.safetensors")
    with pytest.raises(InputError, match=rf"model\.safetensors .*{message}.*Reinstall redraft"):
        V.default_verifier()


@pytest.mark.parametrize("tamper", ["no-manifest", "extra-tokenizer-files"])
def test_a_cache_copy_loads_only_through_a_complete_manifest(tmp_path, monkeypatch, fresh_cache, tamper):
    """A copy in the cache overrides the shipped verifier. One without a manifest (here: labels
    swapped, so "Paris is the capital of France" scored 0.027), or with files its manifest does
    not list (two extra tokenizer files crashed with an unnamed IndexError), is refused by name."""
    cached = T.default_verifier_dir()
    shutil.copytree(V.SHIPPED, cached)
    if tamper == "no-manifest":
        (cached / MANIFEST).unlink()
        config = json.loads((cached / "config.json").read_text())
        config["id2label"] = {k: config["id2label"][str(1 - int(k))] for k in config["id2label"]}
        (cached / "config.json").write_text(json.dumps(config))
        message = r"has no MANIFEST\.json.*redraft verifier train"
    else:
        (cached / "vocab.txt").write_text("[PAD]\n")
        (cached / "special_tokens_map.json").write_text("{}")
        message = r"holds special_tokens_map\.json, vocab\.txt, which MANIFEST\.json does not list"
    assert V.default_verifier_path() == cached
    with pytest.raises(InputError, match=message):
        V.default_verifier()


def test_a_damaged_shipped_verifier_stops_the_cli_before_the_model_loads(tmp_path, monkeypatch, fresh_cache):
    copy = _damaged_copy(tmp_path, monkeypatch)
    (copy / "tokenizer.json").write_text("{}")
    result = runner.invoke(cli.app, ["run", "--prompt", "q", "--critic", "factuality", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2, result.output
    assert "tokenizer.json is" in result.output and "Reinstall redraft" in result.output


def test_a_missing_shipped_verifier_names_the_fix(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setattr(V, "SHIPPED", tmp_path / "nothing")
    with pytest.raises(ModelNotFoundError, match=r"Reinstall redraft.*redraft verifier train"):
        V.default_verifier()


def test_a_manifest_cannot_name_a_file_outside_its_directory(tmp_path):
    (tmp_path / MANIFEST).write_text(
        json.dumps({"name": "x", "files": {"../secret": {"bytes": 1, "sha256": "0" * 64}}})
    )
    with pytest.raises(InputError, match="not a plain file name"):
        check_manifest(tmp_path)


@pytest.fixture(scope="module")
def tiny_verifier(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "minilm-factuality-tiny"
    pool = D.length_balanced(list(itertools.islice(D.factual_summary_pairs(), 60)))
    T.train_verifier(out, pool[:32], pool[32:40], batch_size=8, max_length=48, window_words=12)
    return out, pool[40:56]


def test_export_halves_the_weights_and_keeps_the_verdicts(tiny_verifier, tmp_path):
    from safetensors import safe_open

    source, examples = tiny_verifier
    out = tmp_path / "exported"
    manifest = T.export_verifier(source, out)
    assert set(manifest.files) == {p.name for p in out.iterdir()} - {MANIFEST}
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}  # noqa: SIM118 (not iterable)
    assert (out / "model.safetensors").stat().st_size < 0.55 * (source / "model.safetensors").stat().st_size
    a, b = V.trained_verifier(source), V.trained_verifier(out)
    assert b.window_words == 12 and str(b.model.dtype) == "torch.float32"
    claims, evidence = [e.claim for e in examples], [e.passages() for e in examples]
    for x, y in zip(a.verify(claims, evidence), b.verify(claims, evidence), strict=True):
        assert abs(x.p_supported - y.p_supported) < 0.01
    # A shared copy is checked on load like the shipped one.
    (out / "config.json").write_text((out / "config.json").read_text() + " ")
    with pytest.raises(InputError, match=r"config\.json is .*redraft verifier export"):
        V.trained_verifier(out)


def test_cli_export_writes_a_checked_copy_and_refuses_a_non_verifier(tiny_verifier, tmp_path):
    source, _ = tiny_verifier
    result = runner.invoke(cli.app, ["verifier", "export", "--source", str(source), "--out", str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    assert check_manifest(tmp_path / "v").name == "minilm-factuality-tiny"
    result = runner.invoke(cli.app, ["verifier", "export", "--source", str(tmp_path), "--out", str(tmp_path / "w")])
    assert result.exit_code == 2 and "not a trained redraft verifier" in result.output
    assert not (tmp_path / "w").exists()


def test_a_fresh_install_runs_the_factuality_critic_from_the_cli(tmp_path, monkeypatch):
    """The issue's "done when": `redraft run --critic factuality --prompt ...` gives a verdict
    with evidence and no training step (a scripted draft, the shipped verifier, the real KB)."""
    from redraft.store import SQLStore
    from tests.graphs.helpers import scripted, use_llm

    # Nothing trained into the cache; the knowledge base's cache is kept (it takes a minute to build).
    monkeypatch.setattr(T, "default_verifier_dir", lambda: tmp_path / "no-trained-verifier")
    use_llm(monkeypatch, scripted(["Marie Curie was born in 1920 in Paris."], []))
    db = tmp_path / "run.db"
    args = ["run", "--critic", "factuality", "--max-rounds", "1", "--prompt", "Tell me about Marie Curie."]
    result = runner.invoke(cli.app, [*args, "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert 'Refuted: "Marie Curie was born in 1920 in Paris."' in result.output
    [run] = SQLStore(f"sqlite:///{db}").runs()
    [example] = SQLStore(f"sqlite:///{db}").examples(run.id)
    [critique] = example.rounds[0].critiques
    assert critique.critic == "factuality" and critique.passed is False
    assert critique.evidence[0]["evidence"][0]["title"] == "Marie Curie" and critique.evidence[0]["window"]


def test_verifier_train_hands_its_options_to_the_recipe(monkeypatch):
    """`redraft verifier train --epochs/--swaps` run the default recipe with those values (how
    the README's retrained variants are made); a negative swap count is refused before training."""
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(T, "dataset", lambda **kw: calls.append({"dataset": kw}) or ([], []))
    monkeypatch.setattr(T, "train_verifier", lambda *a, **kw: calls.append(kw) or T.Metrics(0.5, 0.5, 0.5, 0))
    assert runner.invoke(cli.app, ["verifier", "train"]).exit_code == 0
    assert runner.invoke(cli.app, ["verifier", "train", "--epochs", "3", "--swaps", "5000"]).exit_code == 0
    assert [c["dataset"]["swaps"] for c in calls[::2]] == [D.SWAPS, 5000]
    assert [c["epochs"] for c in calls[1::2]] == [2, 3]
    refused = runner.invoke(cli.app, ["verifier", "train", "--swaps", "-1"])
    assert refused.exit_code == 2 and "--swaps" in refused.output and len(calls) == 4
