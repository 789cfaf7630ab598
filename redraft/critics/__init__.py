"""Critics: judge drafts. ``CRITICS`` maps the names used on the command line to factories."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from redraft._lazy import lazy_attributes
from redraft.agents.base import LLM
from redraft.critics.base import Critic, Critique, DraftContext
from redraft.critics.human import HumanCritic, HumanVerdict
from redraft.critics.oracle import NoisyOracleCritic, OracleCritic, check_accuracy
from redraft.critics.self_critic import SelfCritic, parse_verdict
from redraft.errors import InputError

if TYPE_CHECKING:
    from redraft.critics.bci import BCICritic
    from redraft.critics.factuality.verifiers import Verifier


class CriticOptions(BaseModel):
    """Settings the critic factories take. Each field's default and description are the command
    line's too: ``redraft run`` builds its options from these fields and passes only the ones given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    index: Path | None = None
    """Suffix index directory for the ``bci`` critic."""
    bci_threshold: float = 20.0
    """TraceShield threshold τ in nats (calibrate it with ``redraft index calibrate``)."""
    bci_variant: Literal["sum", "density", "max"] = "sum"
    """How a span's BCI is aggregated: ``sum``, ``density`` or ``max``."""
    bci_min_len: int = Field(default=8, ge=1)
    """Minimum span length in tokens."""
    kb: Path | None = None
    """JSONL knowledge base for the ``factuality`` critic (default: the packaged Wikipedia summaries)."""
    verifier: str = "default"
    """``default`` (the MiniLM cross-encoder shipped with redraft, or yours from ``redraft
    verifier train``), ``lexical`` (the baseline), ``llm`` (FActScore prompt on the run's model)
    or ``nli:<model path>``."""
    factuality_threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    """The least share of claims that must not count against a draft for it to pass."""
    factuality_unknown: Literal["pass", "fail"] = "pass"
    """A claim the evidence does not cover (``not enough evidence``): ``pass`` (the default: only
    refuted claims fail a draft) or ``fail`` (every claim the knowledge base cannot support does)."""
    self_verdicts: Literal["auto", "logprobs", "text"] = "auto"
    """How the self-critics read a verdict: ``auto`` (log-probabilities when the backend gives
    them, else parsed text), ``logprobs`` or ``text``."""
    self_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """τ on the self-critics' P(fail); pick it with ``redraft calibrate``."""
    oracle_seed: int = 0
    """Seed of the ``noisy-oracle:P`` critics' flips (the same seed flips the same verdicts)."""


def _bci(llm: LLM, options: CriticOptions) -> Critic:
    from redraft.critics.bci import BCICritic
    from redraft.provenance.bci import SpanFilters
    from redraft.provenance.index import SuffixIndex

    if options.index is None:
        raise InputError("the bci critic needs an index: pass --index PATH (build one with `redraft index build`)")
    return BCICritic(
        SuffixIndex.load(options.index),
        options.bci_threshold,
        variant=options.bci_variant,
        filters=SpanFilters(min_len=options.bci_min_len),
        llm=llm,
    )


def _default_verifier(llm: LLM, arg: str) -> Verifier:
    from redraft.critics.factuality.verifiers import default_verifier

    return default_verifier()


def _check_default_verifier(arg: str) -> None:
    from redraft.critics.factuality.verifiers import check_verifier_files, default_verifier_path

    # Before the model loads: a missing or damaged verifier stops the command first.
    check_verifier_files(default_verifier_path())


def _lexical_verifier(llm: LLM, arg: str) -> Verifier:
    from redraft.critics.factuality import LexicalVerifier

    return LexicalVerifier()


def _llm_verifier(llm: LLM, arg: str) -> Verifier:
    from redraft.critics.factuality import LLMVerifier

    return LLMVerifier(llm)


def _nli_verifier(llm: LLM, path: str) -> Verifier:
    from redraft.critics.factuality import NLIVerifier
    from redraft.critics.factuality.verifiers import trained_verifier

    local = Path(path).expanduser()
    # A verifier trained by redraft is read with its training settings (windows, length).
    return trained_verifier(local) if (local / "redraft_verifier.json").is_file() else NLIVerifier(path)


def _check_nli_verifier(path: str) -> None:
    from redraft.critics.factuality.verifiers import check_model_path

    if not path:
        raise InputError("--verifier nli: needs a model path, e.g. nli:/models/my-verifier")
    check_model_path(path)


class VerifierKind(NamedTuple):
    """How ``--verifier NAME`` (or ``NAME:<model path>``) is checked before the model loads, and built."""

    build: Callable[[LLM, str], Verifier]
    check: Callable[[str], None] | None = None
    takes_path: bool = False


VERIFIERS: dict[str, VerifierKind] = {
    "default": VerifierKind(_default_verifier, _check_default_verifier),
    "lexical": VerifierKind(_lexical_verifier),
    "llm": VerifierKind(_llm_verifier),
    "nli": VerifierKind(_nli_verifier, _check_nli_verifier, takes_path=True),
}
"""The factuality critic's verifiers by ``CriticOptions.verifier`` name."""


def verifier_kind(spec: str) -> tuple[VerifierKind, str]:
    """The registry entry for a ``--verifier`` value and its path argument, or an error listing them.

    Example:
        >>> verifier_kind("nli:/models/v")[1]
        '/models/v'
    """
    name, colon, arg = spec.partition(":")
    kind = VERIFIERS.get(name)
    if kind is None or bool(colon) != kind.takes_path:
        known = ", ".join(f"{n}:<model path>" if k.takes_path else n for n, k in VERIFIERS.items())
        raise InputError(f"unknown verifier {spec!r}; known verifiers: {known}")
    return kind, arg


def _factuality(llm: LLM, options: CriticOptions) -> Critic:
    from redraft.critics.factuality import FactualityCritic, KnowledgeBase

    kb = KnowledgeBase.from_jsonl(options.kb) if options.kb else KnowledgeBase.default()
    kind, arg = verifier_kind(options.verifier)
    return FactualityCritic(
        kb, kind.build(llm, arg), threshold=options.factuality_threshold, unknown=options.factuality_unknown
    )


def _self(llm: LLM, options: CriticOptions, check: str, name: str) -> Critic:
    return SelfCritic(llm, check=check, name=name, verdicts=options.self_verdicts, threshold=options.self_threshold)


CriticFactory = Callable[[LLM, CriticOptions], Critic]


def _probability(value: str) -> float:
    try:
        p = float(value)
    except ValueError:
        p = math.nan  # refused below with the same message as an out-of-range number
    return check_accuracy(p, value)


class ParametricCritic(NamedTuple):
    """A critic named ``NAME:ARG``: how ARG is checked (raising a clear error) and the critic built."""

    parse: Callable[[str], object]
    build: Callable[[LLM, CriticOptions, str], Critic]


PARAMETRIC: dict[str, ParametricCritic] = {
    "noisy-oracle": ParametricCritic(
        _probability,
        lambda llm, o, arg: NoisyOracleCritic(_probability(arg), seed=o.oracle_seed, name=f"noisy-oracle:{arg}"),
    ),
}
"""Critics that take an argument after a colon: ``noisy-oracle:0.7``, one run per value."""

CRITICS: dict[str, CriticFactory] = {
    "self": lambda llm, o: _self(llm, o, "factual", "self"),
    "self-error": lambda llm, o: _self(llm, o, "error", "self-error"),
    "self-harm": lambda llm, o: _self(llm, o, "harm", "self-harm"),
    "self-bias": lambda llm, o: _self(llm, o, "bias", "self-bias"),
    "bci": _bci,
    "factuality": _factuality,
    "oracle": lambda llm, o: OracleCritic(),
    "human": lambda llm, o: HumanCritic(),
}
INTERACTIVE = frozenset({"human"})
"""Critics that pause for a person: for ``redraft run`` and graphs with a checkpointer, never for
unattended experiments (their specs refuse them before anything loads)."""


def check_critic_names(names: list[str]) -> None:
    """Raise an error listing the known names if any name is unknown (or its argument is bad).

    Example:
        >>> check_critic_names(["oracle", "noisy-oracle:0.7"])
        >>> check_critic_names(["noisy-oracle:2"])
        Traceback (most recent call last):
        ...
        redraft.errors.InputError: noisy-oracle:2 needs P, the probability that its verdict is right, in [0, 1], ...
    """
    for name in names:
        base, colon, arg = name.partition(":")
        if colon and base in PARAMETRIC:
            PARAMETRIC[base].parse(arg)
        elif name not in CRITICS:
            known = [*CRITICS, *(f"{n}:P" for n in PARAMETRIC)]
            raise InputError(f"unknown critic {name!r}; known critics: {', '.join(sorted(known))}")


def preflight(names: list[str], options: CriticOptions) -> None:
    """Check everything the critics ``names`` will need that can be checked without a model: the
    names, the index header, the knowledge base and the verifier. Commands call this before
    loading the model, so a typo fails in a second instead of after a minute of loading."""
    check_critic_names(names)
    if "bci" in names:
        if options.index is None:
            raise InputError("the bci critic needs an index: pass --index PATH (build one with `redraft index build`)")
        from redraft.provenance.shard import read_header

        read_header(options.index)
    if "factuality" not in names:
        return
    if options.kb is not None and not options.kb.is_file():
        raise InputError(f"knowledge base {options.kb} does not exist; pass a JSONL file with --kb")
    kind, arg = verifier_kind(options.verifier)
    if kind.check is not None:
        kind.check(arg)


def make_critic(name: str, llm: LLM, options: CriticOptions | None = None) -> Critic:
    """Build a critic by its command-line name.

    Example:
        >>> from redraft.agents.testing import ScriptedLLM
        >>> make_critic("self", ScriptedLLM([])).name
        'self'
    """
    check_critic_names([name])
    base, colon, arg = name.partition(":")
    if colon:
        return PARAMETRIC[base].build(llm, options or CriticOptions(), arg)
    return CRITICS[name](llm, options or CriticOptions())


# BCICritic pulls in the provenance stack (numpy, the index); load it on first use.
__getattr__ = lazy_attributes(__name__, {"BCICritic": "redraft.critics.bci"})


__all__ = [
    "CRITICS",
    "INTERACTIVE",
    "BCICritic",
    "Critic",
    "CriticOptions",
    "Critique",
    "DraftContext",
    "HumanCritic",
    "HumanVerdict",
    "NoisyOracleCritic",
    "OracleCritic",
    "SelfCritic",
    "check_critic_names",
    "make_critic",
    "parse_verdict",
    "preflight",
]
