"""What each revision did to the problems its draft was flagged for: fixed, evaded, unchanged or
broken, with the evidence (the flagged claims and whether the revision still asserts them) and
any best-of-n candidates.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("correction", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("correction")
