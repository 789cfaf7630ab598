"""SQL recorder and readers on SQLAlchemy 2: SQLite by default, PostgreSQL for shared runs."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, selectinload

import redraft
from redraft.errors import StoreUnavailableError
from redraft.graphs.state import RoundRecord
from redraft.store.base import ExampleInfo, OutcomeInfo, Recorder, RunInfo
from redraft.store.models import CritiqueRow, Example, Experiment, Judgement, Outcome, Round, Run, utcnow

DEFAULT_URL = "sqlite:///redraft.db"
_MIGRATIONS = Path(__file__).parent / "migrations"


def _redact(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # Several writers (CLI runs, test threads) may share one file: wait for the lock, don't fail.
    cursor.execute("PRAGMA busy_timeout=30000")
    # WAL lets readers (``redraft show``, progress bars) run beside a writer, and with
    # synchronous=NORMAL a commit needs no fsync: a power cut may lose the last rounds, but
    # never leaves a half-written one (each round is one transaction).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def connect(url: str) -> Engine:
    """Open ``url`` and check it answers, or raise :class:`StoreUnavailableError` naming the fix."""
    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreUnavailableError(
            f"{url!r} is not a usable SQLAlchemy URL ({exc}). "
            "Use e.g. sqlite:///redraft.db or postgresql+psycopg://user:pass@host/db."
        ) from exc
    except ModuleNotFoundError as exc:
        raise ImportError(
            f"the driver for {_redact(url)} is not installed ({exc.name}). "
            'For PostgreSQL: pip install "redraft[postgres]"'
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        hint = (
            "check that the directory exists and is writable"
            if engine.dialect.name == "sqlite"
            else "check that the server is running and the host, port, user and database are right"
        )
        reason = " ".join(str(exc.orig).split()).rstrip(".?")
        raise StoreUnavailableError(
            f"cannot open database {_redact(url)}: {reason}. Fix: {hint}, or pass store=None to run without logging."
        ) from exc
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on an empty database)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def round_record(r: Round) -> RoundRecord:
    """A stored round back in the graph's state format (what ``Corrector`` replays on resume)."""
    return {
        "index": r.index,
        "draft": r.draft,
        "n_tokens": r.n_tokens,
        "finish_reason": r.finish_reason,
        "gen_latency_s": r.gen_latency_s,
        "critiques": [
            {
                "critic": c.critic,
                "passed": c.passed,
                "score": c.score,
                "feedback": c.feedback,
                "evidence": list(c.evidence),
                "question": c.question,
                "raw": c.raw,
                "latency_s": c.latency_s,
            }
            for c in r.critiques
        ],
        "judgements": [{"judge": j.judge, "good": j.good, "score": j.score, "detail": j.detail} for j in r.judgements],
    }


def _critique_row(c: dict[str, Any], truth: dict[str, Any] | None) -> CritiqueRow:
    good = truth["good"] if truth is not None else None
    passed = c["passed"]
    return CritiqueRow(
        critic=c["critic"],
        passed=passed,
        score=c["score"],
        feedback=c["feedback"],
        evidence=list(c["evidence"]),
        latency_s=c["latency_s"],
        question=c.get("question"),
        raw=c.get("raw"),
        judge=truth["judge"] if truth is not None else None,
        truth=good,
        # An abstention (passed=None) is neither right nor wrong: it drops out of accuracy and is
        # counted separately as coverage.
        correct=None if passed is None or good is None else passed == good,
    )


class SQLStore(Recorder):
    """Records runs to any SQLAlchemy URL and reads them back.

    Example:
        >>> store = SQLStore("sqlite://")  # in memory
        >>> run_id = store.start_run(RunInfo(model_id="m", config={}, critics=[]))
        >>> [r.id for r in store.runs()] == [run_id]
        True
    """

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = url
        self.engine = connect(url)
        # A store dropped without close() (e.g. inside a garbage-collected graph) still closes its
        # pooled connections instead of leaking them to the driver's finalizer.
        self._finalizer = weakref.finalize(self, self.engine.dispose)
        migrate(self.engine)

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
                    redraft_version=redraft.__version__,
                    experiment_id=info.experiment_id,
                    cell=info.cell,
                )
            )
        return run_id

    def record_round(
        self, run_id: str, example: ExampleInfo, round_: RoundRecord, outcome: OutcomeInfo | None = None
    ) -> None:
        # A concurrent writer may insert the same example or round between our read and our
        # write; the unique constraints reject the loser, and the retry then sees the row.
        for attempt in range(3):
            try:
                with self.session() as s, s.begin():
                    self._write_round(s, run_id, example, round_, outcome)
                return
            except IntegrityError:
                if attempt == 2:
                    raise

    def _write_round(
        self, s: Session, run_id: str, example: ExampleInfo, round_: RoundRecord, outcome: OutcomeInfo | None
    ) -> None:
        ex = s.scalar(select(Example).where(Example.run_id == run_id, Example.key == example.key))
        if ex is None:
            ex = Example(
                run_id=run_id,
                key=example.key,
                prompt=example.prompt,
                source=example.source,
                labels=example.labels,
            )
            s.add(ex)
            s.flush()
        exists = s.scalar(select(Round.id).where(Round.example_id == ex.id, Round.index == round_["index"]))
        if exists is None:
            judgements = round_.get("judgements", [])
            truth = judgements[0] if judgements else None
            s.add(
                Round(
                    example_id=ex.id,
                    index=round_["index"],
                    draft=round_["draft"],
                    n_tokens=round_["n_tokens"],
                    finish_reason=round_["finish_reason"],
                    gen_latency_s=round_["gen_latency_s"],
                    critiques=[_critique_row(c, truth) for c in round_["critiques"]],
                    judgements=[
                        Judgement(judge=j["judge"], good=j["good"], score=j["score"], detail=j["detail"])
                        for j in judgements
                    ],
                )
            )
        if outcome is not None and s.get(Outcome, ex.id) is None:
            s.add(Outcome(example_id=ex.id, **outcome.model_dump()))
            # A library user never calls finish_run, so the last finished example dates the run.
            s.execute(update(Run).where(Run.id == run_id).values(ended_at=utcnow()))

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
        with self.session() as s:
            matches = list(s.scalars(select(Run).where(Run.id.startswith(run_id))))
        if len(matches) != 1:
            known = ", ".join(r.id[:8] for r in self.runs()[:10]) or "none yet"
            what = "matches no run" if not matches else f"matches {len(matches)} runs"
            raise KeyError(f"run id {run_id!r} {what}; recent runs: {known}")
        return matches[0]

    def experiment(self, experiment_id: str) -> Experiment:
        """One experiment with its runs; a unique prefix of its id is enough."""
        with self.session() as s:
            query = (
                select(Experiment).where(Experiment.id.startswith(experiment_id)).options(selectinload(Experiment.runs))
            )
            matches = list(s.scalars(query))
            if len(matches) != 1:
                recent = s.scalars(select(Experiment.id).order_by(Experiment.created_at.desc()).limit(10))
                known = ", ".join(e[:8] for e in recent) or "none yet"
                what = "matches no experiment" if not matches else f"matches {len(matches)} experiments"
                raise KeyError(f"experiment id {experiment_id!r} {what}; recent experiments: {known}")
            return matches[0]

    def resolve(self, ident: str) -> tuple[str, list[Run]]:
        """A label and the runs behind ``ident``: every run of an experiment, or one run (a unique
        prefix of either id). Exports and reports accept both."""
        try:
            exp = self.experiment(ident)
            return f"experiment {exp.name} ({exp.id})", list(exp.runs)
        except KeyError:
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
