from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from actions.db.models import (
    Cadre,
    CaseEvent,
    ChatIdentity,
    Enrollment,
    HardshipCase,
    Household,
    Person,
    Region,
)

pytestmark = pytest.mark.filterwarnings("ignore:Dialect sqlite.pysqlite does .not. support Decimal")

VILLAGE_PATH = "淄博市/淄川区/太河镇/测试村"


def add_village(session: Session) -> Region:
    parent = None
    names = VILLAGE_PATH.split("/")
    for depth, (name, level) in enumerate(zip(names, ("市", "区县", "乡镇", "村"), strict=True)):
        parent = Region(name=name, level=level, parent=parent, path="/".join(names[: depth + 1]))
        session.add(parent)
    session.flush()
    assert parent is not None
    return parent


def add_household(session: Session, code: str = "T-0001", **fields: Any) -> Household:
    region = session.execute(select(Region).where(Region.path == VILLAGE_PATH)).scalar_one_or_none()
    household = Household(
        code=code, region=region or add_village(session), status=fields.pop("status", "脱贫户"), **fields
    )
    session.add(household)
    session.flush()
    return household


def enrollment(id_number: str = "370399198001010015", premium: str = "10.00", year: int = 2026) -> Enrollment:
    return Enrollment(
        reference=f"QH{year}-{id_number[-6:]}",
        product="qihuibao",
        policy_year=year,
        name="测试",
        id_number=id_number,
        phone="13800138000",
        premium=Decimal(premium),
    )


def count(sessions: sessionmaker, model: type) -> int:
    with sessions() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_household_with_members_round_trips(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        household = add_household(session, size=2, is_registered_poor=True)
        household.members.append(
            Person(name="张三", id_number="370399198001010015", phone="13800138000", birth_date=dt.date(1980, 1, 1))
        )
        household.members.append(Person(name="李四", id_number="37039919800101004X"))

    with sessions() as session:
        stored = session.execute(select(Household).where(Household.code == "T-0001")).scalar_one()
        assert stored.region.path == VILLAGE_PATH
        assert stored.region.level == "村"
        assert stored.region.parent.path == "淄博市/淄川区/太河镇"
        assert stored.is_registered_poor is True
        assert stored.is_synthetic is False
        assert stored.size == 2
        assert [(p.name, p.birth_date) for p in stored.members] == [("张三", dt.date(1980, 1, 1)), ("李四", None)]
        assert isinstance(stored.created_at, dt.datetime)


def test_household_code_is_unique(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        add_household(session, "T-0001")

    with pytest.raises(IntegrityError, match="households.code"), sessions.begin() as session:
        add_household(session, "T-0001")
    assert count(sessions, Household) == 1


def test_id_number_is_unique(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        household = add_household(session)
        session.add(Person(household=household, name="张三", id_number="370399198001010015"))

    with pytest.raises(IntegrityError, match="persons.id_number"), sessions.begin() as session:
        household = session.execute(select(Household)).scalar_one()
        session.add(Person(household=household, name="张三三", id_number="370399198001010015"))
        session.flush()
    assert count(sessions, Person) == 1


def test_region_parent_and_name_are_unique(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        city = Region(name="淄博市", level="市", path="淄博市")
        session.add_all([city, Region(name="淄川区", level="区县", parent=city, path="淄博市/淄川区")])

    with pytest.raises(IntegrityError, match="regions.parent_id, regions.name"), sessions.begin() as session:
        city = session.execute(select(Region).where(Region.path == "淄博市")).scalar_one()
        session.add(Region(name="淄川区", level="区县", parent=city, path="淄博市/淄川区 "))
        session.flush()


@pytest.mark.parametrize(
    "fields",
    [{"status": "富裕户"}, {"abcd_class": "E"}, {"size": 0}, {"size": 31}],
    ids=["status", "abcd-class", "size-0", "size-31"],
)
def test_household_check_constraints(sessions: sessionmaker, fields: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError, match="CHECK constraint failed"), sessions.begin() as session:
        add_household(session, **fields)
    assert count(sessions, Household) == 0


def test_household_accepts_every_abcd_class(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        for n, abcd in enumerate("ABCD"):
            add_household(session, f"T-{n}", abcd_class=abcd, size=30)
    assert count(sessions, Household) == 4


def test_region_level_check_constraint(sessions: sessionmaker) -> None:
    with pytest.raises(IntegrityError, match="CHECK constraint failed"), sessions.begin() as session:
        session.add(Region(name="山东省", level="省", path="山东省"))
        session.flush()


def test_case_status_check_constraint(sessions: sessionmaker) -> None:
    with pytest.raises(IntegrityError, match="CHECK constraint failed"), sessions.begin() as session:
        session.add(HardshipCase(case_no="SB-2026-000001", status="已完成"))
        session.flush()


def test_chat_identity_needs_a_person_or_a_cadre(sessions: sessionmaker) -> None:
    with pytest.raises(IntegrityError, match="CHECK constraint failed"), sessions.begin() as session:
        session.add(ChatIdentity(channel="telegram", channel_user_id="42"))
        session.flush()
    assert count(sessions, ChatIdentity) == 0


def test_chat_identity_is_unique_per_channel(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        cadre = Cadre(name="李四", region=add_village(session))
        session.add_all(
            [
                ChatIdentity(channel="telegram", channel_user_id="42", cadre=cadre),
                ChatIdentity(channel="rest", channel_user_id="42", cadre=cadre),
            ]
        )

    with pytest.raises(IntegrityError), sessions.begin() as session:
        cadre = session.execute(select(Cadre)).scalar_one()
        session.add(ChatIdentity(channel="telegram", channel_user_id="42", cadre=cadre))
        session.flush()
    assert count(sessions, ChatIdentity) == 2


def test_foreign_keys_are_enforced_on_sqlite(sessions: sessionmaker) -> None:
    with pytest.raises(IntegrityError, match="FOREIGN KEY constraint failed"), sessions.begin() as session:
        session.add(Person(household_id=999, name="张三", id_number="370399198001010015"))
        session.flush()
    assert count(sessions, Person) == 0


def test_enrollment_premium_is_a_decimal(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        session.add(enrollment(premium="10"))

    with sessions() as session:
        stored = session.execute(select(Enrollment)).scalar_one()
        assert isinstance(stored.premium, Decimal)
        assert stored.premium == Decimal("10.00")
        assert str(stored.premium) == "10.00"
        assert stored.verified is False


def test_enrollment_is_unique_per_id_number_product_and_year(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        session.add_all([enrollment(year=2025), enrollment(year=2026), enrollment("37039919800101004X", year=2026)])

    with pytest.raises(IntegrityError, match="UNIQUE constraint failed"), sessions.begin() as session:
        session.add(enrollment(premium="20.00", year=2026))
        session.flush()
    assert count(sessions, Enrollment) == 3


def test_case_events_are_ordered_by_id(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        first = HardshipCase(case_no="SB-2026-000001")
        second = HardshipCase(case_no="SB-2026-000002")
        session.add_all([first, second])
        session.flush()
        session.add_all(
            [
                CaseEvent(id=30, case=first, from_status="核实中", to_status="纳入监测"),
                CaseEvent(id=10, case=first, from_status=None, to_status="已提交"),
                CaseEvent(id=15, case=second, from_status=None, to_status="已提交"),
                CaseEvent(id=20, case=first, from_status="已提交", to_status="核实中"),
            ]
        )

    with sessions() as session:
        case = session.execute(select(HardshipCase).where(HardshipCase.case_no == "SB-2026-000001")).scalar_one()
        assert case.status == "已提交"
        assert [(e.id, e.to_status) for e in case.events] == [(10, "已提交"), (20, "核实中"), (30, "纳入监测")]


def test_database_errors_do_not_carry_personal_data(sessions: sessionmaker) -> None:
    """Errors are logged with logger.exception; the 身份证号 of the failed row must not be in their text."""
    with sessions.begin() as session:
        session.add(enrollment(id_number="370399198001010015"))
    with pytest.raises(IntegrityError) as failure, sessions.begin() as session:
        session.add(enrollment(id_number="370399198001010015"))
    assert "370399198001010015" not in str(failure.value)
    assert "hidden due to hide_parameters" in str(failure.value)
