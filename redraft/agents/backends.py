"""One way to load a model: a validated :class:`BackendSpec` and a registry of loaders.

The CLI, the experiment runner, the Ray actors and the tests all build their LLM through
:func:`load_llm`, so a backend added to :data:`BACKENDS` works everywhere at once, and an
invalid choice fails at validation, naming the field, before anything heavy loads.

==============  ======================================================================
backend         model
==============  ======================================================================
transformers    a named model (``embedded``: SmolLM2-135M, shipped in a package;
                ``qwen2.5-coder-1.5b``: optional, ``redraft data install qwen2.5-coder-1.5b``),
                a local directory, a ``.gguf`` file, or a hub id already in the local cache
vllm            a local directory or cached hub id, on an in-process ``vllm.LLM`` (GPU;
                ``pip install "redraft[vllm]"``)
openai          the served model name on an OpenAI-compatible server at ``base_url``
                (``vllm serve``, SGLang, llama.cpp's server, TGI, a hosted API)
==============  ======================================================================
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from redraft._packages import EMBEDDED, QWEN_CODER
from redraft.agents.base import LLM
from redraft.errors import InputError

Backend = Literal["transformers", "vllm", "openai"]
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
"""The one variable any spec may send as its key, to the server it names (the OpenAI client's own
default)."""
KEY_ENVS_ENV = "REDRAFT_API_KEY_ENVS"
"""``host=VAR`` pairs, comma-separated, in the user's own environment: each allows one further
variable as the API key, for that host alone (``api.together.xyz=TOGETHER_API_KEY``)."""
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAMED = (EMBEDDED, QWEN_CODER)
"""Models loaded by name from packaged GGUF files (:mod:`redraft.agents.embedded`)."""


class BackendSpec(BaseModel):
    """Which model to load and how. Experiment files carry these fields at their top level.

    Example:
        >>> BackendSpec(backend="openai", model="Qwen/Qwen2.5-7B-Instruct", base_url="http://127.0.0.1:8000/v1").backend
        'openai'
        >>> BackendSpec(backend="openai", model="m")
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for BackendSpec
        base_url
          Value error, backend 'openai' needs base_url, e.g. http://127.0.0.1:8000/v1 ...
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Backend = "transformers"
    model: str = Field(default=EMBEDDED, validate_default=True)
    """See the table above; the named models (``embedded``, ``qwen2.5-coder-1.5b``) run only on
    ``transformers``."""
    device: str = "cpu"
    """For ``transformers``: ``cpu``, ``cuda``, ``cuda:1``..."""
    base_url: str | None = Field(default=None, validate_default=True)
    """For ``openai``: the API root, e.g. ``http://127.0.0.1:8000/v1``."""
    api_key_env: str = DEFAULT_KEY_ENV
    """For ``openai``: the environment variable holding the API key. The key itself is read at
    load time and never stored (not in the spec, not in the database). Besides ``OPENAI_API_KEY``,
    a variable goes only to a host the user tied it to in their own ``$REDRAFT_API_KEY_ENVS``
    (``host=VAR`` pairs), since experiment files are shared and must not be able to send any
    variable to a server of their choosing."""
    max_concurrency: int = Field(default=32, ge=1)
    """For ``openai``: most requests in flight at once."""
    max_retries: int = Field(default=4, ge=0)
    """For ``openai``: retries of a failed request (connection errors, 429, 5xx), with backoff."""
    timeout_s: float = Field(default=120.0, gt=0)
    """For ``openai``: per-request timeout."""
    tokenizer: str | None = None
    """For ``openai``: a local tokenizer with the served model's chat template, for exact token
    counts (optional)."""
    max_model_len: int | None = Field(default=None, ge=16)
    """For ``vllm``: the context the engine allocates KV cache for (default: the model's own)."""
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    """For ``vllm``: the weights' compute type (``float32`` matches the transformers backend's numbers)."""
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    """For ``vllm`` on a GPU: the share of its memory the engine may take."""
    kv_cache_gib: float | None = Field(default=None, gt=0)
    """For ``vllm``: KV-cache size in GiB (on the CPU build, instead of ``VLLM_CPU_KVCACHE_SPACE``)."""
    enforce_eager: bool = False
    """For ``vllm``: run the model eagerly, without torch.compile or CUDA graphs. On the CPU build
    the embedded model's engine then starts in ~14 s instead of ~52 s and decodes as fast; on a
    GPU, graphs speed up decoding, so leave it off for long runs."""

    @model_validator(mode="after")
    def _engine_fields(self) -> BackendSpec:
        # By value, not by fields set: a stored spec (``--resume``) carries every field, unset ones as null.
        engine = {
            k for k in ("max_model_len", "gpu_memory_utilization", "kv_cache_gib") if getattr(self, k) is not None
        }
        if self.dtype != "auto":
            engine.add("dtype")
        if self.enforce_eager:
            engine.add("enforce_eager")
        if engine and self.backend != "vllm":
            raise ValueError(f"{', '.join(sorted(engine))} set the vLLM engine: they need backend 'vllm'")
        return self

    def engine_kwargs(self) -> dict[str, Any]:
        """The ``vllm.LLM`` arguments this spec sets (none it leaves at the engine's default).

        Example:
            >>> BackendSpec.model_construct(backend="vllm", max_model_len=2048, dtype="float32",
            ...                             gpu_memory_utilization=None, kv_cache_gib=2.0).engine_kwargs()
            {'max_model_len': 2048, 'dtype': 'float32', 'kv_cache_memory_bytes': 2147483648}
            >>> BackendSpec.model_construct(backend="vllm", dtype="auto", gpu_memory_utilization=None,
            ...                             kv_cache_gib=None, enforce_eager=True).engine_kwargs()
            {'enforce_eager': True}
        """
        kwargs: dict[str, Any] = {"max_model_len": self.max_model_len, "dtype": self.dtype}
        kwargs["gpu_memory_utilization"] = self.gpu_memory_utilization
        if self.kv_cache_gib is not None:
            kwargs["kv_cache_memory_bytes"] = int(self.kv_cache_gib * (1 << 30))
        if self.enforce_eager:
            kwargs["enforce_eager"] = True
        return {k: v for k, v in kwargs.items() if v is not None and v != "auto"}

    @field_validator("backend")
    @classmethod
    def _installed(cls, backend: str) -> str:
        if backend == "vllm" and importlib.util.find_spec("vllm") is None:
            raise ValueError("backend 'vllm' needs vLLM: pip install \"redraft[vllm]\" (on a CUDA machine)")
        return backend

    @model_validator(mode="after")
    def _key_tied_to_host(self) -> BackendSpec:
        # Experiment files are shared: one must not be able to send any variable of the user's
        # (STRIPE_API_KEY, say) to a server of its own choosing. Besides the default, a key goes
        # only to the host the user tied it to.
        if self.api_key_env == DEFAULT_KEY_ENV or self.backend != "openai" or self.base_url is None:
            return self
        host = (urlsplit(self.base_url).hostname or "").lower()
        if self.api_key_env not in allowed_keys().get(host, set()):
            raise ValueError(
                f"api_key_env {self.api_key_env!r} is not tied to {host!r}, so it is not sent there. If that server "
                f"should get it, say so in your own environment: export {KEY_ENVS_ENV}={host}={self.api_key_env} "
                f"(comma-separate more pairs); {DEFAULT_KEY_ENV} needs no pairing"
            )
        return self

    @field_validator("model")
    @classmethod
    def _model(cls, model: str, info: ValidationInfo) -> str:
        backend = info.data.get("backend", "transformers")
        if backend == "transformers" and model not in NAMED and _looks_like_a_name(model):
            close = difflib.get_close_matches(model.lower(), NAMED, n=1, cutoff=0.6)
            if close:
                raise ValueError(
                    f"no model is named {model!r}; did you mean {close[0]!r}? Named models: {', '.join(NAMED)}; "
                    "or give a local model directory, a .gguf file, or a hub id already in the Hugging Face cache"
                )
        if backend != "transformers" and model in NAMED:
            raise ValueError(
                f"backend {backend!r} needs model: a model path or hub id (vllm) or the served model name "
                f"(openai); {model!r} runs on backend 'transformers'"
            )
        return model

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, base_url: str | None, info: ValidationInfo) -> str | None:
        backend = info.data.get("backend", "transformers")
        if backend == "openai" and not base_url:
            raise ValueError("backend 'openai' needs base_url, e.g. http://127.0.0.1:8000/v1 for `vllm serve MODEL`")
        if backend != "openai" and base_url is not None:
            raise ValueError(f"base_url is only for backend 'openai', not {backend!r}")
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL like http://127.0.0.1:8000/v1, got {base_url!r}")
        return base_url

    def worker_env(self) -> dict[str, str]:
        """The environment a worker on another machine needs to load this backend as this process
        would: the API key of ``openai``, when this process has it (the key is passed to the worker
        process, never stored).

        Example:
            >>> BackendSpec().worker_env()
            {}
        """
        from redraft.agents.replies import PLAIN_HTTP_KEY_ENV

        env = {}
        if self.backend == "openai":  # the worker validates the spec, and so the pairing, again
            for name in (self.api_key_env, PLAIN_HTTP_KEY_ENV, KEY_ENVS_ENV):
                if name in os.environ:
                    env[name] = os.environ[name]
        return env

    def api_key(self) -> str:
        """The API key from :attr:`api_key_env`, read now; ``""`` (no key) when the default
        variable is unset. A variable named on purpose must be set: no other one stands in for it.

        Example:
            >>> spec = BackendSpec.model_construct(backend="openai", model="m", base_url="http://127.0.0.1:8000/v1",
            ...                                    api_key_env="NOT_SET_API_KEY")  # as if tied to that host
            >>> try:
            ...     spec.api_key()
            ... except InputError as exc:
            ...     print(str(exc).split(";")[0])
            api_key_env names NOT_SET_API_KEY, which is not set
        """
        key = os.environ.get(self.api_key_env)
        if key is None and self.api_key_env != DEFAULT_KEY_ENV:
            raise InputError(
                f"api_key_env names {self.api_key_env}, which is not set; export it, or drop api_key_env if the "
                "server needs no key"
            )
        return key or ""


def allowed_keys(value: str | None = None) -> dict[str, set[str]]:
    """Host → the key variables the user allows to be sent there, from ``$REDRAFT_API_KEY_ENVS``
    (or ``value``): comma-separated ``host=VAR`` pairs.

    Example:
        >>> allowed_keys("api.together.xyz=TOGETHER_API_KEY, 127.0.0.1=VLLM_API_KEY")
        {'api.together.xyz': {'TOGETHER_API_KEY'}, '127.0.0.1': {'VLLM_API_KEY'}}
        >>> allowed_keys("TOGETHER_API_KEY")
        Traceback (most recent call last):
        ...
        redraft.errors.InputError: REDRAFT_API_KEY_ENVS holds 'TOGETHER_API_KEY', not a host=VAR pair ...
    """
    raw = os.environ.get(KEY_ENVS_ENV, "") if value is None else value
    pairs: dict[str, set[str]] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        host, _, name = item.rpartition("=")
        if not host or not _ENV_NAME.fullmatch(name):
            raise InputError(
                f"{KEY_ENVS_ENV} holds {item[:80]!r}, not a host=VAR pair (a key is allowed per server, e.g. "
                f"{KEY_ENVS_ENV}=api.together.xyz=TOGETHER_API_KEY)"
            )
        pairs.setdefault(host.strip().strip("[]").lower(), set()).add(name)
    return pairs


def _looks_like_a_name(model: str) -> bool:
    """A bare word: not a path that exists, not a ``.gguf`` file, not an ``org/name`` hub id."""
    return "/" not in model and "\\" not in model and not model.endswith(".gguf") and not Path(model).exists()


def _transformers(spec: BackendSpec) -> LLM:
    if spec.model in NAMED:
        from redraft.agents.embedded import load_named

        return load_named(spec.model, device=spec.device)
    from redraft.agents.transformers_llm import TransformersLLM

    return TransformersLLM(spec.model, device=spec.device)


def _vllm(spec: BackendSpec) -> LLM:
    from redraft.agents.vllm_engine import VLLMEngineLLM

    return VLLMEngineLLM(spec.model, **spec.engine_kwargs())


def _openai(spec: BackendSpec) -> LLM:
    from redraft.agents.openai_compat import OpenAICompatLLM

    if spec.base_url is None:  # validated; keeps the type checker honest
        raise InputError("backend 'openai' needs base_url")
    return OpenAICompatLLM(
        spec.base_url,
        spec.model,
        api_key=spec.api_key(),
        max_concurrency=spec.max_concurrency,
        max_retries=spec.max_retries,
        timeout_s=spec.timeout_s,
        tokenizer=spec.tokenizer,
    )


BACKENDS: dict[str, Callable[[BackendSpec], LLM]] = {
    "transformers": _transformers,
    "vllm": _vllm,
    "openai": _openai,
}
"""Backend name → loader. Tests register a test double here instead of patching call sites."""


def load_llm(spec: BackendSpec) -> LLM:
    """The LLM ``spec`` names, from :data:`BACKENDS`.

    Example:
        >>> load_llm(BackendSpec(model="embedded")).model_id  # needs: seconds to load  # doctest: +SKIP
        'smollm2-135m-instruct'
    """
    return BACKENDS[spec.backend](spec)
