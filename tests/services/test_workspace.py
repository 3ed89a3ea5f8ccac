"""The cadre workspace: jurisdiction isolation on every lookup and action, the workflow, ABCD, measures, audit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from actions.db.models import Cadre, ChatIdentity, HardshipCase, Household, Notification, Person
from actions.services.cases import (
    CLEARED,
    MONITORED,
    REFUSED,
    SUBMITTED,
    URGENT_HELP,
    VERIFYING,
    CaseView,
    Declaration,
    submit,
)
from actions.services.regions import get_or_create_region
from actions.services.triage import MonitoringRules
from actions.services.workspace import (
    NotACadre,
    Officer,
    WorkspaceError,
    audit_since,
    case_for,
    find_households,
    measures_of,
    monitored,
    move_case,
    officer_of_chat,
    parse_amount,
    pending,
    record_measure,
    resolve_place,
    set_abcd,
    statistics,
)
from tests.conftest import make_id_number

ZICHUAN = "淄博市/淄川区/太河镇/东峪村"
YIYUAN = "淄博市/沂源县/燕崖镇/朱家户村"
ZICHUAN_ID = make_id_number("19650101", 11)
YIYUAN_ID = make_id_number("19700202", 22)
NOW = dt.datetime(2026, 11, 23, 2, 0)
TODAY = dt.date(2026, 11, 23)


def outcome(view: CaseView) -> str:
    return f"您的申报 {view.case_no} 现在是“{view.status}”"


@pytest.fixture
def world(sessions: sessionmaker) -> sessionmaker:
    """Two counties of 淄博, a household and a cadre in each, a town cadre, and an administrator in 枣庄."""
    with sessions.begin() as session:
        for path, code, name, id_number in (
            (ZICHUAN, "ZC-1", "王志强", ZICHUAN_ID),
            (YIYUAN, "YY-1", "朱桂英", YIYUAN_ID),
        ):
            village = get_or_create_region(session, path.split("/"))
            household = Household(code=code, region=village, status="脱贫户", is_registered_poor=True, size=3)
            session.add(Person(household=household, name=name, id_number=id_number, phone="13300002486"))
        for name, path, chat, admin in (
            ("淄川干部", "淄博市/淄川区", "c-zichuan", False),
            ("太河干部", "淄博市/淄川区/太河镇", "c-taihe", False),
            ("沂源干部", "淄博市/沂源县", "c-yiyuan", False),
            ("枣庄管理员", "枣庄市", "c-admin", True),
        ):
            cadre = Cadre(name=name, region=get_or_create_region(session, path.split("/")), is_admin=admin)
            session.add(ChatIdentity(channel="rest", channel_user_id=chat, cadre=cadre))
    return sessions


def declare(world: sessionmaker, path: str, id_number: str, name: str, key: str, user: str) -> str:
    declaration = Declaration(
        name=name, id_number=id_number, phone="13300002486", address=path.split("/")[-1], cause="因病",
        amount=Decimal(30000), income=Decimal(24000), size=3, description="住院花了三万", channel="rest",
        channel_user_id=user, region_path=path, submission_key=key,
    )  # fmt: skip
    return submit(world, MonitoringRules.load(), declaration, describe=lambda v: v.case_no, now=NOW).case.case_no


@pytest.fixture
def cases(world: sessionmaker) -> dict[str, str]:
    return {
        "zichuan": declare(world, ZICHUAN, ZICHUAN_ID, "王志强", "k1", "v-zichuan"),
        "yiyuan": declare(world, YIYUAN, YIYUAN_ID, "朱桂英", "k2", "v-yiyuan"),
    }


def officer(world: sessionmaker, chat: str) -> Officer:
    with world.begin() as session:
        return officer_of_chat(session, "rest", chat)


def count(session: Session, model: type) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


# --- who is a cadre ---------------------------------------------------------------------------------------------


def test_only_a_registered_chat_user_is_a_cadre(world: sessionmaker) -> None:
    assert officer(world, "c-zichuan").jurisdiction == "淄博市/淄川区"
    with pytest.raises(NotACadre), world.begin() as session:
        officer_of_chat(session, "rest", "v-zichuan")
    with pytest.raises(NotACadre), world.begin() as session:
        officer_of_chat(session, "telegram", "c-zichuan")  # the same id on another channel is someone else


# --- isolation on every path ------------------------------------------------------------------------------------


def test_a_zichuan_cadre_gets_nothing_about_a_yiyuan_case(world: sessionmaker, cases: dict[str, str]) -> None:
    zichuan = officer(world, "c-zichuan")
    with world.begin() as session:
        assert case_for(session, zichuan, cases["yiyuan"]) is None  # by number
        assert case_for(session, zichuan, cases["zichuan"]) is not None
        assert find_households(session, zichuan, "朱桂英") == []  # by name
        assert find_households(session, zichuan, YIYUAN_ID) == []  # by 身份证号
        assert [c.case_no for c in pending(session, zichuan).items] == [cases["zichuan"]]
        assert resolve_place(session, zichuan, "燕崖镇") is None
        stats = statistics(session, zichuan, TODAY)
        assert stats.total == 1 and "燕崖镇" not in str(stats.by_village) and sum(stats.by_abcd.values()) == 1
    for action in (
        lambda s: move_case(s, zichuan, cases["yiyuan"], VERIFYING, "核实", outcome),
        lambda s: record_measure(s, zichuan, cases["yiyuan"], "临时救助", Decimal(1000), None),
        lambda s: set_abcd(s, zichuan, "YY-1", "B", "能力弱"),
    ):
        with pytest.raises(WorkspaceError, match="辖区"), world.begin() as session:
            action(session)
    with world.begin() as session:
        assert (
            session.execute(select(HardshipCase.status).where(HardshipCase.case_no == cases["yiyuan"])).scalar_one()
            == SUBMITTED
        )
        assert session.execute(select(Household.abcd_class).where(Household.code == "YY-1")).scalar_one() is None


def test_an_administrator_is_limited_to_their_own_jurisdiction(world: sessionmaker, cases: dict[str, str]) -> None:
    admin = officer(world, "c-admin")
    with world.begin() as session:
        assert case_for(session, admin, cases["zichuan"]) is None
        assert pending(session, admin).total == 0
        assert statistics(session, admin, TODAY).total == 0


def test_a_town_cadre_sees_the_town_and_a_county_cadre_the_county(world: sessionmaker, cases: dict[str, str]) -> None:
    with world.begin() as session:
        taihe = officer_of_chat(session, "rest", "c-taihe")
        assert [c.case_no for c in pending(session, taihe).items] == [cases["zichuan"]]
        [household] = find_households(session, taihe, ZICHUAN_ID)
        assert household.code == "ZC-1" and household.members[0].name == "王志强"
        assert [c.case_no for c in household.cases] == [cases["zichuan"]]


def test_a_jurisdiction_prefix_is_not_a_neighbour(world: sessionmaker) -> None:
    """淄博市/淄川区 must not cover a region called 淄博市/淄川区二 (no prefix matching without the slash)."""
    with world.begin() as session:
        twin = get_or_create_region(session, ["淄博市", "淄川区二", "某镇", "某村"])
        household = Household(code="X-1", region=twin, status="一般农户", is_registered_poor=False, size=1)
        session.add(Person(household=household, name="钱多多", id_number=make_id_number("19800303", 33)))
    with world.begin() as session:
        assert find_households(session, officer_of_chat(session, "rest", "c-zichuan"), "钱多多") == []


# --- lookups ----------------------------------------------------------------------------------------------------


def test_pending_lists_page_oldest_first(world: sessionmaker) -> None:
    numbers = [declare(world, ZICHUAN, make_id_number("19900101", n), f"户主{n}", f"p{n}", f"v{n}") for n in range(7)]
    zichuan = officer(world, "c-zichuan")
    with world.begin() as session:
        first = pending(session, zichuan)
        second = pending(session, zichuan, first.next_offset or 0)
    assert first.total == 7 and [c.case_no for c in first.items] == numbers[:5]
    assert [c.case_no for c in second.items] == numbers[5:] and second.next_offset is None
    assert second.previous_offset == 0


def test_monitored_households_by_category_and_place(world: sessionmaker, cases: dict[str, str]) -> None:
    zichuan = officer(world, "c-zichuan")
    with world.begin() as session:
        move_case(session, zichuan, cases["zichuan"], VERIFYING, "电话核实", outcome)
        move_case(session, zichuan, cases["zichuan"], MONITORED, "入户核实属实", outcome)
        category = case_for(session, zichuan, cases["zichuan"]).category  # type: ignore[union-attr]
        town = resolve_place(session, zichuan, "太河镇")
        assert town is not None
        assert [c.case_no for c in monitored(session, zichuan, category, town).items] == [cases["zichuan"]]
        assert monitored(session, zichuan, "暂不符合").total == 0
        with pytest.raises(WorkspaceError):
            monitored(session, zichuan, "随便")


# --- the workflow -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        [VERIFYING, MONITORED, CLEARED],
        [VERIFYING, URGENT_HELP, MONITORED, CLEARED],
        [VERIFYING, REFUSED, VERIFYING, URGENT_HELP],
        [VERIFYING, MONITORED, CLEARED, MONITORED],  # 可进可出: back in
    ],
)
def test_every_move_is_stored_and_told_to_the_declarant(
    world: sessionmaker, cases: dict[str, str], path: list[str]
) -> None:
    zichuan = officer(world, "c-zichuan")
    for n, status in enumerate(path):
        with world.begin() as session:
            view = move_case(session, zichuan, cases["zichuan"], status, f"第{n}步的理由", outcome)
        assert view.status == status
    assert [(e.to_status, e.actor, e.note) for e in view.history[1:]] == [
        (s, "淄川干部", f"第{n}步的理由") for n, s in enumerate(path)
    ]
    with world.begin() as session:
        told = (
            session.execute(
                select(Notification.text).where(Notification.channel_user_id == "v-zichuan").order_by(Notification.id)
            )
            .scalars()
            .all()
        )
    assert told == [f"您的申报 {cases['zichuan']} 现在是“{s}”" for s in path]
    with world.begin() as session:
        offered = session.execute(select(Notification.buttons).where(Notification.channel_user_id == "v-zichuan"))
        assert {b for (b,) in offered} == {'[{"title": "看申报进度", "payload": "/declaration_status"}]'}


def test_a_move_needs_a_note_and_a_workflow_step(world: sessionmaker, cases: dict[str, str]) -> None:
    zichuan = officer(world, "c-zichuan")
    with pytest.raises(WorkspaceError, match="原因"), world.begin() as session:
        move_case(session, zichuan, cases["zichuan"], VERIFYING, "   ", outcome)
    with pytest.raises(WorkspaceError, match="不能改为"), world.begin() as session:
        move_case(session, zichuan, cases["zichuan"], CLEARED, "直接消除", outcome)
    with pytest.raises(WorkspaceError, match="太长"), world.begin() as session:
        move_case(session, zichuan, cases["zichuan"], VERIFYING, "长" * 301, outcome)
    with world.begin() as session:
        assert count(session, Notification) == 2  # the two cadres told of the new cases; no declarant message


# --- ABCD and help measures -------------------------------------------------------------------------------------


def test_abcd_class_changes_are_kept_with_who_and_why(world: sessionmaker) -> None:
    zichuan = officer(world, "c-zichuan")
    with world.begin() as session:
        set_abcd(session, zichuan, "ZC-1", "b", "有劳动力 缺技术")
        view = set_abcd(session, zichuan, "ZC-1", "C", "户主住院")
    assert view.abcd_class == "C"
    assert [(c.old_value, c.new_value, c.actor, c.note) for c in view.changes] == [
        (None, "B", "淄川干部", "有劳动力 缺技术"),
        ("B", "C", "淄川干部", "户主住院"),
    ]
    for cls, note in (("E", "x"), ("C", "again"), ("A", "")):
        with pytest.raises(WorkspaceError), world.begin() as session:
            set_abcd(session, zichuan, "ZC-1", cls, note)


def test_help_measures_are_recorded_with_amounts(world: sessionmaker, cases: dict[str, str]) -> None:
    zichuan = officer(world, "c-zichuan")
    with world.begin() as session:
        record_measure(session, zichuan, cases["zichuan"], "临时救助", parse_amount("2000元"), "住院")
        record_measure(session, zichuan, cases["zichuan"], "公益性岗位", None, "村保洁")
        found = measures_of(session, zichuan, cases["zichuan"])
    assert [(m.kind, m.amount) for m in found] == [("临时救助", Decimal("2000.00")), ("公益性岗位", None)]
    with pytest.raises(WorkspaceError), world.begin() as session:
        record_measure(session, zichuan, cases["zichuan"], "发红包", None, None)
    for bad in ("两千", "-5", "1e12", "NaN"):
        with pytest.raises(WorkspaceError):
            parse_amount(bad)


# --- statistics and audit ---------------------------------------------------------------------------------------


def test_statistics_count_the_jurisdiction(world: sessionmaker, cases: dict[str, str]) -> None:
    declare(world, ZICHUAN, make_id_number("19900101", 5), "李四", "k9", "v9")
    zichuan = officer(world, "c-zichuan")
    with world.begin() as session:
        move_case(session, zichuan, cases["zichuan"], VERIFYING, "核实", outcome)
        stats = statistics(session, zichuan, dt.date(2026, 12, 31))
    assert stats.total == 2
    assert stats.by_status == {SUBMITTED: 1, VERIFYING: 1}
    assert stats.by_village == {"太河镇/东峪村": 2}
    assert stats.by_abcd == {"未分类": 1}
    assert stats.overdue == 1  # the one no cadre has acted on, past its deadline


def test_every_lookup_and_change_is_audited_without_personal_data(world: sessionmaker, cases: dict[str, str]) -> None:
    zichuan = officer(world, "c-zichuan")
    start = dt.datetime(2000, 1, 1)
    with world.begin() as session:
        case_for(session, zichuan, cases["yiyuan"])
        find_households(session, zichuan, ZICHUAN_ID)
        pending(session, zichuan)
        move_case(session, zichuan, cases["zichuan"], VERIFYING, "核实", outcome)
        set_abcd(session, zichuan, "ZC-1", "A", "能力强")
        record_measure(session, zichuan, cases["zichuan"], "医疗救助", Decimal(500), None)
        statistics(session, zichuan, TODAY)
    with world.begin() as session:
        entries = audit_since(session, start)
        rows = [(e.actor, e.action, e.record_ref) for e in entries]
        assert all(e.cadre_id is not None for e in entries)
        assert ZICHUAN_ID not in str([(e.record_ref, e.detail) for e in entries])
    assert ("干部 淄川干部 (#1)", "case.view", cases["yiyuan"]) in rows  # the refused attempt too
    assert {a for _, a, _ in rows} >= {"case.view", "household.search", "case.list", "case.move", "household.abcd",
                                       "case.measure", "stats"}  # fmt: skip
