"""Column types for personal data at rest: a 身份证号 is stored encrypted and looked up by its keyed hash."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

from actions import crypto

# What an encrypted column still allows: NULL tests and ordering. A comparison with a value could never match (each
# encryption has a fresh IV), so it is refused rather than left to find nothing.
_ALLOWED = frozenset(
    {
        operators.is_,
        operators.is_not,
        operators.asc_op,
        operators.desc_op,
        operators.nulls_first_op,
        operators.nulls_last_op,
    }
)


class EncryptedComparisonError(TypeError):
    """An encrypted column was compared with a value; compare its keyed hash instead."""


def _refuse(op: Any, other: tuple[Any, ...]) -> None:
    if op in _ALLOWED or (op in (operators.eq, operators.ne) and all(o is None for o in other)):
        return
    raise EncryptedComparisonError(
        "an encrypted column cannot be compared with a value: compare its keyed hash column, "
        "e.g. Person.id_number_hash == id_number_digest(number)"
    )


class EncryptedString(TypeDecorator):
    """Text stored as `crypto.cipher().encrypt(value)` and read back decrypted; None stays None.

    A value encrypted with another key raises `crypto.DecryptionError` when read, rather than returning garbage.
    """

    impl = String
    cache_ok = True

    class Comparator(TypeDecorator.Comparator):
        __slots__ = ()

        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            _refuse(op, other)
            return super().operate(op, *other, **kwargs)

        def reverse_operate(self, op: Any, other: Any, **kwargs: Any) -> Any:
            _refuse(op, (other,))
            return super().reverse_operate(op, other, **kwargs)

    comparator_factory = Comparator

    def __init__(self, length: int = 200) -> None:
        super().__init__(length)
        self.length = length

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"an encrypted column holds text, not {type(value).__name__}")
        return crypto.cipher().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else crypto.cipher().decrypt(value)


def canonical_id_number(id_number: str) -> str:
    """The form a 身份证号 is hashed in: no white space, an upper-case X (callers validate and normalise first)."""
    return "".join(id_number.split()).upper()


def id_number_digest(id_number: str) -> str:
    """The keyed hash by which a 身份证号 is looked up and kept unique (HMAC-SHA256, 64 hex characters)."""
    return crypto.cipher().digest(canonical_id_number(id_number))


def check_data_key(engine: Engine) -> None:
    """Start-up check: a stored 身份证号 decrypts with the process's key; `crypto.DecryptionError` if not.

    With another key every lookup by hash would miss, and an import would add the people a second time.
    A database that is not migrated yet, or holds no 身份证号, passes.
    """
    for table in ("persons", "enrollments", "cases"):
        try:
            with engine.connect() as connection:
                token = connection.execute(
                    text(f"SELECT id_number FROM {table} WHERE id_number LIKE 'f1:%' LIMIT 1")
                ).scalar_one_or_none()
        except SQLAlchemyError:
            return
        if token is not None:
            crypto.cipher().decrypt(token)
            return
