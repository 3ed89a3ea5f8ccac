"""case numbers from a per-year counter row, so that concurrent submissions wait instead of colliding

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

import re

import sqlalchemy as sa
from alembic import op


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CASE_NO = re.compile(r"SB-(\d{4})-(\d+)")


def upgrade() -> None:
    table = op.create_table(
        "case_numbers",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_case_numbers")),
    )
    highest: dict[int, int] = {}
    for (case_no,) in op.get_bind().execute(sa.text("SELECT case_no FROM cases")):
        found = CASE_NO.fullmatch(case_no or "")
        if found:
            year, number = int(found.group(1)), int(found.group(2))
            highest[year] = max(highest.get(year, 0), number)
    if highest:
        op.bulk_insert(table, [{"year": year, "last": last} for year, last in sorted(highest.items())])


def downgrade() -> None:
    op.drop_table("case_numbers")
