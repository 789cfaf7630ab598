"""SQLAlchemy 2 models: experiments → runs → examples → rounds → critiques and judgements, and one
outcome per example.

Critic accuracy is first-class: every critique row carries the judge's label for the same draft
(``truth``) and whether the critic agreed with it (``correct``), so accuracy per critic and
round is a plain ``GROUP BY`` (:mod:`redraft.analysis.metrics`).

The schema is created by Alembic (``redraft/store/migrations``); these classes are the single
definition both the migration and the queries are checked against (``tests/store``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    or_,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from redraft.store.base import Change


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Experiment(Base):
    """A grid of runs (datasets × critics × modes × max_rounds) from one experiment file."""

    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    runs: Mapped[list[Run]] = relationship(back_populates="experiment", order_by="Run.started_at")


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("experiment_id", "cell", name="uq_runs_experiment_cell"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    model_id: Mapped[str] = mapped_column(String(500))
    config: Mapped[dict[str, Any]]
    critics: Mapped[list[Any]]
    redraft_version: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    experiment_id: Mapped[str | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE", name="fk_runs_experiment_id"), index=True
    )
    cell: Mapped[str | None] = mapped_column(String(200))
    """The grid cell this run is within its experiment, e.g. ``cac/self-harm/r3``."""

    experiment: Mapped[Experiment | None] = relationship(back_populates="runs")
    examples: Mapped[list[Example]] = relationship(back_populates="run", order_by="Example.id")

    @property
    def label(self) -> str:
        """How reports and pages name the run: its experiment cell, its name, or its short id."""
        return self.cell or self.name or self.id[:8]

    @property
    def directions(self) -> dict[str, bool]:
        """Critic name → ``higher_is_better``: which way each critic's score points, from the
        critic descriptions stored with the run."""
        return {
            str(c["name"]): c["higher_is_better"]
            for c in self.critics
            if isinstance(c, dict) and "name" in c and isinstance(c.get("higher_is_better"), bool)
        }

    @property
    def critic_names(self) -> list[str]:
        """The names of the run's critics, in the order they ran."""
        return [str(c["name"]) for c in self.critics if isinstance(c, dict) and c.get("name")]


class Example(Base):
    __tablename__ = "examples"
    __table_args__ = (UniqueConstraint("run_id", "key", name="uq_examples_run_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    """The caller's example id (dataset row id or a generated uuid)."""
    prompt: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(200))
    labels: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    run: Mapped[Run] = relationship(back_populates="examples")
    rounds: Mapped[list[Round]] = relationship(back_populates="example", order_by="Round.index")
    outcome: Mapped[Outcome | None] = relationship(back_populates="example")


class Round(Base):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("example_id", "index", name="uq_rounds_example_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    draft: Mapped[str] = mapped_column(Text)
    n_tokens: Mapped[int] = mapped_column(Integer)
    finish_reason: Mapped[str] = mapped_column(String(20))
    gen_latency_s: Mapped[float] = mapped_column(Float)
    correction: Mapped[dict[str, Any] | None]
    """For a revision: what it did to its draft's findings (``CorrectionRecord`` in
    ``redraft.store.base``); ``None`` for first drafts and runs logged before it existed."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    example: Mapped[Example] = relationship(back_populates="rounds")
    critiques: Mapped[list[CritiqueRow]] = relationship(back_populates="round", order_by="CritiqueRow.id")
    judgements: Mapped[list[Judgement]] = relationship(back_populates="round", order_by="Judgement.id")


class CritiqueRow(Base):
    __tablename__ = "critiques"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    critic: Mapped[str] = mapped_column(String(100), index=True)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    score: Mapped[float | None] = mapped_column(Float)
    feedback: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[Any]]
    latency_s: Mapped[float] = mapped_column(Float)
    question: Mapped[str | None] = mapped_column(Text)
    """The check question a model-based critic asked (``cac`` mode replays it as context)."""
    raw: Mapped[str | None] = mapped_column(Text)
    """The model's unparsed answer to that question."""
    judge: Mapped[str | None] = mapped_column(String(100))
    """The judge whose label is the ground truth below (the example's judge)."""
    truth: Mapped[bool | None] = mapped_column(Boolean)
    """The judge's label for the same draft: True good, False bad, None unknown."""
    correct: Mapped[bool | None] = mapped_column(Boolean)
    """``passed == truth``; None when either is unknown. Critic accuracy is the mean of this."""

    round: Mapped[Round] = relationship(back_populates="critiques")


class Judgement(Base):
    """A judge's ground-truth label for one draft."""

    __tablename__ = "judgements"
    __table_args__ = (UniqueConstraint("round_id", "judge", name="uq_judgements_round_judge"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    judge: Mapped[str] = mapped_column(String(100))
    good: Mapped[bool | None] = mapped_column(Boolean)
    score: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text)

    round: Mapped[Round] = relationship(back_populates="judgements")


class Outcome(Base):
    __tablename__ = "outcomes"

    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    rounds_used: Mapped[int] = mapped_column(Integer)
    final: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    example: Mapped[Example] = relationship(back_populates="outcome")


def change_is(kind: Change, first: ColumnElement[Any], final: ColumnElement[Any]) -> ColumnElement[bool]:
    """The SQL condition that an example's labels ``first`` → ``final`` are a change of ``kind``:
    :func:`redraft.store.base.change` as a query filter (tested equal on every label pair)."""
    conditions: dict[Change, ColumnElement[bool]] = {
        "improved": and_(first.is_(False), final.is_(True)),
        "worsened": and_(first.is_(True), final.is_(False)),
        "unchanged": and_(first.is_not(None), first == final),
        "unlabelled": or_(first.is_(None), final.is_(None)),
    }
    return conditions[kind]
