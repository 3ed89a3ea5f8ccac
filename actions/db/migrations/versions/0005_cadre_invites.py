"""cadre invitations: one-time codes with which a new cadre binds a chat account

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cadre_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_by_cadre_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("cadre_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"], name=op.f("fk_cadre_invites_cadre_id_cadres")),
        sa.ForeignKeyConstraint(
            ["created_by_cadre_id"], ["cadres.id"], name=op.f("fk_cadre_invites_created_by_cadre_id_cadres")
        ),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_cadre_invites_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cadre_invites")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_cadre_invites_code_hash")),
    )


def downgrade() -> None:
    op.drop_table("cadre_invites")
