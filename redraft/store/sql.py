"""SQL recorder and readers on SQLAlchemy 2: SQLite by default, PostgreSQL for shared runs. This
module maps records to rows and back; opening and migrating a database is
:mod:`redraft.store.engine`'s."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import (
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.orm import Session, selectinload

from redraft._db import DEFAULT_URL, redact
from redraft._version import __version__
from redraft.errors import AmbiguousIdError, NotFoundError, StoreUnavailableError
from redraft.store.base import (
    CRITIQUE_FIELDS,
    JUDGEMENT_FIELDS,
    ROUND_FIELDS,
    ExampleInfo,
    OutcomeInfo,
    Recorder,
    RoundRecord,
    RunInfo,
    truth_of,
)
from redraft.store.engine import check_schema, connect, migrate, probe_write, reason
from redraft.store.models import Example, Experiment, Outcome, Round, Run, utcnow


def round_record(r: Round) -> RoundRecord:
    """A stored round back in the graph's state format (what ``Corrector`` replays on resume)."""
    record: RoundRecord = {
        **{f: getattr(r, f) for f in ROUND_FIELDS},  # type: ignore[typeddict-item]
        "critiques": [{f: getattr(c, f) for f in CRITIQUE_FIELDS} for c in r.critiques],
        "judgements": [{f: getattr(j, f) for f in JUDGEMENT_FIELDS} for j in r.judgements],
    }
    if r.correction is not None:
        record["correction"] = r.correction
    return record


def _critique_row(c: dict[str, Any], truth: dict[str, Any] | None) -> dict[str, Any]:
    """A critique's row: its fields, and the judge's label of the same draft with whether the
    critic agreed."""
    good = truth["good"] if truth is not None else None
    passed = c["passed"]
    return dict(
        **{f: c.get(f) for f in CRITIQUE_FIELDS},
        judge=truth["judge"] if truth is not None else None,
        truth=good,
        # An abstention (passed=None) is neither right nor wrong: it drops out of accuracy and is
        # counted separately as coverage.
        correct=None if passed is None or good is None else passed == good,
    )


class _Writes:
    """The statements every batch of rounds runs, built once: a statement object memoizes its
    compiled form's cache key, so executing it again skips building and keying the expression."""

    def __init__(self) -> None:
        tables = Example.metadata.tables
        examples, rounds, outcomes = tables["examples"], tables["rounds"], tables["outcomes"]
        self.example_ids = select(examples.c.key, examples.c.id).where(
            examples.c.run_id == bindparam("run_id"), examples.c.key.in_(bindparam("keys", expanding=True))
        )
        self.new_examples = insert(examples).returning(examples.c.key, examples.c.id, sort_by_parameter_order=True)
        self.stored_rounds = select(rounds.c.example_id, rounds.c.index).where(
            rounds.c.example_id.in_(bindparam("ids", expanding=True))
        )
        self.outcomes_of = select(outcomes.c.example_id).where(
            outcomes.c.example_id.in_(bindparam("ids", expanding=True))
        )
        self.new_rounds = insert(rounds).returning(rounds.c.id, sort_by_parameter_order=True)
        self.critiques = insert(tables["critiques"])
        self.judgements = insert(tables["judgements"])
        self.outcomes = insert(outcomes)
        runs = tables["runs"]
        self.run_ended = update(runs).where(runs.c.id == bindparam("run")).values(ended_at=bindparam("at"))


_WRITES = _Writes()


MAX_ID_CHARS = 64
"""Longer than any id redraft makes (32 hex digits): a longer "prefix" matches nothing, and is
refused before it reaches SQL (50,000 characters made a 500 in ``serve``)."""


def check_id_prefix(kind: str, prefix: str) -> None:
    """Refuse an id prefix that cannot match: one longer than :data:`MAX_ID_CHARS`.

    Example:
        >>> check_id_prefix("run", "3f2a")
        >>> try:
        ...     check_id_prefix("run", "x" * 50_000)
        ... except NotFoundError as exc:
        ...     print(exc)
        run id 'xxxxxxxxxxxxxxxxxxxx…' (50,000 characters) matches nothing: ids are 32 hex digits
    """
    if len(prefix) > MAX_ID_CHARS:
        shown = f"{prefix[:20]}…" if len(prefix) > 20 else prefix
        raise NotFoundError(f"{kind} id {shown!r} ({len(prefix):,} characters) matches nothing: ids are 32 hex digits")


class SQLStore(Recorder):
    """Records runs to any SQLAlchemy URL and reads them back.

    Example:
        >>> store = SQLStore("sqlite://")  # in memory
        >>> run_id = store.start_run(RunInfo(model_id="m", config={}, critics=[]))
        >>> [r.id for r in store.runs()] == [run_id]
        True
    """

    def __init__(self, url: str = DEFAULT_URL, *, readonly: bool = False) -> None:
        self.url = url
        self.engine = connect(url, readonly=readonly)
        self._example_ids: dict[tuple[str, str], int] = {}
        """(run, example key) → example id, for examples this store has written: rows are never
        deleted or re-keyed, so later rounds of an example skip looking it up."""
        # A store dropped without close() (e.g. inside a garbage-collected graph) still closes its
        # pooled connections instead of leaking them to the driver's finalizer.
        self._finalizer = weakref.finalize(self, self.engine.dispose)
        try:
            if readonly:
                check_schema(self.engine, url)
            else:
                migrate(self.engine)
                probe_write(self.engine, url)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close every pooled connection."""
        self._finalizer()

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- writing ---------------------------------------------------------------------------------

    def start_run(self, info: RunInfo) -> str:
        run_id = uuid.uuid4().hex
        with self.session() as s, s.begin():
            s.add(
                Run(
                    id=run_id,
                    name=info.name,
                    model_id=info.model_id,
                    config=info.config,
                    critics=info.critics,
                    redraft_version=__version__,
                    experiment_id=info.experiment_id,
                    cell=info.cell,
                )
            )
        return run_id

    def record_round(
        self, run_id: str, example: ExampleInfo, round_: RoundRecord, outcome: OutcomeInfo | None = None
    ) -> None:
        self.record_rounds(run_id, [(example, round_, outcome)])

    def record_rounds(self, run_id: str, rounds: Sequence[tuple[ExampleInfo, RoundRecord, OutcomeInfo | None]]) -> None:
        """A batch of rounds in one transaction: one commit (one fsync on PostgreSQL) instead of
        one per example. A crash loses the batch, never half of it, and a resume redoes it."""
        if not rounds:
            return
        # A concurrent writer may insert the same example or round between our read and our
        # write; the unique constraints reject the loser, and the retry then sees the row.
        for attempt in range(3):
            try:
                with self._writing(), self.engine.begin() as conn:
                    ids = self._write_rounds(conn, run_id, rounds)
                # Cached only once committed: an id from a rolled-back batch names no row.
                self._example_ids.update({(run_id, key): i for key, i in ids.items()})
                return
            except IntegrityError:
                if attempt == 2:
                    raise

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn a lost connection during a write into a :class:`StoreUnavailableError` that says
        what survived: each batch of rounds is one transaction, so every earlier batch is stored."""
        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            raise StoreUnavailableError(
                f"lost the database {redact(self.url)} while writing ({reason(exc)}). Every round written before is "
                "stored; once the database is back, continue with --resume (nothing is written twice)."
            ) from exc

    def _write_rounds(
        self, conn: Connection, run_id: str, rounds: Sequence[tuple[ExampleInfo, RoundRecord, OutcomeInfo | None]]
    ) -> dict[str, int]:
        """Insert what is not stored yet: examples, rounds, their critiques and judgements, and
        outcomes; return the batch's example ids by key. Existing rows are kept, which is what
        makes a re-run node or a retried shard harmless.

        Core statements built once (:data:`_WRITES`), several rows per INSERT, ids by RETURNING:
        building statements and the ORM's unit of work cost more per round than the database did.
        """
        infos = {info.key: info for info, _, _ in rounds}
        known = {k: self._example_ids[(run_id, k)] for k in infos if (run_id, k) in self._example_ids}
        if len(known) < len(infos):
            missing = [k for k in infos if k not in known]
            known.update({k: i for k, i in conn.execute(_WRITES.example_ids, {"run_id": run_id, "keys": missing})})
        ids = dict(known)
        new = [info for key, info in infos.items() if key not in ids]
        if new:
            rows = [
                {"run_id": run_id, "key": i.key, "prompt": i.prompt, "source": i.source, "labels": i.labels}
                for i in new
            ]
            ids.update({k: i for k, i in conn.execute(_WRITES.new_examples, rows)})
        # Only examples that existed before this batch can hold its rounds or outcomes already.
        stored: set[tuple[int, int]] = set()
        ended: set[int] = set()
        if known:
            old = {"ids": list(known.values())}
            stored = {(e, i) for e, i in conn.execute(_WRITES.stored_rounds, old)}
            ended = set(conn.scalars(_WRITES.outcomes_of, old))
        fresh: list[tuple[ExampleInfo, RoundRecord]] = []
        round_rows: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        for info, round_, outcome in rounds:
            ex_id = ids[info.key]
            if (ex_id, round_["index"]) not in stored:
                stored.add((ex_id, round_["index"]))
                fresh.append((info, round_))
                fields = {f: round_[f] for f in ROUND_FIELDS}  # type: ignore[literal-required]
                round_rows.append({"example_id": ex_id, **fields, "correction": round_.get("correction")})
            if outcome is not None and ex_id not in ended:
                ended.add(ex_id)
                outcomes.append({"example_id": ex_id, **outcome.model_dump()})
        if round_rows:
            round_ids = conn.scalars(_WRITES.new_rounds, round_rows).all()
            critiques: list[dict[str, Any]] = []
            judgements: list[dict[str, Any]] = []
            for round_id, (info, round_) in zip(round_ids, fresh, strict=True):
                labels = round_.get("judgements", [])
                truth = truth_of(labels, info.labels)  # a nominal judge grades no critic
                critiques += [{"round_id": round_id, **_critique_row(c, truth)} for c in round_["critiques"]]
                judgements += [{"round_id": round_id, **{f: j.get(f) for f in JUDGEMENT_FIELDS}} for j in labels]
            if critiques:
                conn.execute(_WRITES.critiques, critiques)
            if judgements:
                conn.execute(_WRITES.judgements, judgements)
        if outcomes:
            conn.execute(_WRITES.outcomes, outcomes)
            # A library user never calls finish_run, so the last finished example dates the run.
            conn.execute(_WRITES.run_ended, {"run": run_id, "at": utcnow()})
        return ids

    def start_experiment(self, name: str, spec: dict[str, Any]) -> str:
        """Create an experiment (a group of runs) and return its id."""
        experiment_id = uuid.uuid4().hex
        with self.session() as s, s.begin():
            s.add(Experiment(id=experiment_id, name=name, spec=spec))
        return experiment_id

    def cell_run(self, info: RunInfo) -> str:
        """The run of ``info.cell`` in ``info.experiment_id``, created on first use.

        Workers sharing an experiment race to create a cell's run; the unique constraint lets one
        win and the others read its id, so every worker writes into the same run.
        """
        if info.experiment_id is None or info.cell is None:
            raise ValueError("cell_run needs info.experiment_id and info.cell")
        query = select(Run.id).where(Run.experiment_id == info.experiment_id, Run.cell == info.cell)
        for _ in range(3):
            with self.session() as s:
                found = s.scalar(query)
            if found is not None:
                return found
            try:
                return self.start_run(info)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not create or find the run of cell {info.cell!r}")

    def finish_run(self, run_id: str) -> None:
        with self.session() as s, s.begin():
            s.execute(update(Run).where(Run.id == run_id).values(ended_at=utcnow()))

    # -- reading ---------------------------------------------------------------------------------

    def runs(self) -> list[Run]:
        """All runs, newest first."""
        with self.session() as s:
            return list(s.scalars(select(Run).order_by(Run.started_at.desc())))

    def run(self, run_id: str) -> Run:
        """One run; a unique prefix of its id is enough."""
        check_id_prefix("run", run_id)
        with self.session() as s:
            # autoescape: a '%' or '_' in the prefix is a character, not a LIKE wildcard.
            matches = list(s.scalars(select(Run).where(Run.id.startswith(run_id, autoescape=True))))
        if len(matches) != 1:
            known = ", ".join(r.id[:8] for r in self.runs()[:10]) or "none yet"
            what = "matches no run" if not matches else f"matches {len(matches)} runs; give more of it"
            raise (AmbiguousIdError if matches else NotFoundError)(f"run id {run_id!r} {what}; recent runs: {known}")
        return matches[0]

    def experiment(self, experiment_id: str) -> Experiment:
        """One experiment with its runs; a unique prefix of its id is enough."""
        check_id_prefix("experiment", experiment_id)
        with self.session() as s:
            query = (
                select(Experiment)
                .where(Experiment.id.startswith(experiment_id, autoescape=True))
                .options(selectinload(Experiment.runs))
            )
            matches = list(s.scalars(query))
            if len(matches) != 1:
                recent = s.scalars(select(Experiment.id).order_by(Experiment.created_at.desc()).limit(10))
                known = ", ".join(e[:8] for e in recent) or "none yet"
                what = (
                    "matches no experiment" if not matches else f"matches {len(matches)} experiments; give more of it"
                )
                error = AmbiguousIdError if matches else NotFoundError
                raise error(f"experiment id {experiment_id!r} {what}; recent experiments: {known}")
            return matches[0]

    def resolve(self, ident: str) -> tuple[str, list[Run]]:
        """A label and the runs behind ``ident``: every run of an experiment, or one run (a unique
        prefix of either id). Exports and reports accept both."""
        try:
            exp = self.experiment(ident)
            return f"experiment {exp.name} ({exp.id})", list(exp.runs)
        except AmbiguousIdError:
            raise  # a prefix of several experiments is not "no experiment": say so, not "matches no run"
        except NotFoundError:
            run = self.run(ident)  # neither: the error names recent runs
            return f"run {run.name or ''} ({run.id})", [run]

    def progress(self, run_ids: list[str]) -> tuple[int, int]:
        """(examples finished, rounds recorded) over ``run_ids``: what progress bars read."""
        with self.session() as s:
            done = s.scalar(select(func.count()).select_from(Outcome).join(Example).where(Example.run_id.in_(run_ids)))
            rounds = s.scalar(select(func.count()).select_from(Round).join(Example).where(Example.run_id.in_(run_ids)))
        return int(done or 0), int(rounds or 0)

    def examples(self, run_id: str) -> Iterator[Example]:
        """Examples of a run with their rounds, critiques and outcome loaded, in insertion order."""
        with self.session() as s:
            query = (
                select(Example)
                .where(Example.run_id == run_id)
                .order_by(Example.id)
                .options(
                    selectinload(Example.rounds).selectinload(Round.critiques),
                    selectinload(Example.rounds).selectinload(Round.judgements),
                    selectinload(Example.outcome),
                )
                .execution_options(yield_per=200)
            )
            yield from s.scalars(query)
