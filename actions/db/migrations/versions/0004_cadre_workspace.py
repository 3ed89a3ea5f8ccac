"""cadre workspace: help measures, household changes (ABCD class), the audit log; notifications to declarants

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KINDS = "kind IN ('临时救助', '公益性岗位', '医疗救助', '产业帮扶', '教育资助', '就业帮扶', '危房改造', '兜底保障', '其他')"


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column("cadre_id", existing_type=sa.Integer(), nullable=True)
    op.create_table(
        "help_measures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("cadre_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(KINDS, name=op.f("ck_help_measures_kind")),
        sa.CheckConstraint("amount IS NULL OR amount >= 0", name=op.f("ck_help_measures_amount")),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"], name=op.f("fk_help_measures_cadre_id_cadres")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_help_measures_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_help_measures")),
    )
    op.create_index(op.f("ix_help_measures_case_id"), "help_measures", ["case_id"], unique=False)
    op.create_table(
        "household_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.String(length=32), nullable=True),
        sa.Column("new_value", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("cadre_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"], name=op.f("fk_household_changes_cadre_id_cadres")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_household_changes_household_id_households")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_changes")),
    )
    op.create_index(op.f("ix_household_changes_household_id"), "household_changes", ["household_id"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cadre_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("record_type", sa.String(length=32), nullable=True),
        sa.Column("record_ref", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"], name=op.f("fk_audit_log_cadre_id_cadres")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["created_at"], unique=False)
    op.create_index(op.f("ix_audit_log_cadre_id"), "audit_log", ["cadre_id"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE cadre_id IS NULL")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column("cadre_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index(op.f("ix_audit_log_cadre_id"), table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_household_changes_household_id"), table_name="household_changes")
    op.drop_table("household_changes")
    op.drop_index(op.f("ix_help_measures_case_id"), table_name="help_measures")
    op.drop_table("help_measures")
