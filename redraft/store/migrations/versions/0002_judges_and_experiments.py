"""Critic accuracy as first-class columns: judge labels per round, the truth next to every
critique, the check turns needed to rebuild a conversation, and experiments grouping runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    # batch mode: SQLite cannot add a foreign key to an existing table in place.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("experiment_id", sa.String(32)))
        batch.add_column(sa.Column("cell", sa.String(200)))
        batch.create_foreign_key("fk_runs_experiment_id", "experiments", ["experiment_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_runs_experiment_id", ["experiment_id"])
        batch.create_unique_constraint("uq_runs_experiment_cell", ["experiment_id", "cell"])
    op.create_table(
        "judgements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("round_id", sa.Integer, sa.ForeignKey("rounds.id", ondelete="CASCADE"), nullable=False),
        sa.Column("judge", sa.String(100), nullable=False),
        sa.Column("good", sa.Boolean),
        sa.Column("score", sa.Float),
        sa.Column("detail", sa.Text, nullable=False),
        sa.UniqueConstraint("round_id", "judge", name="uq_judgements_round_judge"),
    )
    op.create_index("ix_judgements_round_id", "judgements", ["round_id"])
    with op.batch_alter_table("critiques") as batch:
        batch.add_column(sa.Column("question", sa.Text))
        batch.add_column(sa.Column("raw", sa.Text))
        batch.add_column(sa.Column("judge", sa.String(100)))
        batch.add_column(sa.Column("truth", sa.Boolean))
        batch.add_column(sa.Column("correct", sa.Boolean))


def downgrade() -> None:
    with op.batch_alter_table("critiques") as batch:
        for column in ("correct", "truth", "judge", "raw", "question"):
            batch.drop_column(column)
    op.drop_table("judgements")
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("uq_runs_experiment_cell", type_="unique")
        batch.drop_index("ix_runs_experiment_id")
        batch.drop_constraint("fk_runs_experiment_id", type_="foreignkey")
        batch.drop_column("cell")
        batch.drop_column("experiment_id")
    op.drop_table("experiments")
