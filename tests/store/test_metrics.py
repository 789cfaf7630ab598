"""The record rules written once in the store (ground truth, change) and their SQL forms."""

from __future__ import annotations

import itertools

from sqlalchemy import column, create_engine, select, table

from redraft.store.base import CHANGES, change
from redraft.store.models import change_is


def test_the_sql_change_filter_is_the_change_rule_on_every_label_pair():
    """Oracle: ``store.base.change`` on each of the nine (first, final) label pairs; the SQL
    condition the browser view filters with must select exactly the pairs it names."""
    pairs = list(itertools.product([None, False, True], repeat=2))
    labels = table("labels", column("i"), column("first"), column("final"))
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE labels (i INTEGER, first BOOLEAN, final BOOLEAN)")
        conn.execute(labels.insert(), [{"i": i, "first": a, "final": b} for i, (a, b) in enumerate(pairs)])
        for kind in CHANGES:
            picked = set(conn.scalars(select(labels.c.i).where(change_is(kind, labels.c.first, labels.c.final))))
            assert picked == {i for i, (a, b) in enumerate(pairs) if change(a, b) == kind}, kind


def test_a_stored_critique_and_judgement_have_exactly_the_fields_of_the_models():
    """The record's field lists are the one mapping between critics/judges and the tables: a
    field added to ``Critique`` or ``Label`` without a column (or the reverse) fails here."""
    from redraft.critics import Critique
    from redraft.judges.base import Label
    from redraft.store.base import CRITIQUE_FIELDS, JUDGEMENT_FIELDS, ROUND_FIELDS, RoundRecord
    from redraft.store.models import CritiqueRow, Judgement, Round

    assert set(CRITIQUE_FIELDS) == set(Critique.model_fields)
    assert set(JUDGEMENT_FIELDS) == set(Label.model_fields)
    assert set(CRITIQUE_FIELDS) <= set(CritiqueRow.__table__.columns.keys())
    assert set(JUDGEMENT_FIELDS) <= set(Judgement.__table__.columns.keys())
    assert set(ROUND_FIELDS) <= set(RoundRecord.__annotations__)
    assert set(ROUND_FIELDS) <= set(Round.__table__.columns.keys())
