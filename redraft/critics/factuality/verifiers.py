"""Verifiers: (claim, evidence passages) → P(supported). One small contract, several models.

* :class:`LexicalVerifier`: content-word and number overlap; the baseline every model must beat.
* :class:`LLMVerifier`: FActScore's True/False prompt, scored from the logits of "True" and "False".
* :class:`NLIVerifier`: any Hugging Face sequence-classification model (MiniCheck, DeBERTa-MNLI,
  AlignScore-style) from a local path or the local cache.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from redraft._hf import from_pretrained
from redraft._manifest import check_manifest
from redraft.agents.base import LLM, Conversation
from redraft.agents.prompts import FACTSCORE_PROMPT
from redraft.critics.factuality.kb import Passage, format_passages
from redraft.critics.factuality.windows import best_window, content_terms
from redraft.errors import InputError, ModelNotFoundError


@dataclass(frozen=True, slots=True)
class Verdict:
    p_supported: float
    """Probability that the evidence supports the claim."""
    truncated: bool = False
    """The evidence did not fit the verifier's context and was cut."""
    premise: str | None = None
    """What the verifier read as evidence, when it chose a window of the passages."""
    p_refuted: float | None = None
    """Probability that the evidence contradicts the claim, from a verifier that also has a
    ``not enough evidence`` class (P(not enough evidence) is the rest); None from the others."""


class Verifier(abc.ABC):
    """Scores claims against evidence. Batch in, batch out, one verdict per claim."""

    name: str

    @abc.abstractmethod
    def verify(self, claims: Sequence[str], evidence: Sequence[Sequence[Passage]]) -> list[Verdict]: ...

    def __call__(self, claims: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
        """P(supported) of each claim by plain reference texts: a verifier as the plain scoring
        callable a judge takes (``AnswerJudge(verifier=...)``), so judges need no critic types."""
        evidence = [[Passage(doc=-1, title="reference", text=r) for r in refs] for refs in references]
        return [v.p_supported for v in self.verify(claims, evidence)]


class LexicalVerifier(Verifier):
    """The baseline: share of the claim's content words found in the best passage, zero when a
    number in the claim appears in no passage (so "born in 1920" is not supported by "1867")."""

    name = "lexical"

    def verify(self, claims: Sequence[str], evidence: Sequence[Sequence[Passage]]) -> list[Verdict]:
        out = []
        for claim, passages in zip(claims, evidence, strict=True):
            words = content_terms(claim)
            if not words or not passages:
                out.append(Verdict(0.0))
                continue
            bags = [content_terms(f"{p.title} {p.text}") for p in passages]
            numbers = {w for w in words if w.isdigit()}
            if numbers and not any(numbers <= bag for bag in bags):
                out.append(Verdict(0.0))
                continue
            out.append(Verdict(max(len(words & bag) / len(words) for bag in bags)))
        return out


def check_model_path(model: str) -> None:
    """Raise :class:`ModelNotFoundError` when ``model`` is written as a path (``.``, ``/``, ``~``)
    that does not exist; anything else may be a cached hub id."""
    path = Path(model).expanduser()
    if model.startswith((".", "/", "~")) and not path.exists():
        raise ModelNotFoundError(f"verifier model path {path} does not exist")


class LLMVerifier(Verifier):
    """FActScore's verification prompt; P(supported) = P(True) / (P(True) + P(False)), read from
    the first answer token's log-probabilities on any backend that exposes them
    (:meth:`redraft.agents.LLM.label_probs`).
    """

    name = "llm"

    def __init__(self, llm: LLM, *, max_context_tokens: int = 1024) -> None:
        self.llm = llm
        self.max_context_tokens = max_context_tokens

    def _cut(self, context: str) -> tuple[str, bool]:
        tokenizer = getattr(self.llm, "tokenizer", None)
        if tokenizer is None:  # a remote model: about 4 characters per token
            limit = 4 * self.max_context_tokens
            return context[:limit], len(context) > limit
        ids = tokenizer(context, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.max_context_tokens:
            return context, False
        return str(tokenizer.decode(ids[: self.max_context_tokens])), True

    def verify(self, claims: Sequence[str], evidence: Sequence[Sequence[Passage]]) -> list[Verdict]:
        convs: list[Conversation] = []
        truncated = []
        for claim, passages in zip(claims, evidence, strict=True):
            context, cut = self._cut(format_passages(passages))
            topic = passages[0].title if passages else "the topic"
            prompt = FACTSCORE_PROMPT.format(topic=topic, context=context, claim=claim)
            convs.append([{"role": "user", "content": prompt}])
            truncated.append(cut)
        if not convs:
            return []
        probs = self.llm.label_probs(convs, ["True", "False"])
        if probs is None:
            raise InputError(
                f"{type(self.llm).__name__} exposes no log-probabilities, which the llm verifier reads its verdict "
                "from; use a transformers, vLLM or OpenAI-compatible backend that returns logprobs"
            )
        return [
            Verdict(p["True"] / (p["True"] + p["False"]) if p["True"] + p["False"] > 0 else 0.5, t)
            for p, t in zip(probs, truncated, strict=True)
        ]


class NLIVerifier(Verifier):
    """A sequence-classification model: premise = evidence, hypothesis = claim.

    Args:
        model: a local directory or a hub id in the local Hugging Face cache (nothing downloads).
        entail_label: the label meaning "supported"; by default the first label whose name
            starts with "entail", "support" or "true", else label 1 of a 2-label model.
        max_length: tokens per (premise, claim) pair; defaults to the model's limit (≤ 512).
        per_passage: score the claim against each passage separately and keep the best
            (SummaC/AlignScore-style chunking), instead of against all passages joined. A
            verifier trained on single passages sees what it was trained on, and short pairs are
            cheaper than one long one (attention is quadratic in length).
        window_words: read only the ``window_words``-word window of the passages that shares
            the most with the claim (:func:`~redraft.critics.factuality.windows.best_window`):
            one short pair per claim. The default verifier is trained this way.
        batch_size: pairs per forward pass; pairs are sorted by length first, so a batch pads
            to similar lengths.
    """

    name = "nli"

    def __init__(
        self,
        model: str | Path,
        *,
        entail_label: str | None = None,
        device: str = "cpu",
        max_length: int | None = None,
        per_passage: bool = False,
        window_words: int | None = None,
        batch_size: int = 32,
    ) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        check_model_path(str(model))
        try:
            self.tokenizer = from_pretrained(AutoTokenizer, model)
            # float32 whatever the file holds: the shipped verifier is stored in float16 to halve its
            # size, and float16 matmuls on a CPU are slower, not faster.
            self.model = from_pretrained(AutoModelForSequenceClassification, model, dtype=torch.float32)
        except OSError as exc:
            raise ModelNotFoundError(f"could not load verifier {str(model)!r} offline ({exc})") from exc
        self.model.to(device).eval()
        self.device = device
        labels = {int(i): str(n).lower() for i, n in self.model.config.id2label.items()}
        if entail_label is not None:
            matches = [i for i, n in labels.items() if n == entail_label.lower()]
            if not matches:
                raise InputError(f"label {entail_label!r} is not one of the model's labels {sorted(labels.values())}")
            self.entail = matches[0]
        else:
            # startswith, not "in": "unsupported" and "not_entailment" must not match.
            named = [i for i, n in labels.items() if n.startswith(("entail", "support", "true"))]
            if len(named) != 1:
                # A base encoder with a fresh head says LABEL_0 / LABEL_1: guessing "1 = supported"
                # would score every claim from random weights. Refuse instead.
                raise InputError(
                    f"verifier {str(model)!r} has labels {sorted(labels.values())}, none of which (or more than one) "
                    "names the 'supported'/'entailment' class: it looks like an encoder whose classification head "
                    "was never trained. Use a trained verifier (`redraft verifier train`, then nli:DIR), or name "
                    "the class with entail_label=..."
                )
            self.entail = named[0]
        # A third class that names silence (FEVER's "not enough evidence", MNLI's "neutral") makes
        # the remaining one a contradiction: the verifier then tells refuted from unknown itself.
        silent = [i for i, n in labels.items() if n.startswith(("not enough", "neutral", "nei"))]
        contra = [i for i, n in labels.items() if n.startswith(("refut", "contradict"))]
        self.refute = contra[0] if len(labels) == 3 and len(silent) == 1 and len(contra) == 1 else None
        limit = min(int(getattr(self.tokenizer, "model_max_length", 512) or 512), 512)
        self.max_length = min(max_length, limit) if max_length is not None else limit
        if window_words is not None and window_words < 1:
            raise InputError(f"window_words must be ≥ 1, got {window_words}")
        if batch_size < 1:
            raise InputError(f"batch_size must be ≥ 1, got {batch_size}")
        self.per_passage, self.window_words, self.batch_size = per_passage, window_words, batch_size

    def verify(self, claims: Sequence[str], evidence: Sequence[Sequence[Passage]]) -> list[Verdict]:
        if claims and self.window_words is not None:
            windows = [best_window(c, p, self.window_words).text for c, p in zip(claims, evidence, strict=True)]
            verdicts = self._verify(claims, windows)
            return [Verdict(v.p_supported, v.truncated, w, v.p_refuted) for v, w in zip(verdicts, windows, strict=True)]
        if not claims or not self.per_passage:
            return self._verify(claims, [format_passages(p) for p in evidence])
        # One pair per (claim, passage), scored in one batch; a claim is supported by its best passage.
        owners: list[int] = []
        premises: list[str] = []
        for i, passages in enumerate(evidence):
            for text in [format_passages([p]) for p in passages] or [""]:  # no evidence: an empty premise
                owners.append(i)
                premises.append(text)
        pairs = self._verify([claims[i] for i in owners], premises)
        best: list[Verdict | None] = [None] * len(claims)
        truncated = [False] * len(claims)
        for i, v in zip(owners, pairs, strict=True):
            b = best[i]
            if b is None or v.p_supported > b.p_supported:
                best[i] = v
            truncated[i] = truncated[i] or v.truncated
        return [
            Verdict(b.p_supported if b else 0.0, t, None, b.p_refuted if b else None)
            for b, t in zip(best, truncated, strict=True)
        ]

    def _verify(self, claims: Sequence[str], premises: list[str]) -> list[Verdict]:
        if not claims:
            return []
        full = self.tokenizer(premises, list(claims), truncation=False)["input_ids"]
        truncated = [len(ids) > self.max_length for ids in full]
        # Length-sorted batches: each pads to its own longest pair, not the longest overall.
        order = sorted(range(len(full)), key=lambda i: len(full[i]))
        probs = [0.0] * len(full)
        refuted: list[float | None] = [None] * len(full)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            enc = self.tokenizer(
                [premises[i] for i in rows],
                [claims[i] for i in rows],
                truncation="longest_first",
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                batch = torch.softmax(self.model(**enc).logits.float(), dim=-1)
            for i, p in zip(rows, batch[:, self.entail].tolist(), strict=True):
                probs[i] = p
            if self.refute is not None:
                for i, p in zip(rows, batch[:, self.refute].tolist(), strict=True):
                    refuted[i] = p
        return [Verdict(p, t, None, r) for p, t, r in zip(probs, truncated, refuted, strict=True)]


SHIPPED = Path(__file__).with_name("verifier")
"""The default verifier as shipped inside the package: float16 weights and a hash manifest."""

_REINSTALL = (
    "Reinstall redraft (pip install --force-reinstall --no-deps redraft), or rebuild it with `redraft verifier train`."
)


def check_verifier_files(path: Path) -> None:
    """Check a verifier directory against its ``MANIFEST.json``, which every redraft verifier
    has (``train`` and ``export`` write one): a copy without one, or with a file it does not
    list, is refused by name, so nothing unchecked ever loads as the verifier."""
    fix = (
        _REINSTALL
        if path == SHIPPED
        else f"Train it again with `redraft verifier train`, or export a checked copy with "
        f"`redraft verifier export --source {path} --out NEW_DIR` if you trust its files."
    )
    check_manifest(path, fix=fix)


def trained_verifier(path: str | Path, *, device: str = "cpu") -> NLIVerifier:
    """A verifier saved by ``redraft verifier train`` or ``redraft verifier export`` (or
    :func:`~redraft.critics.factuality.training.train_verifier`), read with the settings it was
    trained with (``redraft_verifier.json``). The directory is checked against its
    ``MANIFEST.json`` first: a missing manifest, or a changed, truncated or unlisted file, is
    refused by name.

    Example:
        >>> v = trained_verifier(SHIPPED)
        >>> claims, references = ["Paris is the capital of France."], [["Paris is the capital of France."]]
        >>> [round(p) for p in v(claims, references)]
        [1]
    """
    path = Path(path)
    check_verifier_files(path)
    info_file = path / "redraft_verifier.json"
    if not info_file.is_file():
        raise ModelNotFoundError(f"{path} is not a trained redraft verifier (no redraft_verifier.json)")
    info = json.loads(info_file.read_text())
    # Inference sees what training saw: the same evidence windows at the training length.
    window = info.get("window_words")
    return NLIVerifier(
        str(path),
        entail_label="supported",
        device=device,
        max_length=int(info["max_length"]),
        per_passage=window is None,
        window_words=int(window) if window is not None else None,
    )


def default_verifier_path() -> Path:
    """The default verifier's directory: one trained into the cache by ``redraft verifier
    train`` when there is one (it overrides the shipped copy), else the copy shipped with
    redraft. Raises, naming the fix, when neither is there. Loading it
    (:func:`trained_verifier`) checks its files."""
    from redraft.critics.factuality.training import default_verifier_dir

    trained = default_verifier_dir()
    if (trained / "redraft_verifier.json").is_file():
        return trained
    if not (SHIPPED / "redraft_verifier.json").is_file():
        raise ModelNotFoundError(
            f"the default verifier that ships with redraft is missing (expected at {SHIPPED}). {_REINSTALL}"
        )
    return SHIPPED


def default_verifier(*, device: str = "cpu") -> NLIVerifier:
    """The default verifier: the MiniLM cross-encoder shipped with redraft, or one you trained
    with ``redraft verifier train`` (which takes precedence). No training, no download.

    Example:
        >>> default_verifier().name
        'default'
    """
    verifier = trained_verifier(default_verifier_path(), device=device)
    verifier.name = "default"
    return verifier
