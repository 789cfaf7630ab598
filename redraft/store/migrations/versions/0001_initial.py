"""Initial schema: runs, examples, rounds, critiques, outcomes.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("model_id", sa.String(500), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("critics", sa.JSON, nullable=False),
        sa.Column("redraft_version", sa.String(40), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("ended_at", TZ),
    )
    op.create_table(
        "examples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("source", sa.String(200)),
        sa.Column("labels", sa.JSON),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("run_id", "key", name="uq_examples_run_key"),
    )
    op.create_index("ix_examples_run_id", "examples", ["run_id"])
    op.create_table(
        "rounds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("example_id", sa.Integer, sa.ForeignKey("examples.id", ondelete="CASCADE"), nullable=False),
        sa.Column("index", sa.Integer, nullable=False),
        sa.Column("draft", sa.Text, nullable=False),
        sa.Column("n_tokens", sa.Integer, nullable=False),
        sa.Column("finish_reason", sa.String(20), nullable=False),
        sa.Column("gen_latency_s", sa.Float, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("example_id", "index", name="uq_rounds_example_index"),
    )
    op.create_index("ix_rounds_example_id", "rounds", ["example_id"])
    op.create_table(
        "critiques",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("round_id", sa.Integer, sa.ForeignKey("rounds.id", ondelete="CASCADE"), nullable=False),
        sa.Column("critic", sa.String(100), nullable=False),
        sa.Column("passed", sa.Boolean),
        sa.Column("score", sa.Float),
        sa.Column("feedback", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("latency_s", sa.Float, nullable=False),
    )
    op.create_index("ix_critiques_round_id", "critiques", ["round_id"])
    op.create_index("ix_critiques_critic", "critiques", ["critic"])
    op.create_table(
        "outcomes",
        sa.Column("example_id", sa.Integer, sa.ForeignKey("examples.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rounds_used", sa.Integer, nullable=False),
        sa.Column("final", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for table in ("outcomes", "critiques", "rounds", "examples", "runs"):
        op.drop_table(table)
