"""self-declared hardship cases: declarant, figures, triage, idempotency, assignments and notifications

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The first status of a case is now 已提交 (was 待核实): the workflow is 已提交 → 核实中 → 纳入监测 / 即时帮扶 / 不予纳入
→ 风险消除.
"""

import sqlalchemy as sa
from alembic import op


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('待核实', '核实中', '纳入监测', '即时帮扶', '不予纳入', '风险消除')"
NEW_STATUSES = "status IN ('已提交', '核实中', '纳入监测', '即时帮扶', '不予纳入', '风险消除')"
CATEGORIES = "category IS NULL OR category IN ('脱贫不稳定户', '边缘易致贫户', '突发严重困难户', '暂不符合')"
RISKS = "risk IS NULL OR risk IN ('高', '中', '低')"
SIZES = "household_size IS NULL OR household_size BETWEEN 1 AND 30"


def _rename_status(old: str, new: str) -> None:
    for table, column in (("cases", "status"), ("case_events", "to_status"), ("case_events", "from_status")):
        op.execute(sa.text(f"UPDATE {table} SET {column} = :new WHERE {column} = :old").bindparams(old=old, new=new))


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_cases_status"), type_="check")
        batch_op.add_column(sa.Column("name", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("id_number", sa.String(length=18), nullable=True))
        batch_op.add_column(sa.Column("phone", sa.String(length=11), nullable=True))
        batch_op.add_column(sa.Column("address", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("household_income", sa.Numeric(precision=12, scale=2), nullable=True))
        batch_op.add_column(sa.Column("household_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("risk", sa.String(length=1), nullable=True))
        batch_op.add_column(sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("reasons", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("due_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("channel", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("channel_user_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("submission_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))

    _rename_status("待核实", "已提交")

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.alter_column("urgent", existing_type=sa.Boolean(), server_default=None)
        batch_op.create_check_constraint("status", sa.text(NEW_STATUSES))
        batch_op.create_check_constraint("category", sa.text(CATEGORIES))
        batch_op.create_check_constraint("risk", sa.text(RISKS))
        batch_op.create_check_constraint("household_size", sa.text(SIZES))
        batch_op.create_unique_constraint(batch_op.f("uq_cases_submission_key"), ["submission_key"])
        batch_op.create_index(batch_op.f("ix_cases_fingerprint"), ["fingerprint"], unique=False)
        batch_op.create_index("ix_cases_chat", ["channel", "channel_user_id"], unique=False)

    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor", sa.String(length=64), nullable=True))

    op.create_table(
        "case_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("cadre_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"], name=op.f("fk_case_assignments_cadre_id_cadres")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_assignments_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_assignments")),
        sa.UniqueConstraint("case_id", "cadre_id", name=op.f("uq_case_assignments_case_id_cadre_id")),
    )
    with op.batch_alter_table("case_assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_assignments_cadre_id"), ["cadre_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_assignments_case_id"), ["case_id"], unique=False)

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cadre_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("channel_user_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"], name=op.f("fk_notifications_cadre_id_cadres")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_notifications_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_cadre_id"), ["cadre_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_notifications_pending", ["channel", "sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_pending")
        batch_op.drop_index(batch_op.f("ix_notifications_case_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_cadre_id"))
    op.drop_table("notifications")
    with op.batch_alter_table("case_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_assignments_case_id"))
        batch_op.drop_index(batch_op.f("ix_case_assignments_cadre_id"))
    op.drop_table("case_assignments")
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_column("actor")

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_chat")
        batch_op.drop_index(batch_op.f("ix_cases_fingerprint"))
        batch_op.drop_constraint(batch_op.f("uq_cases_submission_key"), type_="unique")
        for name in ("household_size", "risk", "category", "status"):
            batch_op.drop_constraint(op.f(f"ck_cases_{name}"), type_="check")
    _rename_status("已提交", "待核实")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_check_constraint("status", sa.text(OLD_STATUSES))
        for column in (
            "fingerprint", "submission_key", "channel_user_id", "channel", "due_on", "reasons", "urgent", "risk",
            "category", "household_size", "household_income", "address", "phone", "id_number", "name",
        ):  # fmt: skip
            batch_op.drop_column(column)
