"""The 身份证号 at rest: stored encrypted, read back plain, looked up and kept unique by its keyed hash."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from actions import crypto
from actions.db.models import Enrollment, HardshipCase, Person
from actions.db.types import EncryptedComparisonError, id_number_digest
from tests.conftest import make_id_number
from tests.db.test_models import add_household

NUMBER = make_id_number("19491231", 2)
OTHER = make_id_number("19800101", 15)
WITH_X = "11010519491231002X"


def enrollment(year: int, number: str = NUMBER, reference: str = "AAAAAA") -> Enrollment:
    return Enrollment(reference=f"QH{year}-{reference}", product="qihuibao", policy_year=year, name="测试",
                      id_number=number, phone="13800138000", premium=Decimal(10))  # fmt: skip


def test_setting_the_number_sets_its_hash_before_any_flush() -> None:
    person = Person(name="张三", id_number=NUMBER)
    assert person.id_number_hash == id_number_digest(NUMBER) == crypto.cipher().digest(NUMBER)
    assert len(person.id_number_hash) == 64

    person.id_number = OTHER
    assert person.id_number_hash == id_number_digest(OTHER)

    case = HardshipCase(case_no="SB-2026-000001", id_number=NUMBER)
    case.id_number = None
    assert case.id_number_hash is None
    assert HardshipCase(case_no="SB-2026-000002").id_number_hash is None


def test_the_hash_is_of_the_canonical_form() -> None:
    assert id_number_digest(WITH_X.lower()) == id_number_digest(f" {WITH_X} ") == id_number_digest(WITH_X)
    assert id_number_digest(NUMBER) != id_number_digest(OTHER)


def test_stored_encrypted_read_back_plain_and_rehashed_on_change(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        session.add(Person(household=add_household(session), name="张三", id_number=NUMBER))

    with sessions.begin() as session:
        token, digest = session.execute(text("SELECT id_number, id_number_hash FROM persons")).one()
        assert token.startswith("f1:") and NUMBER not in token
        assert digest == id_number_digest(NUMBER)
        person = session.execute(select(Person).where(Person.id_number_hash == id_number_digest(NUMBER))).scalar_one()
        assert person.id_number == NUMBER
        person.id_number = OTHER

    with sessions() as session:
        assert session.execute(text("SELECT id_number_hash FROM persons")).scalar_one() == id_number_digest(OTHER)
        found = session.execute(select(Person).where(Person.id_number_hash == id_number_digest(OTHER))).scalar_one()
        assert found.id_number == OTHER
        assert session.execute(select(Person).where(Person.id_number_hash == id_number_digest(NUMBER))).first() is None


def test_each_value_gets_its_own_iv_but_the_same_hash(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        session.add_all([enrollment(2026), enrollment(2027)])
    with sessions() as session:
        rows = session.execute(text("SELECT id_number, id_number_hash FROM enrollments ORDER BY id")).all()
        assert rows[0][0] != rows[1][0]
        assert rows[0][1] == rows[1][1] == id_number_digest(NUMBER)
        assert [e.id_number for e in session.execute(select(Enrollment)).scalars()] == [NUMBER, NUMBER]


def test_the_unique_constraints_are_on_the_hash(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        household = add_household(session)
        session.add_all([Person(household=household, name="张三", id_number=WITH_X), enrollment(2026)])

    with pytest.raises(IntegrityError, match="persons.id_number_hash"), sessions.begin() as session:
        session.add(Person(household_id=household.id, name="张三三", id_number=WITH_X.lower()))
    with pytest.raises(IntegrityError, match="enrollments.id_number_hash"), sessions.begin() as session:
        session.add(enrollment(2026, reference="BBBBBB"))


def test_a_row_written_around_the_orm_without_its_hash_is_refused(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        household_id = add_household(session).id

    with pytest.raises(IntegrityError, match="id_number_hash"), sessions.begin() as session:
        session.execute(insert(Person).values(household_id=household_id, name="张三", id_number=NUMBER))
    with pytest.raises(IntegrityError, match="ck_cases_id_number_hash"), sessions.begin() as session:
        session.execute(insert(HardshipCase).values(case_no="SB-2026-000001", status="已提交", id_number=NUMBER))


@pytest.mark.parametrize(
    "compare",
    [
        lambda: Person.id_number == NUMBER,
        lambda: Person.id_number != NUMBER,
        lambda: Enrollment.id_number.between("1", "9"),
        lambda: Enrollment.id_number.in_([NUMBER]),
        lambda: HardshipCase.id_number.like("3703%"),
        lambda: HardshipCase.id_number.startswith("3703"),
    ],
)
def test_comparing_the_encrypted_column_with_a_value_is_refused(compare) -> None:  # type: ignore[no-untyped-def]
    """It could never match (a fresh IV each time): a loud error instead of an empty result."""
    with pytest.raises(EncryptedComparisonError, match="id_number_hash"):
        compare()


def test_null_tests_and_ordering_on_the_encrypted_column_still_work(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        session.add_all(
            [HardshipCase(case_no="SB-2026-000001", id_number=NUMBER), HardshipCase(case_no="SB-2026-000002")]
        )
    with sessions() as session:
        missing = select(HardshipCase.case_no).where(HardshipCase.id_number == None)  # noqa: E711
        assert session.execute(missing).scalars().all() == ["SB-2026-000002"]
        known = select(HardshipCase.case_no).where(HardshipCase.id_number.is_not(None))
        assert session.execute(known).scalars().all() == ["SB-2026-000001"]
        assert len(session.execute(select(HardshipCase).order_by(HardshipCase.id_number.desc())).all()) == 2


def test_a_value_of_another_key_raises_instead_of_reading_garbage(sessions: sessionmaker) -> None:
    other = crypto.DataCipher(crypto.decode_secret(crypto.new_secret()))
    with sessions.begin() as session:
        session.add(enrollment(2026))
    with sessions.begin() as session:
        session.execute(text("UPDATE enrollments SET id_number = :token"), {"token": other.encrypt(NUMBER)})
    with sessions() as session, pytest.raises(crypto.DecryptionError, match="another key"):
        session.execute(select(Enrollment)).scalar_one()
    with sessions.begin() as session:
        session.execute(text("UPDATE enrollments SET id_number = :plain"), {"plain": NUMBER})
    with sessions() as session, pytest.raises(crypto.DecryptionError, match="not an encrypted value"):
        session.execute(select(Enrollment)).scalar_one()


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another HELPLINE_DATA_KEY: other hashes, and the first key's values cannot be read."""
    token = crypto.cipher().encrypt(NUMBER)
    digest = id_number_digest(NUMBER)
    monkeypatch.setenv("HELPLINE_DATA_KEY", crypto.new_secret())
    crypto.configure(None)
    assert id_number_digest(NUMBER) != digest
    with pytest.raises(crypto.DecryptionError):
        crypto.cipher().decrypt(token)
