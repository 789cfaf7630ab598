"""What the browser view shows, read from the store (read-only) and shaped for the templates.

Everything here is plain data: the static file (``redraft view``) and the server (``redraft
serve``) render the same templates from it. Queries are per page: an experiment table reads one
page of examples with its filters applied in SQL, never the whole experiment.

Over 400 lines because each page's data and its query sit together (a page's filters are SQL):
splitting pages from their queries would put one rule in two places.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import aliased, selectinload
from sqlalchemy.sql.elements import ColumnElement

from redraft.corrections.verdicts import claim_lines
from redraft.errors import InputError, NotFoundError
from redraft.store.base import CHANGES, UNJUDGED, Change, change
from redraft.store.models import CritiqueRow, Example, Experiment, Judgement, Round, Run, change_is
from redraft.store.sql import SQLStore

_TOKEN = re.compile(r"\S+\s*|\s+")
"""A word with the whitespace after it: diffs then align on words, never on lone spaces."""
CONTEXT_TOKENS = 60
"""Corpus tokens shown on each side of a span's occurrence."""


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of draft text: plain, or inside a highlighted span / diff operation."""

    text: str
    kind: str = ""
    """``""`` plain; ``ins``/``del`` in a diff; ``span`` inside a BCI span."""
    span: int | None = None
    """Index of the span (into the critique's ``spans``) this piece belongs to."""
    shade: float = 0.0
    """0..1: how strongly to shade a span (its BCI relative to the draft's highest)."""


@dataclass(frozen=True, slots=True)
class SpanSource:
    """One corpus occurrence of a span: the document's metadata and the text around it."""

    doc: int
    meta: dict[str, Any]
    before: str = ""
    match: str = ""
    after: str = ""


@dataclass(frozen=True, slots=True)
class SpanView:
    text: str
    count: int
    bci: float
    sources: list[SpanSource]


@dataclass(frozen=True, slots=True)
class ClaimView:
    claim: str
    supported: bool
    p_supported: float
    window: str | None
    title: str | None
    evidence: str | None


@dataclass(frozen=True, slots=True)
class CritiqueView:
    critic: str
    passed: bool | None
    score: float | None
    feedback: str
    truth: bool | None
    correct: bool | None
    spans: list[SpanView] = field(default_factory=list)
    highlighted: list[Piece] = field(default_factory=list)
    """The draft with this critic's spans marked (BCI critics only)."""
    claims: list[ClaimView] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RoundView:
    index: int
    draft: str
    diff: list[Piece]
    """Word-level diff against the previous draft (the first draft: all plain)."""
    critiques: list[CritiqueView]
    judgements: list[tuple[str, bool | None, str]]
    """(judge, good, detail)."""
    verdict: str | None = None
    """For a revision: what it did to what was flagged (``fixed``, ``abstained``...; ``unjudged``
    when nothing could read the meaning); None for a first draft."""
    claim_lines: tuple[str, ...] = ()
    """The flagged claims behind the verdict, one line each (:func:`redraft.corrections.verdicts.claim_lines`)."""


@dataclass(frozen=True, slots=True)
class ExampleHead:
    """What names an example on every page: its run, key, dataset, prompt and stop reason."""

    id: int
    run_id: str
    run_label: str
    key: str
    source: str | None
    prompt: str
    status: str | None
    """The stop reason: ``accepted``, ``max_rounds``, ``no_change``; None while running."""


@dataclass(frozen=True, slots=True)
class ExampleView(ExampleHead):
    """An example in full, round by round."""

    rounds: list[RoundView]


def word_diff(old: str, new: str) -> list[Piece]:
    """``new`` against ``old`` word by word: unchanged, inserted and deleted pieces in reading order.

    Example:
        >>> [(p.kind, p.text) for p in word_diff("born in 1920.", "born in 1867.")]
        [('', 'born in '), ('del', '1920.'), ('ins', '1867.')]
    """
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    out: list[Piece] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(Piece("".join(b[j1:j2])))
            continue
        if op in ("delete", "replace"):
            out.append(Piece("".join(a[i1:i2]), "del"))
        if op in ("insert", "replace"):
            out.append(Piece("".join(b[j1:j2]), "ins"))
    return out


def highlight(draft: str, spans: Sequence[tuple[str, float]]) -> list[Piece]:
    """``draft`` cut into pieces, with each span (its text and BCI) marked where it first occurs
    after the previous one; overlapping spans keep the earlier one. Shade = BCI / the highest.

    Example:
        >>> [(p.text, p.span) for p in highlight("a b c d", [("b c", 9.0)])]
        [('a ', None), ('b c', 0), (' d', None)]
    """
    top = max((b for _, b in spans), default=0.0) or 1.0
    found: list[tuple[int, int, int]] = []
    for i, (text, _) in enumerate(spans):
        start = draft.find(text) if text else -1
        if start >= 0 and all(start >= e or start + len(text) <= s for s, e, _ in found):
            found.append((start, start + len(text), i))
    out, pos = [], 0
    for start, end, i in sorted(found):
        if start > pos:
            out.append(Piece(draft[pos:start]))
        out.append(Piece(draft[start:end], "span", i, max(0.15, min(1.0, spans[i][1] / top))))
        pos = end
    if pos < len(draft) or not out:
        out.append(Piece(draft[pos:]))
    return out


class CorpusReader:
    """Reads the corpus text around a span's occurrence from the index it was found in. An index
    that is gone or unreadable gives metadata only (the view never fails for lack of it)."""

    def __init__(self) -> None:
        self._opened: dict[str, Any] = {}

    def _open(self, path: str) -> Any:
        from redraft.provenance.index import SuffixIndex
        from redraft.provenance.tokenizers import ByteTokenizer, load_tokenizer

        if path not in self._opened:
            try:
                index = SuffixIndex.load(path, verify=False)
                built = index.header.tokenizer
                tok = ByteTokenizer() if built.kind == "bytes" else load_tokenizer(built.name)
                self._opened[path] = (index, tok)
            except (InputError, OSError):
                self._opened[path] = None
        return self._opened[path]

    def source(self, index_path: str | None, ref: dict[str, Any], length: int) -> SpanSource:
        doc, offset, meta = int(ref.get("doc", -1)), int(ref.get("offset", 0)), ref.get("meta") or {}
        opened = self._open(index_path) if index_path and Path(index_path).is_dir() else None
        if opened is None:
            return SpanSource(doc, meta)
        index, tok = opened
        try:
            ids = index.document(doc)
        except InputError:
            return SpanSource(doc, meta)
        lo, hi = max(0, offset - CONTEXT_TOKENS), min(len(ids), offset + length + CONTEXT_TOKENS)
        return SpanSource(
            doc,
            meta,
            tok.decode(ids[lo:offset]),
            tok.decode(ids[offset : offset + length]),
            tok.decode(ids[offset + length : hi]),
        )


def _critique_view(c: CritiqueRow, draft: str, index_path: str | None, corpus: CorpusReader) -> CritiqueView:
    evidence = [e for e in (c.evidence or []) if isinstance(e, dict)]
    spans: list[SpanView] = []
    claims: list[ClaimView] = []
    if evidence and "bci" in evidence[0] and "text" in evidence[0]:
        for e in evidence:
            length = int(e.get("end", 0)) - int(e.get("start", 0))
            sources = [corpus.source(index_path, d, length) for d in (e.get("docs") or [])[:3]]
            spans.append(SpanView(str(e.get("text") or ""), int(e.get("count", 0)), float(e["bci"]), sources))
    elif evidence and "claim" in evidence[0]:
        for e in evidence:
            best = (e.get("evidence") or [None])[0]
            claims.append(
                ClaimView(
                    claim=str(e["claim"]),
                    supported=bool(e.get("supported")),
                    p_supported=float(e.get("p_supported", 0.0)),
                    window=e.get("window"),
                    title=best.get("title") if isinstance(best, dict) else None,
                    evidence=best.get("text") if isinstance(best, dict) else None,
                )
            )
    return CritiqueView(
        critic=c.critic,
        passed=c.passed,
        score=c.score,
        feedback=c.feedback,
        truth=c.truth,
        correct=c.correct,
        spans=spans,
        highlighted=highlight(draft, [(s.text, s.bci) for s in spans]) if spans else [],
        claims=claims,
    )


def _head(e: Example) -> dict[str, Any]:
    """:class:`ExampleHead`'s fields of a stored example (its run and outcome loaded)."""
    return {
        "id": e.id,
        "run_id": e.run_id,
        "run_label": e.run.label,
        "key": e.key,
        "source": e.source,
        "prompt": e.prompt,
        "status": e.outcome.status if e.outcome else None,
    }


def _verdict_fields(correction: object) -> dict[str, Any]:
    """A revision's recorded verdict and the claim lines behind it, as the view shows them."""
    if not isinstance(correction, dict):
        return {}
    verdict = correction.get("verdict")
    claims = correction.get("claims")
    return {
        "verdict": verdict if isinstance(verdict, str) else UNJUDGED,
        "claim_lines": tuple(claim_lines(claims if isinstance(claims, list) else [])),
    }


def example_view(store: SQLStore, example_id: int, corpus: CorpusReader | None = None) -> ExampleView:
    """One example, round by round, with every critique's evidence placed in its draft."""
    corpus = corpus or CorpusReader()
    with store.session() as s:
        ex = s.scalars(
            select(Example)
            .where(Example.id == example_id)
            .options(
                selectinload(Example.rounds).selectinload(Round.critiques),
                selectinload(Example.rounds).selectinload(Round.judgements),
                selectinload(Example.outcome),
                selectinload(Example.run),
            )
        ).one_or_none()
        if ex is None:
            raise NotFoundError(f"no example {example_id}")
        indexes = {str(c["name"]): c.get("index") for c in ex.run.critics if isinstance(c, dict) and c.get("name")}
        rounds, previous = [], None
        for r in ex.rounds:
            rounds.append(
                RoundView(
                    index=r.index,
                    draft=r.draft,
                    diff=word_diff(previous, r.draft) if previous is not None else [Piece(r.draft)],
                    critiques=[_critique_view(c, r.draft, indexes.get(c.critic), corpus) for c in r.critiques],
                    judgements=[(j.judge, j.good, j.detail) for j in r.judgements],
                    **_verdict_fields(r.correction),
                )
            )
            previous = r.draft
        return ExampleView(**_head(ex), rounds=rounds)


@dataclass(frozen=True, slots=True)
class Filters:
    """The experiment table's filters, as the query string carries them."""

    dataset: str = ""
    critic: str = ""
    change: Change | Literal[""] = ""
    """``improved``, ``worsened``, ``unchanged`` or ``unlabelled``."""
    verdict: str = ""
    """``right`` or ``wrong``: the chosen critic (or any critic) agreed with the judge on every
    verdict, or disagreed at least once."""

    @classmethod
    def parse(cls, params: dict[str, str]) -> Filters:
        got = {k: params.get(k, "") for k in ("dataset", "critic", "change", "verdict")}
        if got["change"] not in ("", *CHANGES):
            raise InputError(f"change must be {', '.join(CHANGES[:-1])} or {CHANGES[-1]}, not {got['change']!r}")
        if got["verdict"] not in ("", "right", "wrong"):
            raise InputError(f"verdict must be right or wrong, not {got['verdict']!r}")
        kind: Change | Literal[""] = next((c for c in CHANGES if c == got["change"]), "")
        return cls(dataset=got["dataset"], critic=got["critic"], change=kind, verdict=got["verdict"])


@dataclass(frozen=True, slots=True)
class Row(ExampleHead):
    """One line of the experiment table."""

    rounds: int
    first_good: bool | None
    final_good: bool | None
    wrong_critics: list[str]
    """Critics that disagreed with the judge on at least one of the example's drafts."""
    judged_critics: list[str]
    """Critics that gave at least one verdict the judge could check."""

    @property
    def right_critics(self) -> list[str]:
        return [c for c in self.judged_critics if c not in self.wrong_critics]

    @property
    def change(self) -> Change:
        return change(self.first_good, self.final_good)


def _good_at(position: Literal["first", "last"]) -> Any:
    """The first judge's label of an example's first or last round, as a correlated subquery."""
    # Each subquery gets its own alias of the rounds table and correlates only with Example.
    rounds, judged = aliased(Round), aliased(Round)
    pick = func.min(rounds.index) if position == "first" else func.max(rounds.index)
    at = select(pick).where(rounds.example_id == Example.id).correlate(Example).scalar_subquery()
    first_judgement = (
        select(func.min(Judgement.id))
        .join(judged, Judgement.round_id == judged.id)
        .where(judged.example_id == Example.id, judged.index == at)
        .correlate(Example)
        .scalar_subquery()
    )
    good = aliased(Judgement)
    return select(good.good).where(good.id == first_judgement).correlate(Example).scalar_subquery()


def _examples_with(critic: str, correct: bool | None = None) -> ColumnElement[bool]:
    """Examples on which ``critic`` (any critic when empty) gave a verdict; with ``correct``, one
    the judge agreed (True) or disagreed (False) with.

    An uncorrelated ``IN``: the database builds the set of example ids once. (A correlated
    ``EXISTS`` let SQLite scan every critique of the critic per example: minutes at 10,000.)
    """
    on: list[ColumnElement[bool]] = [
        CritiqueRow.correct.is_not(None) if correct is None else CritiqueRow.correct.is_(correct)
    ]
    if critic:
        on.append(CritiqueRow.critic == critic)
    found = select(Round.example_id).join(CritiqueRow, CritiqueRow.round_id == Round.id).where(*on)
    return Example.id.in_(found)


def examples_page(
    store: SQLStore, run_ids: Sequence[str], filters: Filters, page: int, per_page: int
) -> tuple[list[Row], int]:
    """One page of an experiment's (or run's) examples with ``filters`` applied in SQL, and the
    number of examples that pass them."""
    first, last = _good_at("first"), _good_at("last")
    conditions: list[ColumnElement[bool]] = [Example.run_id.in_(list(run_ids))]
    if filters.dataset:
        conditions.append(Example.source == filters.dataset)
    if filters.critic:
        ran = select(Round.example_id).join(CritiqueRow, CritiqueRow.round_id == Round.id)
        conditions.append(Example.id.in_(ran.where(CritiqueRow.critic == filters.critic)))
    if filters.verdict == "wrong":
        conditions.append(_examples_with(filters.critic, correct=False))
    elif filters.verdict == "right":
        conditions += [_examples_with(filters.critic, correct=True), ~_examples_with(filters.critic, correct=False)]
    if filters.change:
        conditions.append(change_is(filters.change, first, last))
    with store.session() as s:
        # The labels are select-list subqueries: evaluated for the page's rows only, so an
        # unfiltered page of a 10,000-example experiment does not label all 10,000.
        total = int(s.scalar(select(func.count(Example.id)).where(*conditions)) or 0)
        ids_labels = s.execute(
            select(Example.id, first.label("first_good"), last.label("final_good"))
            .where(*conditions)
            .order_by(Example.id)
            .limit(per_page)
            .offset(max(0, page - 1) * per_page)
        ).all()
        ids = [r.id for r in ids_labels]
        examples = {
            e.id: e
            for e in s.scalars(
                select(Example)
                .where(Example.id.in_(ids))
                .options(selectinload(Example.outcome), selectinload(Example.run))
            )
        }
        rounds = dict(
            s.execute(
                select(Round.example_id, func.count()).where(Round.example_id.in_(ids)).group_by(Round.example_id)
            ).all()
        )
        wrong: dict[int, list[str]] = {}
        judged: dict[int, list[str]] = {}
        for example_id, critic, correct in s.execute(
            select(Round.example_id, CritiqueRow.critic, CritiqueRow.correct)
            .join(CritiqueRow, CritiqueRow.round_id == Round.id)
            .where(Round.example_id.in_(ids), CritiqueRow.correct.is_not(None))
            .distinct()
            .order_by(Round.example_id, CritiqueRow.critic)
        ):
            if critic not in judged.setdefault(example_id, []):
                judged[example_id].append(critic)
            if correct is False:
                wrong.setdefault(example_id, []).append(critic)
    rows = []
    for r in ids_labels:
        e = examples[r.id]
        rows.append(
            Row(
                **_head(e),
                rounds=int(rounds.get(e.id, 0)),
                first_good=r.first_good,
                final_good=r.final_good,
                wrong_critics=wrong.get(e.id, []),
                judged_critics=judged.get(e.id, []),
            )
        )
    return rows, total


@dataclass(frozen=True, slots=True)
class Choices:
    """What the filters can be set to for a set of runs."""

    datasets: list[str]
    critics: list[str]


def choices(store: SQLStore, run_ids: Sequence[str], critics: Sequence[str]) -> Choices:
    """The datasets of ``run_ids`` (read from the store) and the given critics, sorted."""
    with store.session() as s:
        datasets = s.scalars(
            select(Example.source).where(Example.run_id.in_(list(run_ids)), Example.source.is_not(None)).distinct()
        ).all()
    return Choices(sorted(d for d in datasets if d), sorted(set(critics)))


@dataclass(frozen=True, slots=True)
class Listing:
    """The home page: experiments and the runs that belong to none."""

    experiments: list[tuple[str, str, int, str]]
    """(id, name, runs, created)."""
    runs: list[tuple[str, str, str, str]]
    """(id, label, model, started)."""


def listing(store: SQLStore, page: int, per_page: int) -> Listing:
    """One page of experiments and of standalone runs, newest first."""
    offset = max(0, page - 1) * per_page
    with store.session() as s:
        exps = s.execute(
            select(Experiment.id, Experiment.name, func.count(Run.id), Experiment.created_at)
            .outerjoin(Run, Run.experiment_id == Experiment.id)
            .group_by(Experiment.id)
            .order_by(Experiment.created_at.desc())
            .limit(per_page)
            .offset(offset)
        ).all()
        runs = s.scalars(
            select(Run)
            .where(Run.experiment_id.is_(None))
            .order_by(Run.started_at.desc())
            .limit(per_page)
            .offset(offset)
        ).all()
    return Listing(
        [(e[0], e[1], int(e[2]), f"{e[3]:%Y-%m-%d %H:%M}") for e in exps],
        [(r.id, r.label, r.model_id, f"{r.started_at:%Y-%m-%d %H:%M}") for r in runs],
    )
