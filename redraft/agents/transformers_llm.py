"""A local Hugging Face ``transformers`` backend: directory, GGUF file, or hub id in the local cache.

Nothing is downloaded: hub ids resolve with ``local_files_only=True``, so a user with a populated
cache (``huggingface-cli download ...`` done earlier) can point redraft at any chat model.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from redraft._hf import from_pretrained
from redraft.agents.base import LLM, Completion, Conversation, FinishReason, SamplingParams, chat_messages
from redraft.agents.tracing import token_sink
from redraft.errors import InputError, ModelNotFoundError

if TYPE_CHECKING:
    from redraft.provenance.tokenizers import HFTokenizer

_EMBEDDED_HINT = (
    "Use a local model directory, a .gguf file, or a hub id already in the local Hugging Face cache; "
    "or omit the model to use the embedded default (redraft.agents.default_llm(), SmolLM2-135M-Instruct)."
)


class TextPieces:
    """A transformers streamer for a whole batch: as each step's tokens arrive, it sends every
    row's newly decoded text to ``sink(row, piece)``. A row ends at end-of-sequence or at a stop
    string (which is never sent); text that could be the start of a stop string, or an incomplete
    UTF-8 character, is held back until the next token decides it. Joined, a row's pieces are its
    completion's text up to surrounding whitespace."""

    def __init__(self, tokenizer: Any, eos: set[int], stop: Sequence[str], sink: Any) -> None:
        self.tokenizer, self.eos, self.stop, self.sink = tokenizer, eos, tuple(stop), sink
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.prompt_seen = False
        self.ids: list[list[int]] = []
        self.sent: list[int] = []
        self.done: list[bool] = []

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate() first hands over the prompt
            self.prompt_seen = True
            rows = value.shape[0] if value.dim() > 1 else 1
            self.ids, self.sent, self.done = [[] for _ in range(rows)], [0] * rows, [False] * rows
            return
        for row, tok in enumerate(value.reshape(-1).tolist()):
            if self.done[row]:
                continue
            if tok in self.eos:
                self._flush(row)
                continue
            self.ids[row].append(int(tok))
            self._send(row, final=False)

    def end(self) -> None:
        for row in range(len(self.ids)):
            if not self.done[row]:
                self._flush(row)

    def _flush(self, row: int) -> None:
        self._send(row, final=True)
        self.done[row] = True

    def _send(self, row: int, *, final: bool) -> None:
        text = str(self.tokenizer.decode(self.ids[row], skip_special_tokens=True))
        cuts = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        if cuts:
            text, final = text[: min(cuts)], True
            self.done[row] = True
        end = len(text) if final else max(self.sent[row], len(text) - self.hold)
        if not final and text.endswith("\ufffd"):  # half of a multi-byte character
            end = min(end, len(text) - 1)
        if not text[: self.sent[row]].strip():  # the completion's text is stripped: skip leading whitespace
            self.sent[row] = len(text[:end]) - len(text[:end].lstrip())
        if end > self.sent[row]:
            self.sink(row, text[self.sent[row] : end])
            self.sent[row] = end


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or model.endswith(".gguf") or Path(model).exists()


class TransformersLLM(LLM):
    """Batched chat generation with ``transformers`` on CPU or CUDA.

    Conversations are rendered with the model's own chat template, left-padded and generated
    in one ``model.generate`` call per batch.

    Args:
        model: a directory with ``config.json``, a ``.gguf`` file, or a hub id in the local cache.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; the same code runs on each.
        dtype: weights dtype; float32 by default on CPU, bfloat16 on CUDA.
        model_id: name recorded in runs; defaults to ``model``.

    Example:
        >>> llm = TransformersLLM("HuggingFaceTB/SmolLM2-360M-Instruct")  # needs: it in the HF cache  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        model_id: str | None = None,
    ) -> None:
        name = str(model)
        path = Path(name).expanduser()
        gguf_file: str | None = None
        if path.suffix == ".gguf":
            if not path.is_file():
                raise ModelNotFoundError(f"GGUF file {path} does not exist. {_EMBEDDED_HINT}")
            source: str | Path = path.parent
            gguf_file = path.name
        elif path.is_dir():
            source = path
        elif _looks_like_path(name):
            raise ModelNotFoundError(f"model path {path} does not exist. {_EMBEDDED_HINT}")
        else:
            source = name
        device = torch.device(device)
        if dtype is None:
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        try:
            tokenizer = from_pretrained(AutoTokenizer, source, gguf_file=gguf_file)
            hf_model: PreTrainedModel = from_pretrained(AutoModelForCausalLM, source, gguf_file=gguf_file, dtype=dtype)
        except OSError as exc:
            raise ModelNotFoundError(
                f"could not load model {name!r} offline ({exc.__class__.__name__}: {exc}). {_EMBEDDED_HINT}"
            ) from exc
        hf_model.to(device)  # type: ignore[arg-type]  # transformers' wrapper hides nn.Module.to's signature
        self._init(hf_model, tokenizer, model_id or name)

    @classmethod
    def from_model(
        cls, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, model_id: str
    ) -> TransformersLLM:
        """Wrap an already-loaded model and tokenizer (no copy is made)."""
        self = cls.__new__(cls)
        self._init(model, tokenizer, model_id)
        return self

    def _init(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, model_id: str) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise InputError(
                f"model {model_id!r} has no chat template, so it is a base model, not a chat model. "
                "Point redraft at an instruction-tuned model."
            )
        tokenizer = copy.copy(tokenizer)
        # Left padding keeps every prompt flush against its first generated token in a batch.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.eval()  # type: ignore[no-untyped-call]  # no dropout at generation time
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self._lock = threading.Lock()
        eos = model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos]
        self._eos = {int(e) for e in [*eos_ids, tokenizer.eos_token_id] if e is not None}

    @property
    def device(self) -> torch.device:
        return torch.device(self.model.device)

    @property
    def context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    @functools.cached_property
    def hf_tokenizer(self) -> HFTokenizer:
        """The tokenizer with its vocabulary hash (computed once), for index compatibility checks."""
        from redraft.provenance.tokenizers import HFTokenizer

        return HFTokenizer(self.tokenizer, self.model_id)

    def render(self, conversation: Conversation) -> str:
        """The prompt string the model sees: the conversation through the chat template."""
        messages: list[dict[str, str]] = chat_messages(conversation)
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return str(text)

    def count_tokens(self, conversation: Conversation) -> int:
        return len(self.tokenizer(self.render(conversation), add_special_tokens=False)["input_ids"])

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        *,
        logits_processors: Sequence[Any] = (),
    ) -> list[Completion]:
        if not conversations:
            return []
        texts = [self.render(c) for c in conversations]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        lengths = enc["attention_mask"].sum(dim=1).tolist()  # (B,)
        limit = self.context_length - params.max_new_tokens
        for i, n in enumerate(lengths):
            if n > limit:
                raise InputError(
                    f"conversation {i} takes {n} tokens but {self.model_id!r} accepts at most {limit} "
                    f"prompt tokens ({self.context_length} context - {params.max_new_tokens} max_new_tokens). "
                    "Shorten the prompt or lower max_new_tokens."
                )
        config = copy.deepcopy(self.model.generation_config)
        config.max_new_tokens = params.max_new_tokens
        config.pad_token_id = self.tokenizer.pad_token_id
        config.do_sample = params.temperature > 0
        if config.do_sample:
            config.temperature, config.top_p = params.temperature, params.top_p
        else:
            # Unset sampling knobs so transformers does not warn that they are ignored.
            config.temperature = config.top_p = config.top_k = None
        kwargs: dict[str, Any] = {}
        if params.stop:
            config.stop_strings = list(params.stop)
            kwargs["tokenizer"] = self.tokenizer
        sink = token_sink()
        if sink is not None:  # a stream or tracer listens inside a graph: send text as it is decoded
            kwargs["streamer"] = TextPieces(self.tokenizer, self._eos, params.stop, sink)
        for processor in logits_processors:
            bind = getattr(processor, "bind", None)  # processors that depend on token ids check them
            if bind is not None:
                bind(self.hf_tokenizer)
        input_ids = enc["input_ids"].to(self.device)  # (B, T)
        attention_mask = enc["attention_mask"].to(self.device)  # (B, T)
        with self._lock, torch.inference_mode():
            if config.do_sample and params.seed is not None:
                torch.manual_seed(params.seed)
            out = self.model.generate(  # type: ignore[operator]  # nn.Module.__getattr__ confuses mypy
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=config,
                logits_processor=LogitsProcessorList(logits_processors),
                **kwargs,
            )  # (B, T + new)
        new = out[:, input_ids.shape[1] :].tolist()
        return [self._completion(ids, params, int(n)) for ids, n in zip(new, lengths, strict=True)]

    def label_probs(self, conversations: Sequence[Conversation], labels: Sequence[str]) -> list[dict[str, float]]:
        """One forward pass per batch: the softmax at the reply's first position, summed over the
        token ids that spell each label ("Yes", " Yes", "yes", ...)."""
        if not conversations:
            return []
        ids = {label: sorted(self._label_ids(label)) for label in labels}
        texts = [self.render(c) for c in conversations]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with self._lock, torch.inference_mode():
            out = self.model(
                input_ids=enc["input_ids"].to(self.device),
                attention_mask=enc["attention_mask"].to(self.device),
                logits_to_keep=1,  # only the next-token distribution: (B, 1, V), not (B, T, V)
            )
        # Left padding: the last position holds every sequence's next-token distribution.
        probs = torch.softmax(out.logits[:, -1, :].float(), dim=-1).cpu()  # (B, V)
        return [{label: float(row[ids[label]].sum()) for label in labels} for row in probs]

    @functools.lru_cache(maxsize=64)  # noqa: B019  # a model lives as long as its tokenizer
    def _label_ids(self, label: str) -> frozenset[int]:
        """First-token ids of the spellings of ``label``, kept only when that token is the whole
        label (a token "N" is not an answer "No")."""
        found = set()
        for variant in {label, label.lower(), label.capitalize(), label.upper()}:
            for text in (variant, " " + variant):
                ids = self.tokenizer.encode(text, add_special_tokens=False)
                if ids and str(self.tokenizer.decode(ids[:1])).strip().lower() == label.lower():
                    found.add(int(ids[0]))
        if not found:
            raise InputError(f"the tokenizer of {self.model_id!r} has no single token for the label {label!r}")
        return frozenset(found)

    def _completion(self, ids: list[int], params: SamplingParams, prompt_tokens: int) -> Completion:
        finish: FinishReason = "length"
        for j, tok in enumerate(ids):
            if tok in self._eos:
                ids, finish = ids[:j], "stop"
                break
        text = str(self.tokenizer.decode(ids, skip_special_tokens=True))
        for stop in params.stop:
            cut = text.find(stop)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        if finish == "length" and len(ids) < params.max_new_tokens:
            finish = "stop"
        return Completion(text=text.strip(), token_ids=tuple(ids), finish_reason=finish, prompt_tokens=prompt_tokens)
