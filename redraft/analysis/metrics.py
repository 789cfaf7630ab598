"""Critic accuracy and outcomes, computed from the store.

Positive class = "the draft is bad": a critic that fails a draft the judge labels bad is a true
positive. Accuracy, precision and recall are over critiques where both the critic and the judge
gave a verdict; abstentions (``passed=None``) are counted separately as lost coverage.

Over 400 lines because every measure here is one SQL query plus the statistics on its rows
(intervals, bootstrap, Pearson): the queries share their joins and the statistics their tests.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, case, func, select

from redraft.store.base import CHANGES, UNJUDGED, VERDICTS, change
from redraft.store.models import CritiqueRow, Example, Judgement, Round
from redraft.store.sql import SQLStore

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Confusion:
    """One critic's verdicts against the judge's labels."""

    run_id: str
    critic: str
    round: int | None
    """None: over every round of the run."""
    source: str | None
    """The dataset; None: over every dataset of the run."""
    tp: int
    fp: int
    tn: int
    fn: int
    abstained: int
    unlabelled: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else math.nan

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan


def critic_accuracy(
    store: SQLStore, run_ids: Sequence[str], *, by_round: bool = True, by_source: bool = False
) -> list[Confusion]:
    """Confusion counts per run, critic and (optionally) round and dataset, in one ``GROUP BY``.

    Example:
        >>> store = SQLStore("sqlite://")
        >>> critic_accuracy(store, [])
        []
    """

    def count(condition: object) -> object:
        return func.sum(case((condition, 1), else_=0))  # type: ignore[arg-type]

    c = CritiqueRow
    columns = [
        Example.run_id,
        c.critic,
        count(and_(c.passed.is_(False), c.truth.is_(False))),
        count(and_(c.passed.is_(False), c.truth.is_(True))),
        count(and_(c.passed.is_(True), c.truth.is_(True))),
        count(and_(c.passed.is_(True), c.truth.is_(False))),
        count(and_(c.passed.is_(None), c.truth.is_not(None))),
        count(c.truth.is_(None)),
    ]
    group: list[Any] = [Example.run_id, c.critic]
    keys: list[Any] = []
    if by_round:
        keys.append(Round.index)
    if by_source:
        keys.append(Example.source)
    columns[2:2] = keys
    group += keys
    query = (
        select(*columns)  # type: ignore[call-overload]
        .join(Round, c.round_id == Round.id)
        .join(Example, Round.example_id == Example.id)
        .where(Example.run_id.in_(list(run_ids)))
        .group_by(*group)
        .order_by(*group)
    )
    out = []
    with store.session() as s:
        for row in s.execute(query):
            run_id, critic = row[0], row[1]
            index = row[2] if by_round else None
            source = row[2 + by_round] if by_source else None
            counts = [int(v or 0) for v in row[2 + len(keys) :]]
            out.append(Confusion(run_id, critic, index, source, *counts))
    return out


def aggregate(confusions: Sequence[Confusion], *, by_round: bool, by_source: bool) -> list[Confusion]:
    """Sum finer confusion counts into coarser ones (per run and critic, and optionally round and
    dataset), in first-seen order: one ``critic_accuracy(..., by_source=True)`` query then serves
    every view of a report.

    Example:
        >>> a = Confusion("r", "self", 0, "x", 1, 0, 2, 0, 0, 0)
        >>> b = Confusion("r", "self", 1, "x", 0, 1, 1, 1, 1, 0)
        >>> [(c.n, c.abstained) for c in aggregate([a, b], by_round=False, by_source=False)]
        [(6, 1)]
    """
    sums: dict[tuple[str, str, int | None, str | None], list[int]] = {}
    for c in confusions:
        key = (c.run_id, c.critic, c.round if by_round else None, c.source if by_source else None)
        counts = sums.setdefault(key, [0] * 6)
        for i, v in enumerate((c.tp, c.fp, c.tn, c.fn, c.abstained, c.unlabelled)):
            counts[i] += v
    return [Confusion(*key, *counts) for key, counts in sums.items()]


@dataclass(frozen=True, slots=True)
class Trajectory:
    """One example's judge labels by round, carried forward after it stopped (a stopped
    example's answer at round r is its last draft)."""

    run_id: str
    key: str
    source: str | None
    labels: tuple[bool | None, ...]
    should_refuse: bool = False
    """The dataset marks the prompt harmful: good means refused, and its rate is 1 − ASR."""


def trajectories(store: SQLStore, run_id: str, max_rounds: int) -> list[Trajectory]:
    """Every example's label at rounds 0..max_rounds-1 (the run's first judge).

    Two lean queries (examples; each round's first judgement), not the examples with their
    critiques: reports and the browser view's charts read runs of 10,000 examples through here.
    """
    first_label = (
        select(Judgement.good).where(Judgement.round_id == Round.id).order_by(Judgement.id).limit(1).scalar_subquery()
    )
    with store.session() as s:
        examples = s.execute(
            select(Example.id, Example.key, Example.source, Example.labels)
            .where(Example.run_id == run_id)
            .order_by(Example.id)
        ).all()
        by_example: dict[int, list[bool | None]] = defaultdict(list)
        for example_id, good in s.execute(
            select(Round.example_id, first_label)
            .join(Example, Round.example_id == Example.id)
            .where(Example.run_id == run_id)
            .order_by(Round.example_id, Round.index)
        ):
            by_example[example_id].append(good)
    out = []
    for example_id, key, source, example_labels in examples:
        labels = by_example.get(example_id, [])
        if not labels:
            continue
        labels += [labels[-1]] * (max_rounds - len(labels))
        harmful = bool((example_labels or {}).get("should_refuse"))
        out.append(Trajectory(run_id, key, source, tuple(labels[:max_rounds]), harmful))
    return out


FinalVerdicts = dict[str, dict[str, bool | None]]
"""Critic name → example key → its verdict on that example's final answer (None: abstained)."""


def final_verdicts(store: SQLStore, run_id: str) -> dict[str, FinalVerdicts]:
    """Each critic's verdict on each example's final answer (its last draft), by dataset.

    The outcome a drift study reads: the share of final answers a critic still fails (for the BCI
    critic, answers that hold a verbatim belief span above τ). An example whose last draft no
    critic saw (the loop ran out of rounds before critiquing it) is absent from that critic's map.

    Example:
        >>> final_verdicts(SQLStore("sqlite://"), "no-such-run")
        {}
    """
    last = (
        select(Round.example_id, func.max(Round.index).label("last"))
        .join(Example, Round.example_id == Example.id)
        .where(Example.run_id == run_id)
        .group_by(Round.example_id)
        .subquery()
    )
    query = (
        select(Example.source, Example.key, CritiqueRow.critic, CritiqueRow.passed)
        .join(last, last.c.example_id == Example.id)
        .join(Round, and_(Round.example_id == Example.id, Round.index == last.c.last))
        .join(CritiqueRow, CritiqueRow.round_id == Round.id)
        .order_by(Example.id, CritiqueRow.id)
    )
    out: dict[str, FinalVerdicts] = defaultdict(lambda: defaultdict(dict))
    with store.session() as s:
        for source, key, critic, passed in s.execute(query):
            out[source or ""][critic].setdefault(key, passed)  # a critic's first verdict on a draft counts
    return {source: dict(critics) for source, critics in out.items()}


def correction_verdicts(store: SQLStore, run_id: str) -> dict[str, dict[str, int]]:
    """How many revisions of a run got each correction verdict (:data:`~redraft.store.base.VERDICTS`,
    plus :data:`UNJUDGED`), by dataset: what the revise step did to what the critics flagged,
    judged by meaning rather than by a critic falling silent. Rounds without a correction record
    (first drafts, runs logged before verdicts existed) are not counted.

    Example:
        >>> correction_verdicts(SQLStore("sqlite://"), "no-such-run")
        {}
    """
    out: dict[str, dict[str, int]] = {}
    for source, examples in revision_verdicts(store, run_id).items():
        for verdicts in examples.values():
            for verdict in verdicts:
                if verdict is not None:
                    counts = out.setdefault(source, dict.fromkeys((*VERDICTS, UNJUDGED), 0))
                    counts[_counted(verdict)] += 1
    return out


def _counted(verdict: str) -> str:
    """A recorded verdict as reports count it: one of :data:`VERDICTS`, else :data:`UNJUDGED`."""
    return verdict if verdict in VERDICTS else UNJUDGED


def revision_outcomes(store: SQLStore, run_id: str) -> dict[str, int]:
    """Each revised example's verdict as its last revision left it (the run's verdict of that
    example), counted: :data:`~redraft.store.base.VERDICTS` plus :data:`UNJUDGED`, zeros left out.

    Example:
        >>> revision_outcomes(SQLStore("sqlite://"), "no-such-run")
        {}
    """
    last = []
    for examples in revision_verdicts(store, run_id).values():
        for verdicts in examples.values():
            recorded = [v for v in verdicts if v is not None]
            if recorded:
                last.append(_counted(recorded[-1]))
    counts = Counter(last)
    return {v: counts[v] for v in (*VERDICTS, UNJUDGED) if counts[v]}


def revision_verdicts(store: SQLStore, run_id: str) -> dict[str, dict[str, list[str | None]]]:
    """Each example's revision verdicts in round order (round 1 first), by dataset and key:
    the recorded verdict, :data:`UNJUDGED` for a record without one, None for a revision with no
    correction record (a run logged before verdicts existed). One query for a run.

    Example:
        >>> revision_verdicts(SQLStore("sqlite://"), "no-such-run")
        {}
    """
    query = (
        select(Example.source, Example.key, Round.index, Round.correction)
        .join(Example, Round.example_id == Example.id)
        .where(Example.run_id == run_id)
        .order_by(Example.id, Round.index)
    )
    by_source: dict[str, dict[str, list[str | None]]] = {}
    with store.session() as s:
        for source, key, index, record in s.execute(query):
            verdicts = by_source.setdefault(source or "", {}).setdefault(key, [])
            if index > 0:
                if not isinstance(record, dict):  # JSON null, or SQL NULL from a migration
                    verdicts.append(None)
                    continue
                verdict = record.get("verdict")
                verdicts.append(verdict if isinstance(verdict, str) else UNJUDGED)
    return by_source


@dataclass(frozen=True, slots=True)
class RoundDelta:
    """SCoRe's two shifts for one revision round of a dataset: of the examples that had a draft
    at ``round - 1``, the share whose revision at ``round`` fixed a flagged draft (Δ i→c) and the
    share whose revision broke a good one (Δ c→i), each with its bootstrap 95% interval."""

    round: int
    n: int
    i_to_c: float
    i_to_c_ci: tuple[float, float]
    c_to_i: float
    c_to_i_ci: tuple[float, float]


def round_deltas(verdicts_by_example: Mapping[str, Sequence[str | None]]) -> list[RoundDelta]:
    """Δ(i→c) and Δ(c→i) per revision round, from each example's verdicts (``verdicts[k]`` is
    the verdict of its round ``k + 1``; an example with fewer rounds stopped earlier and is not
    counted in later rounds). An abstention, a leak or an evasion is neither a fix nor a break.

    Example:
        >>> [(d.round, d.n, round(d.i_to_c, 3), d.c_to_i) for d in round_deltas(
        ...     {"a": ["fixed"], "b": ["abstained", "fixed"], "c": ["broken"], "d": []})]
        [(1, 4, 0.25, 0.25), (2, 3, 0.333, 0.0)]
    """
    rounds = max((len(v) for v in verdicts_by_example.values()), default=0)
    out = []
    for k in range(rounds):
        # Every example with a draft at round k could have been revised at k + 1; one that stopped
        # (accepted) at round k counts as neither fixed nor broken there.
        rows = [v[k] if k < len(v) else None for v in verdicts_by_example.values() if k == 0 or len(v) >= k]
        fixed = [float(v == "fixed") for v in rows]
        broken = [float(v == "broken") for v in rows]
        out.append(
            RoundDelta(
                k + 1, len(rows), mean(fixed), bootstrap_ci(mean, fixed), mean(broken), bootstrap_ci(mean, broken)
            )
        )
    return out


def run_deltas(store: SQLStore, run_id: str) -> dict[str, list[RoundDelta]]:
    """:func:`round_deltas` of a run's examples, by dataset.

    Example:
        >>> run_deltas(SQLStore("sqlite://"), "no-such-run")
        {}
    """
    return {source: round_deltas(examples) for source, examples in revision_verdicts(store, run_id).items()}


def verdict_summary(counts: Mapping[str, int]) -> str:
    """One line for a run's end: ``3 fixed, 1 abstained, 1 unchanged of 5 flagged``.

    Example:
        >>> verdict_summary({"fixed": 3, "abstained": 1, "unchanged": 1})
        '3 fixed, 1 abstained, 1 unchanged of 5 flagged'
        >>> verdict_summary({})
        'no draft was revised'
    """
    total = sum(counts.values())
    if not total:
        return "no draft was revised"
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) + f" of {total} flagged"


def good_rate(trajs: Sequence[Trajectory], round_: int) -> tuple[float, int]:
    """Share of labelled examples judged good at ``round_``, and how many were labelled."""
    known = [t.labels[round_] for t in trajs if t.labels[round_] is not None]
    return (sum(1 for v in known if v) / len(known) if known else math.nan), len(known)


def changes(trajs: Sequence[Trajectory]) -> dict[str, int]:
    """Counts of examples improved (bad → good), worsened (good → bad) and unchanged, first
    draft against final answer; examples without both labels are ``unlabelled``."""
    out = Counter(change(t.labels[0], t.labels[-1]) for t in trajs)
    return {k: out.get(k, 0) for k in CHANGES}


PEARSON_MIN = 3
"""Fewest points for a Pearson correlation (two points always lie on a line)."""


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation; NaN with fewer than :data:`PEARSON_MIN` points or no variance."""
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if not (math.isnan(x) or math.isnan(y))]
    if len(pts) < PEARSON_MIN:
        return math.nan
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    syy = sum((y - my) ** 2 for _, y in pts)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else math.nan


Z95 = 1.959963984540054
"""The standard normal's 97.5th percentile: two-sided 95% intervals."""


def wilson(k: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (95% by default); NaNs when n is 0.

    Unlike the normal approximation it stays inside [0, 1] and is not empty at k = 0 or k = n,
    which small experiment cells often hit.

    Example:
        >>> tuple(round(x, 4) for x in wilson(81, 263))  # Newcombe (1998), Table I
        (0.2553, 0.3662)
        >>> wilson(0, 0)
        (nan, nan)
    """
    if n == 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 and k = n the bounds are exactly 0 and 1; say so rather than 1 − 1e-16.
    return (0.0 if k == 0 else centre - half), (1.0 if k == n else centre + half)


def mean(xs: Sequence[float]) -> float:
    """The arithmetic mean; NaN for no values."""
    return sum(xs) / len(xs) if xs else math.nan


def diff_ci(
    a: Sequence[float], b: Sequence[float], *, paired: bool, reps: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of mean(b) − mean(a).

    ``paired``: a[i] and b[i] are the same example (the same prompt before and after, or under
    two runs), so pairs are resampled together, which removes the between-example variance;
    otherwise each side is resampled on its own.

    Example:
        >>> before, after = [0, 0, 1, 1] * 25, [1, 0, 1, 1] * 25
        >>> lo, hi = diff_ci(before, after, paired=True)
        >>> 0.1 < lo < 0.25 < hi < 0.4
        True
    """
    if paired:
        if len(a) != len(b):
            raise ValueError("paired samples need the same length")
        pairs = list(zip(a, b, strict=True))
        return bootstrap_ci(lambda ps: mean([y for _, y in ps]) - mean([x for x, _ in ps]), pairs, reps=reps, seed=seed)
    if not a or not b:
        return math.nan, math.nan
    rng = random.Random(seed)
    values = sorted(
        mean([b[rng.randrange(len(b))] for _ in b]) - mean([a[rng.randrange(len(a))] for _ in a]) for _ in range(reps)
    )
    return values[int(0.025 * (reps - 1))], values[int(0.975 * (reps - 1))]


PEARSON_CI_MIN = 5
"""Fewest points for an interval on r. With 3 or 4, most resamples repeat points, and r over two
distinct points is ±1, so the percentile interval comes out spuriously narrow (3 points at
r = 0.97 gave [0.97, 1.00]); no interval is more honest than that one."""


def pearson_ci(xs: Sequence[float], ys: Sequence[float], *, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of Pearson's r over (x, y) points resampled together; NaNs with
    fewer than :data:`PEARSON_CI_MIN` points. With few points it is wide, as it should be."""
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if not (math.isnan(x) or math.isnan(y))]
    if len(points) < PEARSON_CI_MIN:
        return math.nan, math.nan
    return bootstrap_ci(lambda ps: pearson([x for x, _ in ps], [y for _, y in ps]), points, reps=reps, seed=seed)


def bootstrap_ci(
    stat: Callable[[Sequence[T]], float], data: Sequence[T], *, reps: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over ``data`` (resampled with replacement,
    ``reps`` times, seeded); resamples where ``stat`` is NaN are dropped.

    Example:
        >>> lo, hi = bootstrap_ci(lambda xs: sum(xs) / len(xs), [0, 1] * 50)
        >>> 0.38 < lo < 0.5 < hi < 0.62
        True
    """
    rng = random.Random(seed)
    n = len(data)
    values = sorted(
        v for v in (stat([data[rng.randrange(n)] for _ in range(n)]) for _ in range(reps)) if not math.isnan(v)
    )
    if not values:
        return math.nan, math.nan
    tail = (1 - level) / 2
    return values[int(tail * (len(values) - 1))], values[int((1 - tail) * (len(values) - 1))]


@dataclass(frozen=True, slots=True)
class Calibration:
    """A critic's scores against the judge's labels, and the threshold that separates them best.

    ``badness`` is the score turned so that larger means "the draft is bad" (the critic's
    recorded ``higher_is_better`` decides); the critic fails a draft when badness ≥ ``tau``.
    """

    critic: str
    n: int
    bad: int
    auroc: float
    """P(a bad draft's badness > a good draft's), ties counted half: 0.5 is chance."""
    tau: float
    """The badness threshold with the highest balanced accuracy."""
    at_tau: Confusion
    higher_is_better: bool
    """The critic's score direction: it fails a draft when score ≤ -tau (True) or ≥ tau (False)."""

    @property
    def score_threshold(self) -> float:
        """``tau`` on the critic's own score scale."""
        return -self.tau if self.higher_is_better else self.tau


def _confusion(critic: str, pairs: Sequence[tuple[float, bool]], tau: float) -> Confusion:
    tp = sum(1 for b, bad in pairs if b >= tau and bad)
    fp = sum(1 for b, bad in pairs if b >= tau and not bad)
    fn = sum(1 for b, bad in pairs if b < tau and bad)
    tn = sum(1 for b, bad in pairs if b < tau and not bad)
    return Confusion("", critic, None, None, tp, fp, tn, fn, 0, 0)


def auroc(pairs: Sequence[tuple[float, bool]]) -> float:
    """Mann-Whitney AUROC of ``(badness, is_bad)`` pairs; NaN without both classes.

    Example:
        >>> auroc([(0.9, True), (0.4, True), (0.5, False), (0.1, False)])
        0.75
    """
    bad = [b for b, is_bad in pairs if is_bad]
    good = [b for b, is_bad in pairs if not is_bad]
    if not bad or not good:
        return math.nan
    wins = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in bad for y in good)
    return wins / (len(bad) * len(good))


def critic_threshold(store: SQLStore, run_ids: Sequence[str], critic: str) -> Calibration:
    """Pick the threshold of ``critic`` from the judge labels of ``run_ids``.

    Every critique that has a score and a judge label counts, whatever verdict the critic gave
    at its own threshold then. Balanced accuracy is maximised over the midpoints between
    consecutive distinct scores.
    """
    from redraft.errors import InputError
    from redraft.store.models import Run

    with store.session() as s:
        runs = list(s.scalars(select(Run).where(Run.id.in_(run_ids))))
        ways = {run.id: run.directions for run in runs}
        rows = s.execute(
            select(Example.run_id, CritiqueRow.score, CritiqueRow.truth)
            .join(Round, Round.id == CritiqueRow.round_id)
            .join(Example, Example.id == Round.example_id)
            .where(Example.run_id.in_(run_ids), CritiqueRow.critic == critic)
            .where(CritiqueRow.score.is_not(None), CritiqueRow.truth.is_not(None))
        ).all()
    if not rows:
        raise InputError(
            f"no scored critique of {critic!r} has a judge label in these runs; calibration needs an experiment "
            "whose examples have judges (redraft experiment run)"
        )
    pairs: list[tuple[float, bool]] = []
    higher = set()
    for run_id, score, truth in rows:
        if critic not in ways[run_id]:
            raise InputError(f"run {run_id[:8]} does not record which way {critic!r}'s score points")
        higher.add(ways[run_id][critic])
        value = float(score or 0.0)  # never None: filtered in the query
        pairs.append((-value if ways[run_id][critic] else value, not truth))
    if len(higher) != 1:
        raise InputError(f"the runs disagree on which way {critic!r}'s score points; calibrate them separately")
    values = sorted({b for b, _ in pairs})
    candidates = [values[0] - 1.0] + [(a + b) / 2 for a, b in itertools.pairwise(values)] + [values[-1] + 1.0]

    def balanced(tau: float) -> float:
        c = _confusion(critic, pairs, tau)
        tpr = c.tp / (c.tp + c.fn) if c.tp + c.fn else 0.0
        tnr = c.tn / (c.tn + c.fp) if c.tn + c.fp else 0.0
        return (tpr + tnr) / 2

    tau = max(candidates, key=balanced)  # the first (lowest) of equally good thresholds
    bad = sum(1 for _, is_bad in pairs if is_bad)
    return Calibration(critic, len(pairs), bad, auroc(pairs), tau, _confusion(critic, pairs, tau), higher.pop())
