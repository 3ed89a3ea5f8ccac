"""personal data at rest: 身份证号 encrypted, with a keyed hash for lookups and unique constraints

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24

`persons`, `cases` and `enrollments` keep the 身份证号 as a Fernet token ("f1:…", actions/crypto.py) in a wider
`id_number`, and its keyed hash (HMAC-SHA256) in `id_number_hash`; the unique constraints move to the hash. The
cases' `fingerprint`, an unkeyed SHA-256 of the declaration including the 身份证号, is recomputed keyed.

The key comes from HELPLINE_DATA_KEY (for the embedded SQLite database: var/data.key) when the migration runs. Keep
it safe: without it the numbers cannot be read back. Rows already encrypted (a re-run) are left as they are.
SQLite zeroes the space the plain values leave (secure_delete); on PostgreSQL the old row versions stay in the
table files until `VACUUM FULL persons, cases, enrollments`.
"""

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from actions import crypto

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PREFIX = "f1:"  # what an encrypted value starts with (crypto.TOKEN_PREFIX at this revision)
TABLES = ("persons", "cases", "enrollments")
HASHED_OR_NOT = "(id_number IS NULL) = (id_number_hash IS NULL)"
CHUNK = 500


def _canonical(number: str) -> str:
    """As actions.db.types.canonical_id_number at this revision."""
    return "".join(number.split()).upper()


def _chunks(rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _rewrite_id_numbers(table: str, rewrite: Callable[[str], dict[str, Any]]) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text(f"SELECT id, id_number FROM {table} WHERE id_number IS NOT NULL")).fetchall()
    for chunk in _chunks(rows):
        params = [{"id": row_id, **rewrite(stored)} for row_id, stored in chunk]
        assignments = ", ".join(f"{name} = :{name}" for name in params[0] if name != "id")
        connection.execute(sa.text(f"UPDATE {table} SET {assignments} WHERE id = :id"), params)


def _encrypted(cipher: crypto.DataCipher) -> Callable[[str], dict[str, Any]]:
    def rewrite(stored: str) -> dict[str, Any]:
        if stored.startswith(PREFIX):
            return {"id_number": stored, "id_number_hash": cipher.digest(_canonical(cipher.decrypt(stored)))}
        return {"id_number": cipher.encrypt(stored), "id_number_hash": cipher.digest(_canonical(stored))}

    return rewrite


def _decrypted(cipher: crypto.DataCipher) -> Callable[[str], dict[str, Any]]:
    def rewrite(stored: str) -> dict[str, Any]:
        return {"id_number": cipher.decrypt(stored) if stored.startswith(PREFIX) else stored}

    return rewrite


CASES = sa.table(
    "cases",
    sa.column("id", sa.Integer()),
    sa.column("id_number", sa.String()),
    sa.column("cause", sa.String()),
    sa.column("amount", sa.Numeric(12, 2)),
    sa.column("household_income", sa.Numeric(12, 2)),
    sa.column("household_size", sa.Integer()),
    sa.column("description", sa.Text()),
    sa.column("fingerprint", sa.String()),
)


def _fingerprint_parts(row: Any, id_number: str) -> tuple[str, ...] | None:
    """The parts of `Declaration.fingerprint` from a stored case; None when the case lacks one of them."""
    if row.cause is None or row.household_income is None or row.household_size is None or row.description is None:
        return None
    words = re.sub(r"[\s\W_]+", "", row.description)
    amount = "" if row.amount is None else str(Decimal(row.amount).normalize())
    income = str(Decimal(row.household_income).normalize())
    return (id_number, row.cause, amount, income, str(row.household_size), words)


def _refingerprint(plain: Callable[[str], str], digest: Callable[[tuple[str, ...]], str]) -> None:
    """Recompute the fingerprint of every case that has one and a 身份证号 (the others have none)."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(CASES).where(CASES.c.fingerprint.is_not(None), CASES.c.id_number.is_not(None))
    ).fetchall()
    params = []
    for row in rows:
        parts = _fingerprint_parts(row, plain(row.id_number))
        params.append({"case_id": row.id, "new": None if parts is None else digest(parts)})
    for chunk in _chunks(params):
        connection.execute(
            CASES.update().where(CASES.c.id == sa.bindparam("case_id")).values(fingerprint=sa.bindparam("new")), chunk
        )


def _widen(batch_op: Any, nullable: bool) -> None:
    batch_op.alter_column("id_number", existing_type=sa.String(18), type_=sa.String(200), existing_nullable=nullable)


def _narrow(batch_op: Any, nullable: bool) -> None:
    batch_op.alter_column("id_number", existing_type=sa.String(200), type_=sa.String(18), existing_nullable=nullable)


def upgrade() -> None:
    cipher = crypto.cipher()
    # SQLite enforces no lengths: there the wider type comes with the constraints, so each table is copied once.
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("PRAGMA secure_delete = ON")  # the pages and cells the plain values leave are zeroed

    for table, nullable in (("persons", False), ("cases", True), ("enrollments", False)):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("id_number_hash", sa.String(length=64), nullable=True))
            if not sqlite:
                _widen(batch_op, nullable)

    for table in TABLES:
        _rewrite_id_numbers(table, _encrypted(cipher))
    _refingerprint(cipher.decrypt, lambda parts: cipher.digest("|".join(("declaration", *parts))))

    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_persons_id_number"), type_="unique")
        if sqlite:
            _widen(batch_op, False)
        batch_op.alter_column("id_number_hash", existing_type=sa.String(64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_persons_id_number_hash"), ["id_number_hash"])
    with op.batch_alter_table("cases", schema=None) as batch_op:
        if sqlite:
            _widen(batch_op, True)
        batch_op.create_check_constraint(op.f("ck_cases_id_number_hash"), sa.text(HASHED_OR_NOT))
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_enrollments_id_number_product_policy_year"), type_="unique")
        if sqlite:
            _widen(batch_op, False)
        batch_op.alter_column("id_number_hash", existing_type=sa.String(64), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_enrollments_id_number_hash_product_policy_year"), ["id_number_hash", "product", "policy_year"]
        )


def downgrade() -> None:
    cipher = crypto.cipher()
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA secure_delete = ON")  # no encrypted value is left in freed space either

    _refingerprint(
        lambda stored: cipher.decrypt(stored) if stored.startswith(PREFIX) else stored,
        lambda parts: hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest(),
    )
    for table in TABLES:
        _rewrite_id_numbers(table, _decrypted(cipher))

    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_enrollments_id_number_hash_product_policy_year"), type_="unique")
        batch_op.drop_column("id_number_hash")
        _narrow(batch_op, False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_enrollments_id_number_product_policy_year"), ["id_number", "product", "policy_year"]
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_cases_id_number_hash"), type_="check")
        batch_op.drop_column("id_number_hash")
        _narrow(batch_op, True)
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_persons_id_number_hash"), type_="unique")
        batch_op.drop_column("id_number_hash")
        _narrow(batch_op, False)
        batch_op.create_unique_constraint(batch_op.f("uq_persons_id_number"), ["id_number"])
