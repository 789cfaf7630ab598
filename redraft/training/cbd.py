"""CBD-DPO: TRL's ``DPOTrainer`` plus a differentiable penalty on high-BCI continuations.

TraceAlign's Contrastive Belief Deconfliction term discourages the policy from reproducing
verbatim, high-BCI spans of a belief corpus. Here it is a real loss term:

    loss = DPO loss + λ · mean log π(token) over tokens inside high-BCI spans of chosen and rejected

Minimizing it pushes the policy's log-probability of those tokens down, with a gradient through
the same forward pass DPO already runs (the term reads the per-token log-probabilities of that
pass; no extra forward). The spans are found once, when the dataset is prepared: the suffix index
finds each completion's maximal verbatim spans, and spans with BCI above the threshold become a
token mask. With λ = 0 the trainer is plain TRL DPO.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from redraft._extras import require
from redraft._hf import from_pretrained
from redraft.errors import InputError
from redraft.provenance.index import SuffixIndex

require("trl", "train")

from trl.trainer.dpo_config import DPOConfig  # noqa: E402  # after the extra check, for its message
from trl.trainer.dpo_trainer import DataCollatorForPreference, DPOTrainer  # noqa: E402

MASK_COLUMNS = ("chosen_bci_mask", "rejected_bci_mask")


def bci_token_mask(
    index: SuffixIndex, ids: Sequence[int], threshold: float, *, min_len: int = 2, alpha: float = 1.0
) -> list[int]:
    """1 for every token inside a maximal verbatim span of ``ids`` whose BCI exceeds ``threshold``.

    Token ids outside the index vocabulary (special tokens) break spans and are never masked.
    """
    mask = [0] * len(ids)
    usable = [t if 0 <= t < index.vocab_size and t != index.header.separator else -1 for t in ids]
    # Query the runs between unusable tokens separately: the index refuses ids it does not have.
    start = 0
    while start < len(usable):
        while start < len(usable) and usable[start] < 0:
            start += 1
        end = start
        while end < len(usable) and usable[end] >= 0:
            end += 1
        if end > start:
            for span in index.maximal_spans([usable[start:end]], min_len=min_len, alpha=alpha, max_docs=1)[0]:
                if span.bci > threshold:
                    for i in range(start + span.start, start + span.end):
                        mask[i] = 1
        start = end
    return mask


@dataclass
class CBDCollator(DataCollatorForPreference):
    """TRL's preference collator plus ``bci_mask``: per token of ``input_ids``, 1 inside a
    high-BCI span of the completion (the prompt is never masked)."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        output = super().torch_call(examples)
        masks = [[0] * len(e["prompt_ids"]) + list(e["chosen_bci_mask"]) for e in examples]
        masks += [[0] * len(e["prompt_ids"]) + list(e["rejected_bci_mask"]) for e in examples]
        if self.max_length is not None:
            sl = slice(None, self.max_length) if self.truncation_mode == "keep_start" else slice(-self.max_length, None)
            masks = [m[sl] for m in masks]
        width = output["input_ids"].shape[1]
        bci = torch.zeros((len(masks), width), dtype=torch.long)
        for i, m in enumerate(masks):
            bci[i, : len(m)] = torch.tensor(m, dtype=torch.long)
        output["bci_mask"] = bci
        return output


class CBDDPOTrainer(DPOTrainer):
    """``DPOTrainer`` with the CBD penalty.

    Args:
        index: the belief corpus, built with the model's tokenizer.
        bci_threshold: spans with BCI above this (nats) are penalized.
        cbd_lambda: weight of the penalty; 0 gives plain DPO.
        min_span: shortest span (tokens) considered.
        *args, **kwargs: ``DPOTrainer``'s (model, ref_model, args, train_dataset, processing_class...).

    Example:
        >>> trainer = CBDDPOTrainer(model=model, args=DPOConfig(output_dir="ckpt"), train_dataset=pairs,
        ...                         processing_class=tokenizer, index=index, bci_threshold=20.0,
        ...                         cbd_lambda=0.01)  # needs: redraft[train], minutes  # doctest: +SKIP
    """

    def __init__(
        self,
        *args: Any,
        index: SuffixIndex | None = None,
        bci_threshold: float = 20.0,
        cbd_lambda: float = 0.0,
        min_span: int = 2,
        **kwargs: Any,
    ) -> None:
        if cbd_lambda < 0:
            raise InputError(f"cbd_lambda must be >= 0, got {cbd_lambda}")
        if cbd_lambda > 0 and index is None:
            raise InputError("a CBD penalty (cbd_lambda > 0) needs the belief index: pass index=SuffixIndex.load(...)")
        self.cbd_index, self.cbd_threshold, self.cbd_lambda, self.cbd_min_span = (
            index,
            bci_threshold,
            cbd_lambda,
            min_span,
        )
        self._cbd_logps: torch.Tensor | None = None
        self._cbd_capture = False
        if cbd_lambda > 0 and kwargs.get("data_collator") is None:
            tok = kwargs.get("processing_class")
            if tok is None:
                raise InputError("CBDDPOTrainer needs processing_class=<the model's tokenizer>")
            _check_tokenizer(index, tok)  # type: ignore[arg-type]
            config: DPOConfig = kwargs["args"]
            kwargs["data_collator"] = CBDCollator(
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                max_length=config.max_length,
                truncation_mode=config.truncation_mode,
                pad_to_multiple_of=config.pad_to_multiple_of,  # type: ignore[arg-type]
            )
        super().__init__(*args, **kwargs)
        if cbd_lambda > 0:
            # The policy's forward already computes per-token log-probabilities for DPO; a hook
            # keeps them (with their graph) for the penalty instead of running a second forward.
            # The hook is a plain function holding the trainer weakly: a model deep-copied later
            # (e.g. as a reference model) must not drag the trainer and its memory-mapped index along.
            this = weakref.ref(self)

            def capture(module: torch.nn.Module, args: Any, output: Any) -> None:
                trainer = this()
                if trainer is not None and trainer._cbd_capture and trainer._cbd_logps is None:
                    trainer._cbd_logps = getattr(output, "log_probs", None)

            self.model.register_forward_hook(capture)  # type: ignore[union-attr]

    def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
        dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        if self.cbd_lambda == 0:
            return dataset
        index, threshold, min_len = self.cbd_index, self.cbd_threshold, self.cbd_min_span

        def add_masks(example: dict[str, Any]) -> dict[str, Any]:
            return {
                "chosen_bci_mask": bci_token_mask(index, example["chosen_ids"], threshold, min_len=min_len),  # type: ignore[arg-type]
                "rejected_bci_mask": bci_token_mask(index, example["rejected_ids"], threshold, min_len=min_len),  # type: ignore[arg-type]
            }

        return dataset.map(add_masks, desc=f"Finding high-BCI spans in {dataset_name}")

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()  # type: ignore[no-untyped-call]
        if self.cbd_lambda > 0 and self._signature_columns is not None:
            self._signature_columns = [*self._signature_columns, *MASK_COLUMNS]

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        mask = inputs.pop("bci_mask", None)
        if self.cbd_lambda == 0 or mask is None:
            return super()._compute_loss(model, inputs, return_outputs)  # type: ignore[no-untyped-call]
        self._cbd_logps, self._cbd_capture = None, True
        try:
            result = super()._compute_loss(model, inputs, return_outputs)  # type: ignore[no-untyped-call]
        finally:
            self._cbd_capture = False
        logps, self._cbd_logps = self._cbd_logps, None
        if logps is None:
            raise RuntimeError("the policy forward returned no per-token log-probabilities; is TRL's fused head on?")
        loss = result[0] if return_outputs else result
        penalty = self.cbd_penalty(logps, mask)
        loss = loss + self.cbd_lambda * penalty
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["cbd/penalty"].append(float(penalty.detach()))
        self._metrics[mode]["cbd/span_tokens"].append(float(mask.sum()))
        return (loss, result[1]) if return_outputs else loss

    @staticmethod
    def cbd_penalty(logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean log-probability of masked tokens. ``logps[:, j]`` scores token ``j + 1`` (the
        fused head's shifted layout), so the mask is shifted the same way. 0 without masked tokens."""
        shifted = mask[:, 1:][:, -logps.shape[1] :].to(logps.device, logps.dtype)
        n = shifted.sum()
        return (logps * shifted).sum() / n.clamp(min=1.0)


def _check_tokenizer(index: SuffixIndex, tokenizer: Any) -> None:
    from redraft.provenance.tokenizers import HFTokenizer

    index.check_tokenizer(HFTokenizer(tokenizer).info, "the model's")


REQUIRED = ("prompt", "chosen", "rejected")


def read_pairs(path: Path) -> list[dict[str, Any]]:
    """Preference rows from a JSONL export, checked against TRL's format (the error names the
    line and the missing keys)."""
    from redraft._jsonl import read_objects

    out: list[dict[str, Any]] = []
    for n, row in read_objects(path, None, '{"prompt": ..., "chosen": ..., "rejected": ...} (`redraft export dpo`)'):
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise InputError(
                f"{path}:{n} is not a TRL preference row: missing {', '.join(repr(k) for k in missing)}. "
                "Rows need prompt, chosen and rejected (`redraft export dpo` writes them)."
            )
        out.append({k: row[k] for k in REQUIRED})  # provenance and other extras stay out of training
    if not out:
        raise InputError(f"{path} has no preference rows")
    return out


def train_dpo(
    pairs: Path,
    model: str,
    out: Path,
    *,
    cbd_lambda: float = 0.0,
    index: Path | None = None,
    bci_threshold: float = 20.0,
    beta: float = 0.1,
    learning_rate: float = 5e-6,
    epochs: float = 1.0,
    batch_size: int = 2,
    max_steps: int = -1,
    device: str = "cpu",
    save_steps: int = 50,
    seed: int = 42,
) -> dict[str, float]:
    """Train ``model`` (a local directory) with DPO (+ CBD when ``cbd_lambda > 0``) on exported
    pairs, save it to ``out``, and return the final training metrics: ``train_loss``, ``steps``,
    ``resumed_from`` (the step a previous, interrupted call had saved; 0 for a fresh start) and,
    with CBD, ``span_tokens`` (tokens inside high-BCI spans, summed over steps).

    Every ``save_steps`` steps a checkpoint (weights, optimizer, scheduler, RNG and data order)
    replaces the previous one under ``out``; calling again with the same arguments resumes from
    it, and ends where an uninterrupted run would.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint

    rows = read_pairs(pairs)
    if cbd_lambda > 0 and index is None:
        raise InputError("--cbd-lambda needs --index (a belief index built with the model's tokenizer)")
    path = Path(model)
    if not path.is_dir():
        raise InputError(f"{model} is not a model directory; pass a local directory with config.json and weights")
    tokenizer = from_pretrained(AutoTokenizer, path)
    policy = from_pretrained(AutoModelForCausalLM, path)
    reference = from_pretrained(AutoModelForCausalLM, path)
    on_accelerator = device != "cpu"
    config = DPOConfig(
        output_dir=str(out),
        beta=beta,
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        report_to=[],
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=1,
        logging_steps=1,
        use_cpu=not on_accelerator,
        seed=seed,
        # TRL defaults to bf16 autocast and activation checkpointing. On a CPU, bf16 matmuls are
        # emulated unless the chip has bf16 units, and recomputing activations spends the scarce
        # resource (compute) to save the plentiful one (memory): together they made a SmolLM2-135M
        # step ~38 s instead of ~4 s on 2 cores. On accelerators TRL's defaults stand.
        bf16=on_accelerator and DPOConfig.bf16,
        gradient_checkpointing=on_accelerator and DPOConfig.gradient_checkpointing,
    )
    trainer = CBDDPOTrainer(
        model=policy,
        ref_model=reference,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        index=SuffixIndex.load(index) if index is not None else None,
        bci_threshold=bci_threshold,
        cbd_lambda=cbd_lambda,
    )
    last = get_last_checkpoint(str(out)) if out.is_dir() else None  # type: ignore[no-untyped-call]
    result = trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    spans = [float(h["cbd/span_tokens"]) for h in trainer.state.log_history if "cbd/span_tokens" in h]
    metrics = {
        "train_loss": float(result.training_loss),
        "steps": float(result.global_step),
        "resumed_from": float(last.rsplit("-", 1)[1]) if last else 0.0,
    }
    if cbd_lambda > 0:
        metrics["span_tokens"] = sum(spans)
    return metrics
