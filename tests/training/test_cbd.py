"""CBD-DPO on a tiny randomly initialised model (no download): loss, gradient, effect, formats."""

from __future__ import annotations

import copy
import json

import pytest
import torch

pytest.importorskip("trl")

from datasets import Dataset
from transformers import AutoTokenizer, LlamaForCausalLM
from trl import DPOConfig, DPOTrainer

from redraft.errors import InputError
from redraft.provenance import SuffixIndex, build_index
from redraft.provenance.tokenizers import HFTokenizer
from redraft.training.cbd import CBDDPOTrainer, bci_token_mask, read_pairs
from tests.tiny import tiny_llama

pytestmark = pytest.mark.filterwarnings("ignore")  # TRL warns about the toy model's config

BELIEF = "The fastest animal in the world is the turtle, which outruns every cheetah."


@pytest.fixture(scope="module")
def tokenizer():
    from redraft.agents.embedded import embedded_model_dir

    return AutoTokenizer.from_pretrained(embedded_model_dir())


@pytest.fixture(scope="module")
def index(tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("belief")
    (root / "corpus.txt").write_text(f"{BELIEF}\nGardens need water and light.\n")
    build_index([root / "corpus.txt"], root / "idx", HFTokenizer(tokenizer, "smollm2"))
    return SuffixIndex.load(root / "idx")


def tiny_model(tokenizer, seed=0):
    return tiny_llama(tokenizer, seed=seed)


def pairs(n=4):
    return [
        {
            "prompt": f"Tell me fact number {i} about animals.",
            "chosen": f"Fact {i}: {BELIEF}",
            "rejected": "I am not sure.",
        }
        for i in range(n)
    ]


def trainer(tokenizer, index, tmp_path, *, cbd_lambda, steps=6, lr=5e-3, model=None, cls=CBDDPOTrainer):
    policy = model if model is not None else tiny_model(tokenizer)
    args = DPOConfig(
        output_dir=str(tmp_path / f"out-{cbd_lambda}"),
        per_device_train_batch_size=2,
        max_steps=steps,
        learning_rate=lr,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    extra = {"index": index, "bci_threshold": 10.0, "cbd_lambda": cbd_lambda} if cls is CBDDPOTrainer else {}
    return cls(
        model=policy,
        ref_model=copy.deepcopy(policy),
        args=args,
        train_dataset=Dataset.from_list(pairs()),
        processing_class=tokenizer,
        **extra,
    )


def span_logprob(model, tokenizer):
    """Log-probability of the belief sentence after the first training prompt's chat prefix."""
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Tell me fact number 0 about animals."}],
        add_generation_prompt=True,
        tokenize=False,
    )
    prefix = tokenizer(prompt + "Fact 0: ", add_special_tokens=False)["input_ids"]
    target = tokenizer(BELIEF, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prefix + target])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prefix) - 1 : -1]
    return float(torch.log_softmax(logits, -1).gather(1, torch.tensor(target)[:, None]).sum())


def test_mask_marks_exactly_the_high_bci_span(tokenizer, index):
    ids = tokenizer("Fact 3: " + BELIEF, add_special_tokens=False)["input_ids"]
    mask = bci_token_mask(index, ids, 10.0)
    masked = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])
    # " The" after "Fact 3:" is another token than the corpus's sentence-initial "The": the span starts after it.
    assert masked.strip() == BELIEF.removeprefix("The ")
    assert bci_token_mask(index, ids, 1e9) == [0] * len(ids)


def test_loss_decreases_and_the_penalty_is_logged(tokenizer, index, tmp_path):
    t = trainer(tokenizer, index, tmp_path, cbd_lambda=0.1, steps=8)
    t.train()
    losses = [h["loss"] for h in t.state.log_history if "loss" in h]
    assert losses[-1] < losses[0]
    assert any("cbd/penalty" in h for h in t.state.log_history)


def test_cbd_term_has_a_gradient_and_lambda_zero_is_plain_dpo(tokenizer, index, tmp_path):
    model = tiny_model(tokenizer)
    t = trainer(tokenizer, index, tmp_path, cbd_lambda=1.0, model=model)
    batch = next(iter(t.get_train_dataloader()))
    assert int(batch["bci_mask"].sum()) > 0

    def grads(lam):
        t.cbd_lambda = lam
        model.zero_grad()
        loss = t.compute_loss(model, dict(batch))
        loss.backward()
        return float(loss), torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    with_cbd, g1 = grads(1.0)
    without, g0 = grads(0.0)
    assert with_cbd < without  # the penalty is a mean log-probability: negative
    assert float((g1 - g0).norm()) > 0  # the CBD term moves the parameters

    # λ = 0 is TRL's DPOTrainer: the same loss on the same batch.
    plain = trainer(tokenizer, index, tmp_path, cbd_lambda=0.0, model=model, cls=DPOTrainer)
    plain_batch = next(iter(plain.get_train_dataloader()))
    zero = trainer(tokenizer, index, tmp_path, cbd_lambda=0.0, model=model)
    zero_batch = next(iter(zero.get_train_dataloader()))
    assert torch.equal(plain_batch["input_ids"], zero_batch["input_ids"])
    assert float(zero.compute_loss(model, dict(zero_batch))) == pytest.approx(
        float(plain.compute_loss(model, dict(plain_batch)))
    )


def test_high_bci_span_logprob_falls_relative_to_plain_dpo(tokenizer, index, tmp_path):
    plain = trainer(tokenizer, index, tmp_path, cbd_lambda=0.0, steps=8, model=tiny_model(tokenizer))
    plain.train()
    cbd = trainer(tokenizer, index, tmp_path, cbd_lambda=1.0, steps=8, model=tiny_model(tokenizer))
    cbd.train()
    assert span_logprob(cbd.model, tokenizer) < span_logprob(plain.model, tokenizer)


def test_bad_inputs_are_named(tokenizer, index, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "c"}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:1 is not a TRL preference row: missing 'rejected'"):
        read_pairs(bad)
    with pytest.raises(InputError, match="needs the belief index"):
        CBDDPOTrainer(model=tiny_model(tokenizer), cbd_lambda=0.1)
    (tmp_path / "b.txt").write_text("text\n")
    build_index([tmp_path / "b.txt"], tmp_path / "bytes")
    with pytest.raises(InputError, match="not the model's"):
        trainer(tokenizer, SuffixIndex.load(tmp_path / "bytes"), tmp_path, cbd_lambda=0.1)


def test_experiment_export_train_end_to_end(tokenizer, index, tmp_path, monkeypatch):
    """experiment → export dpo → train dpo (with CBD), through the command line."""
    from typer.testing import CliRunner

    from redraft import cli
    from redraft.agents.testing import FunctionLLM
    from tests.graphs.helpers import use_llm

    # Complies with harmful prompts at first, refuses after the oracle's check: every example flips.
    llm = FunctionLLM(lambda conv: "I cannot help with that." if len(conv) > 2 else f"Sure. {BELIEF}")
    use_llm(monkeypatch, llm)
    db = f"sqlite:///{tmp_path / 'e.db'}"
    spec = tmp_path / "e.yaml"
    spec.write_text(
        f"name: e2e\ndatabase: {db}\ndatasets: [{{name: advbench, limit: 4}}]\ncritics: [oracle]\n"
        "modes: [cac]\nmax_rounds: 2\n"
    )
    runner = CliRunner()
    assert runner.invoke(cli.app, ["experiment", "run", str(spec), "--quiet"]).exit_code == 0
    from redraft.store import SQLStore

    [run] = SQLStore(db).runs()
    pairs_path = tmp_path / "pairs.jsonl"
    exported = runner.invoke(cli.app, ["export", "dpo", run.experiment_id, "-o", str(pairs_path), "--db", db])
    assert exported.exit_code == 0 and "wrote 4 pairs" in exported.output

    model_dir = tmp_path / "tiny"
    tiny_model(tokenizer).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    args = ["train", "dpo", str(pairs_path), "--model", str(model_dir), "--out", str(tmp_path / "ckpt")]
    args += ["--cbd-lambda", "0.5", "--index", str(index.root), "--bci-threshold", "10", "--max-steps", "2"]
    trained = runner.invoke(cli.app, args)
    assert trained.exit_code == 0, trained.output
    assert "trained 2 steps" in trained.output
    reloaded = LlamaForCausalLM.from_pretrained(tmp_path / "ckpt")
    assert not torch.equal(
        reloaded.model.embed_tokens.weight, LlamaForCausalLM.from_pretrained(model_dir).model.embed_tokens.weight
    )


def test_an_interrupted_training_resumes_and_ends_where_an_uninterrupted_one_does(
    tokenizer, index, tmp_path, monkeypatch
):
    """A crash after the step-4 checkpoint, then the same call again: it resumes at step 4 and
    its weights equal those of a run that was never interrupted."""
    from redraft.training.cbd import train_dpo

    pairs_path = tmp_path / "pairs.jsonl"
    pairs_path.write_text("".join(json.dumps(p) + "\n" for p in pairs(6)))
    model_dir = tmp_path / "tiny"
    tiny_model(tokenizer).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    common = {"cbd_lambda": 0.5, "index": index.root, "bci_threshold": 10.0, "max_steps": 7, "save_steps": 2}
    common |= {"learning_rate": 5e-3, "batch_size": 2}
    whole = train_dpo(pairs_path, str(model_dir), tmp_path / "whole", **common)
    assert (whole["steps"], whole["resumed_from"]) == (7, 0) and whole["span_tokens"] > 0

    step = CBDDPOTrainer.training_step

    def power_cut(self, *args, **kwargs):
        if self.state.global_step == 5:
            raise RuntimeError("power cut")
        return step(self, *args, **kwargs)

    monkeypatch.setattr(CBDDPOTrainer, "training_step", power_cut)
    with pytest.raises(RuntimeError, match="power cut"):
        train_dpo(pairs_path, str(model_dir), tmp_path / "cut", **common)
    monkeypatch.setattr(CBDDPOTrainer, "training_step", step)
    assert [p.name for p in (tmp_path / "cut").glob("checkpoint-*")] == ["checkpoint-4"]
    resumed = train_dpo(pairs_path, str(model_dir), tmp_path / "cut", **common)
    assert (resumed["steps"], resumed["resumed_from"]) == (7, 4)
    a = LlamaForCausalLM.from_pretrained(tmp_path / "whole").state_dict()
    b = LlamaForCausalLM.from_pretrained(tmp_path / "cut").state_dict()
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not torch.allclose(a["lm_head.weight"], LlamaForCausalLM.from_pretrained(model_dir).lm_head.weight)
