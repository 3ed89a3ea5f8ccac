"""Hardship cases: submission (triage, assignment, notification, idempotency) and the status workflow."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from actions.db.models import Cadre, CaseAssignment, ChatIdentity, HardshipCase, Household, Notification, Person
from actions.services.cases import (
    CLEARED,
    MONITORED,
    REFUSED,
    SUBMITTED,
    URGENT_HELP,
    VERIFYING,
    CaseView,
    Declaration,
    TransitionError,
    case_by_number,
    cases_of_chat,
    declarant_of_chat,
    submit,
    transition,
)
from actions.services.regions import get_or_create_region, resolve_address
from actions.services.triage import EDGE, NOT_ELIGIBLE, SUDDEN, UNSTABLE, MonitoringRules
from tests.conftest import POOR_ID, make_id_number

VILLAGE = "淄博市/淄川区/太河镇/东峪村"
NOW = dt.datetime(2026, 11, 23, 2, 0)  # UTC: Monday 10:00 in China
OTHER_ID = make_id_number("19700303", 31)


def describe(case: CaseView) -> str:
    return f"新申报 {case.case_no}"


@pytest.fixture
def rules() -> MonitoringRules:
    return MonitoringRules.load()


@pytest.fixture
def world(sessions: sessionmaker) -> sessionmaker:
    """A village with a 建档立卡 household, a town cadre, a county cadre, an administrator elsewhere."""
    with sessions.begin() as session:
        village = get_or_create_region(session, VILLAGE.split("/"))
        town = get_or_create_region(session, VILLAGE.split("/")[:3])
        county = get_or_create_region(session, VILLAGE.split("/")[:2])
        household = Household(code="T-1", region=village, status="脱贫户", is_registered_poor=True, size=3)
        session.add(Person(household=household, name="王志强", id_number=POOR_ID, phone="13300002486"))
        for name, region, chat, admin in (
            ("刘书记", town, "cadre-town", False),
            ("赵主任", county, "cadre-county", False),
            ("孙科长", get_or_create_region(session, ["枣庄市"]), "cadre-admin", True),
        ):
            cadre = Cadre(name=name, region=region, is_admin=admin)
            session.add(ChatIdentity(channel="telegram", channel_user_id=chat, cadre=cadre))
        session.flush()
    return sessions


def declaration(**overrides: object) -> Declaration:
    base = Declaration(
        name="王志强",
        id_number=POOR_ID,
        phone="13300002486",
        address="太河镇东峪村",
        cause="因病",
        amount=Decimal(30000),
        income=Decimal(24000),
        size=3,
        description="俺娘住院做手术 花了三万",
        channel="rest",
        channel_user_id="villager-1",
        region_path=VILLAGE,
        submission_key="key-1",
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def count(session: Session, model: type) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def cadre_id(sessions: sessionmaker, name: str) -> int:
    with sessions.begin() as session:
        return int(session.execute(select(Cadre.id).where(Cadre.name == name)).scalar_one())


# --- submission -------------------------------------------------------------------------------------------------


def test_a_submission_is_triaged_numbered_assigned_and_notified(world: sessionmaker, rules: MonitoringRules) -> None:
    result = submit(world, rules, declaration(), describe=describe, now=NOW)

    assert result.created
    case = result.case
    assert case.case_no == "SB-2026-000001"
    assert case.status == SUBMITTED
    assert case.category == UNSTABLE  # 建档立卡, and the expense is more than the year's income
    assert (case.risk, case.urgent) == ("高", False)
    assert case.reasons and any("建档立卡" in r for r in case.reasons)
    assert case.due_on == dt.date(2026, 11, 30)
    assert case.awaiting_verification
    assert [(e.from_status, e.to_status, e.actor) for e in case.history] == [(None, SUBMITTED, "申报人")]
    assert set(case.assigned) == {"刘书记", "赵主任"}  # every cadre whose jurisdiction covers the village
    with world.begin() as session:
        notes = session.execute(select(Notification)).scalars().all()
        assert [(n.channel_user_id, n.text) for n in notes] == [("cadre-town", "新申报 SB-2026-000001")]
        # The front end offers the case with the notification (payloads fit Telegram's 64-byte callback_data).
        assert json.loads(notes[0].buttons) == [
            {"title": "打开这件", "payload": '/cadre_cases{"case_no":"SB-2026-000001"}'}
        ]
        stored = session.execute(select(HardshipCase)).scalar_one()
        assert stored.person_id is not None and stored.household_id is not None


def test_an_urgent_case_notifies_every_covering_cadre(world: sessionmaker, rules: MonitoringRules) -> None:
    result = submit(world, rules, declaration(description="娃白血病 住院化疗"), describe=describe, now=NOW)
    assert result.case.urgent
    with world.begin() as session:
        notified = set(session.execute(select(Notification.channel_user_id)).scalars())
    assert notified == {"cadre-town", "cadre-county"}


def test_a_place_no_cadre_covers_goes_to_the_administrators(world: sessionmaker, rules: MonitoringRules) -> None:
    unknown = declaration(id_number=OTHER_ID, name="李四", region_path=None, address="外地某村")
    result = submit(world, rules, unknown, describe=describe, now=NOW)
    assert result.case.assigned == ("孙科长",)
    assert result.case.region_path is None
    assert result.case.category == SUDDEN  # not in the register: sudden hardship on its figures


def test_a_number_registered_under_another_name_is_not_linked(world: sessionmaker, rules: MonitoringRules) -> None:
    submit(world, rules, declaration(name="王小强"), describe=describe, now=NOW)
    with world.begin() as session:
        stored = session.execute(select(HardshipCase)).scalar_one()
        assert stored.person_id is None
        assert stored.region_id is not None  # the address still places it


def test_case_numbers_count_up_within_a_year_and_restart_the_next(world: sessionmaker, rules: MonitoringRules) -> None:
    numbers = [
        submit(world, rules, declaration(submission_key=f"k{n}", size=n), describe=describe, now=NOW).case.case_no
        for n in (1, 2)
    ]
    next_year = dt.datetime(2027, 1, 4, 2, 0)
    numbers.append(
        submit(world, rules, declaration(submission_key="k3"), describe=describe, now=next_year).case.case_no
    )
    assert numbers == ["SB-2026-000001", "SB-2026-000002", "SB-2027-000001"]


def test_the_category_follows_the_figures(world: sessionmaker, rules: MonitoringRules) -> None:
    stranger = declaration(id_number=OTHER_ID, name="李四", submission_key=None)
    edge = submit(world, rules, replace(stranger, amount=Decimal(0), income=Decimal(18000)), describe=describe, now=NOW)
    rich = submit(
        world, rules, replace(stranger, amount=Decimal(1000), income=Decimal(300000)), describe=describe, now=NOW
    )
    assert (edge.case.category, rich.case.category) == (EDGE, NOT_ELIGIBLE)


# --- idempotency ----------------------------------------------------------------------------------------------------


def test_submitting_the_same_form_twice_creates_one_case(world: sessionmaker, rules: MonitoringRules) -> None:
    first = submit(world, rules, declaration(), describe=describe, now=NOW)
    again = submit(world, rules, declaration(), describe=describe, now=NOW + dt.timedelta(hours=5))
    assert (first.created, again.created) == (True, False)
    assert again.case.case_no == first.case.case_no
    with world.begin() as session:
        assert count(session, HardshipCase) == 1
        assert count(session, Notification) == 1
        assert count(session, CaseAssignment) == 2


def test_the_same_declaration_sent_again_within_minutes_is_one_case(
    world: sessionmaker, rules: MonitoringRules
) -> None:
    first = submit(world, rules, declaration(submission_key="form-1"), describe=describe, now=NOW)
    # A second conversation, the same words with other punctuation, ten minutes later.
    resent = declaration(submission_key="form-2", description="俺娘住院做手术,花了三万!")
    again = submit(world, rules, resent, describe=describe, now=NOW + dt.timedelta(minutes=10))
    assert not again.created
    assert again.case.case_no == first.case.case_no


def test_the_same_declaration_after_the_window_or_with_other_figures_is_a_new_case(
    world: sessionmaker, rules: MonitoringRules
) -> None:
    submit(world, rules, declaration(submission_key="a"), describe=describe, now=NOW)
    later = submit(world, rules, declaration(submission_key="b"), describe=describe, now=NOW + dt.timedelta(hours=2))
    other = submit(world, rules, declaration(submission_key="c", amount=Decimal(40000)), describe=describe, now=NOW)
    assert later.created and other.created


def test_concurrent_submissions_of_one_form_create_one_case(world: sessionmaker, rules: MonitoringRules) -> None:
    barrier = threading.Barrier(4)
    results = []

    def tap() -> None:
        barrier.wait()
        results.append(submit(world, rules, declaration(), describe=describe, now=NOW))

    threads = [threading.Thread(target=tap) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.created for r in results) == 1
    assert len({r.case.case_no for r in results}) == 1
    with world.begin() as session:
        assert count(session, HardshipCase) == 1


# --- follow-up --------------------------------------------------------------------------------------------------------


def test_a_chat_sees_only_its_own_cases(world: sessionmaker, rules: MonitoringRules) -> None:
    submit(world, rules, declaration(), describe=describe, now=NOW)
    submit(world, rules, declaration(channel_user_id="villager-2", submission_key="k2", size=2), describe=describe,
           now=NOW)  # fmt: skip
    with world.begin() as session:
        mine = cases_of_chat(session, "rest", "villager-1")
        theirs = cases_of_chat(session, "rest", "villager-2")
        nobody = cases_of_chat(session, "telegram", "villager-1")
    assert [c.case_no for c in mine] == ["SB-2026-000001"]
    assert [c.case_no for c in theirs] == ["SB-2026-000002"]
    assert nobody == []


def test_a_linked_chat_user_is_known_with_the_household_size(world: sessionmaker) -> None:
    with world.begin() as session:
        person = session.execute(select(Person)).scalar_one()
        session.add(ChatIdentity(channel="rest", channel_user_id="linked", person=person))
    with world.begin() as session:
        known = declarant_of_chat(session, "rest", "linked")
        assert declarant_of_chat(session, "rest", "stranger") is None
        assert declarant_of_chat(session, "telegram", "cadre-town") is None
    assert known is not None
    assert (known.name, known.id_number, known.region_path, known.household_size) == ("王志强", POOR_ID, VILLAGE, 3)


def test_an_address_is_resolved_to_the_deepest_place_it_names(world: sessionmaker) -> None:
    with world.begin() as session:
        get_or_create_region(session, ["淄博市", "沂源县", "燕崖镇", "东峪村"])  # a second 东峪村
        assert resolve_address(session, "淄川区太河镇东峪村") == VILLAGE
        assert resolve_address(session, "俺是太河 东峪的") == VILLAGE
        assert resolve_address(session, "东峪村") == "淄博市"  # two villages of that name: only the city is sure
        assert resolve_address(session, "太河镇") == "淄博市/淄川区/太河镇"
        assert resolve_address(session, "火星") is None


# --- the workflow ----------------------------------------------------------------------------------------------------


@pytest.fixture
def case_no(world: sessionmaker, rules: MonitoringRules) -> str:
    return submit(world, rules, declaration(), describe=describe, now=NOW).case.case_no


def move(
    sessions: sessionmaker, case_no: str, to: str, cadre: str = "刘书记", note: str | None = "已入户核实"
) -> CaseView:
    who = cadre_id(sessions, cadre)
    with sessions.begin() as session:
        return transition(session, case_no, to, cadre_id=who, note=note)


@pytest.mark.parametrize(
    "path",
    [
        [VERIFYING, MONITORED, CLEARED],
        [VERIFYING, URGENT_HELP, MONITORED, CLEARED],
        [VERIFYING, REFUSED],
        [VERIFYING, REFUSED, VERIFYING, MONITORED],  # new facts: verified again
        [VERIFYING, MONITORED, CLEARED, MONITORED],  # 可进可出: back into monitoring
        [VERIFYING, MONITORED, CLEARED, VERIFYING, URGENT_HELP],
    ],
)
def test_allowed_paths_are_kept_in_the_history(world: sessionmaker, case_no: str, path: list[str]) -> None:
    for status in path:
        view = move(world, case_no, status, note="核实情况")
    assert view.status == path[-1]
    assert [e.to_status for e in view.history] == [SUBMITTED, *path]
    assert all(e.actor == "刘书记" and e.note == "核实情况" for e in view.history[1:])
    assert not view.awaiting_verification


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], MONITORED),  # not before verification
        ([], CLEARED),
        ([], SUBMITTED),
        ([VERIFYING], CLEARED),  # a risk is cleared only after monitoring
        ([VERIFYING, REFUSED], MONITORED),  # a refused case is verified again first
        ([VERIFYING, MONITORED], VERIFYING),
        ([VERIFYING, MONITORED], "结案"),
    ],
)
def test_other_transitions_are_refused_and_change_nothing(
    world: sessionmaker, case_no: str, path: list[str], refused: str
) -> None:
    for status in path:
        move(world, case_no, status, note="理由")
    with pytest.raises(TransitionError), world.begin() as session:
        transition(session, case_no, refused, cadre_id=cadre_id(world, "刘书记"), note="理由")
    with world.begin() as session:
        view = case_by_number(session, case_no)
    assert view is not None
    assert view.status == (path[-1] if path else SUBMITTED)
    assert len(view.history) == 1 + len(path)


@pytest.mark.parametrize("status", [REFUSED])
def test_refusing_needs_a_reason(world: sessionmaker, case_no: str, status: str) -> None:
    move(world, case_no, VERIFYING)
    with pytest.raises(TransitionError, match="原因"):
        move(world, case_no, status, note="  ")


def test_clearing_a_risk_needs_a_reason(world: sessionmaker, case_no: str) -> None:
    move(world, case_no, VERIFYING)
    move(world, case_no, MONITORED)
    with pytest.raises(TransitionError, match="原因"):
        move(world, case_no, CLEARED, note=None)


def test_a_cadre_outside_the_jurisdiction_cannot_move_a_case(world: sessionmaker, case_no: str) -> None:
    with world.begin() as session:
        elsewhere = Cadre(name="外镇干部", region=get_or_create_region(session, ["淄博市", "沂源县", "燕崖镇"]))
        session.add(elsewhere)
        session.flush()
        other = elsewhere.id
    with pytest.raises(TransitionError, match="辖区"), world.begin() as session:
        transition(session, case_no, VERIFYING, cadre_id=other)
    with pytest.raises(TransitionError, match="辖区"):  # an administrator of another city may not either
        move(world, case_no, VERIFYING, cadre="孙科长")


def test_an_unknown_case_is_refused(world: sessionmaker) -> None:
    with pytest.raises(TransitionError, match="没有编号"):
        move(world, "SB-2026-999999", VERIFYING)


def test_the_deadline_applies_until_a_cadre_acts(world: sessionmaker, case_no: str) -> None:
    with world.begin() as session:
        waiting = case_by_number(session, case_no)
    assert waiting is not None
    assert waiting.overdue(dt.date(2026, 12, 1)) and not waiting.overdue(dt.date(2026, 11, 30))
    acted = move(world, case_no, VERIFYING)
    assert not acted.overdue(dt.date(2026, 12, 1))
