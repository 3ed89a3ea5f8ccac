"""enrollment reference, the chat that enrolled, and payment

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import secrets

import sqlalchemy as sa
from alembic import op


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def upgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("channel", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("channel_user_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("paid_at", sa.DateTime(), nullable=True))

    # Rows written before this revision get a reference too, so the column can be NOT NULL.
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, policy_year FROM enrollments")).fetchall()
    for row_id, year in rows:
        reference = f"QH{year}-" + "".join(secrets.choice(ALPHABET) for _ in range(6))
        connection.execute(
            sa.text("UPDATE enrollments SET reference = :reference WHERE id = :id"),
            {"reference": reference, "id": row_id},
        )

    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.alter_column("reference", existing_type=sa.String(length=20), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_enrollments_reference"), ["reference"])
        batch_op.create_index("ix_enrollments_chat", ["channel", "channel_user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_chat")
        batch_op.drop_constraint(batch_op.f("uq_enrollments_reference"), type_="unique")
        batch_op.drop_column("paid_at")
        batch_op.drop_column("channel_user_id")
        batch_op.drop_column("channel")
        batch_op.drop_column("reference")
