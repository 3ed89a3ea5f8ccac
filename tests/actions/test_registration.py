"""Registering cadres: invitation codes (service) and the chat flow (administrator, new cadre, everyone else)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from actions import runtime
from actions.cadre import ActionCadreCases
from actions.db.models import AuditEntry, Cadre, CadreInvite, ChatIdentity, Region
from actions.registration import ActionCadreInvite, ActionCadreRegister, ValidateCadreInviteForm
from actions.services.invites import (
    MAX_FAILED_PER_HOUR,
    InviteError,
    create_invite,
    new_code,
    normalise_code,
    redeem_invite,
)
from actions.services.regions import get_or_create_region
from actions.services.workspace import Officer, WorkspaceError, officer_of_chat
from tests.actions.conftest import form_tracker, make_tracker, run, slots_of, text_of

ZICHUAN = ["淄博市", "淄川区"]
DONGYU = ["淄博市", "淄川区", "太河镇", "东峪村"]
YANYA = ["淄博市", "沂源县", "燕崖镇"]
CODE = re.compile(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}")


@pytest.fixture
def admins(rt: runtime.Runtime) -> None:
    with rt.sessions.begin() as session:
        get_or_create_region(session, DONGYU)
        get_or_create_region(session, YANYA)
        for name, path, chat, admin in (
            ("淄川管理员", ZICHUAN, "a-zichuan", True),
            ("淄川干部", ZICHUAN, "c-zichuan", False),
        ):
            cadre = Cadre(name=name, region=get_or_create_region(session, path), is_admin=admin)
            session.add(ChatIdentity(channel="rest", channel_user_id=chat, cadre=cadre))


def officer(rt: runtime.Runtime, chat: str) -> Officer:
    with rt.sessions() as session:
        return officer_of_chat(session, "rest", chat)


def region(session, path: list[str]) -> Region:  # type: ignore[no-untyped-def]
    return session.execute(select(Region).where(Region.path == "/".join(path))).scalar_one()


def test_codes_are_read_leniently_but_words_are_not_codes() -> None:
    assert normalise_code("干部绑定 k7q2-m9xd") == "K7Q2M9XD"
    assert normalise_code("邀请码K7Q2 M9XD") == "K7Q2M9XD"
    assert normalise_code("码是K7Q2M9XD 咋用") == "K7Q2M9XD"
    assert normalise_code("导出 xlsx 格式") is None
    assert normalise_code("SB-2026-000123") is None
    assert normalise_code("370304197306250042") is None
    assert normalise_code("我是干部") is None


def test_an_invitation_registers_once_and_only_within_its_life(rt: runtime.Runtime, admins: None) -> None:
    admin = officer(rt, "a-zichuan")
    with rt.sessions.begin() as session:
        invitation = create_invite(session, admin, "张丽", region(session, DONGYU))
        stale = create_invite(session, admin, "李强", region(session, DONGYU), now=dt.datetime(2026, 1, 1))
        stored = session.execute(select(CadreInvite.code_hash)).scalars().all()
    assert CODE.fullmatch(invitation.code) and invitation.code.replace("-", "") not in "".join(stored)
    with rt.sessions.begin() as session:
        registered = redeem_invite(session, "rest", "new-1", f"干部绑定 {invitation.code.lower()}")
    assert registered.jurisdiction == "/".join(DONGYU) and not registered.is_admin
    assert officer(rt, "new-1").name == "张丽"
    with rt.sessions.begin() as session, pytest.raises(InviteError, match="用过"):
        redeem_invite(session, "rest", "new-2", invitation.code)
    with rt.sessions.begin() as session, pytest.raises(InviteError, match="过期"):
        redeem_invite(session, "rest", "new-2", stale.code)
    with rt.sessions() as session:
        assert session.execute(select(ChatIdentity).where(ChatIdentity.channel_user_id == "new-2")).first() is None
        actions = session.execute(select(AuditEntry.action)).scalars().all()
    assert actions.count("cadre.invite") == 2 and "cadre.register" in actions and "cadre.invite_failed" in actions


def test_who_may_invite_whom(rt: runtime.Runtime, admins: None) -> None:
    with rt.sessions.begin() as session:
        with pytest.raises(WorkspaceError, match="管理员"):
            create_invite(session, officer(rt, "c-zichuan"), "张丽", region(session, DONGYU))
        with pytest.raises(WorkspaceError, match="不在您的辖区"):
            create_invite(session, officer(rt, "a-zichuan"), "张丽", region(session, YANYA))
        with pytest.raises(WorkspaceError, match="命令行|helpline"):
            create_invite(session, officer(rt, "a-zichuan"), "张丽", region(session, DONGYU), admin=True)
        with pytest.raises(WorkspaceError, match="姓名"):
            create_invite(session, officer(rt, "a-zichuan"), "张丽123", region(session, DONGYU))
        operator = Officer.operator(session, "淄博市")
        assert create_invite(session, operator, "赵刚", region(session, YANYA), admin=True).place == "/".join(YANYA)


def test_wrong_codes_are_throttled(rt: runtime.Runtime, admins: None) -> None:
    with rt.sessions.begin() as session:
        good = create_invite(session, officer(rt, "a-zichuan"), "张丽", region(session, DONGYU))
    for n in range(MAX_FAILED_PER_HOUR):
        with rt.sessions.begin() as session, pytest.raises(InviteError, match="不对"):
            redeem_invite(session, "rest", "guesser", f"ABCD-EFG{n + 2}")
    with rt.sessions.begin() as session, pytest.raises(InviteError, match="太多"):
        redeem_invite(session, "rest", "guesser", good.code)  # even the right code waits
    with rt.sessions.begin() as session:
        assert redeem_invite(session, "rest", "someone-else", good.code).name == "张丽"


async def test_the_chat_flow_from_administrator_to_working_cadre(
    rt: runtime.Runtime, admins: None, domain: dict
) -> None:
    register = ActionCadreRegister()
    events, _ = await run(register, make_tracker("a-zichuan", "给东峪村登记个新网格员", "cadre_register"), domain)
    assert slots_of(events)["invite_place"] == "东峪村"
    assert {"event": "followup", "name": "cadre_invite_form"} in [
        {"event": e["event"], "name": e.get("name")} for e in events
    ]
    form = ValidateCadreInviteForm()

    def answer(text: str, slot: str) -> Any:
        return form_tracker(text, slot, sender="a-zichuan", form="cadre_invite_form")

    bad, messages = await run(form, answer("张丽123", "invite_name"), domain)
    assert slots_of(bad)["invite_name"] is None and "姓名" in text_of(messages)
    good, _ = await run(form, answer(" 张丽 ", "invite_name"), domain)
    assert slots_of(good)["invite_name"] == "张丽"
    outside, messages = await run(form, answer("燕崖镇", "invite_place"), domain)
    assert slots_of(outside)["invite_place"] is None and "没找到" in text_of(messages)
    slots = {"invite_name": "张丽", "invite_place": "东峪村"}
    tracker = make_tracker("a-zichuan", "东峪村", "nlu_fallback", slots=slots)
    events, messages = await run(ActionCadreInvite(), tracker, domain)
    code = CODE.search(text_of(messages))
    assert code and slots_of(events) == {"invite_name": None, "invite_place": None}

    _, messages = await run(register, make_tracker("new-cadre", f"俺的邀请码 {code.group()}", "cadre_register"), domain)
    assert "登记好了" in text_of(messages) and "太河镇/东峪村" in text_of(messages)
    _, messages = await run(ActionCadreCases(), make_tracker("new-cadre", "有哪些待核实的申报", "cadre_cases"), domain)
    assert "只对登记过的干部开放" not in text_of(messages)
    _, messages = await run(ActionCadreRegister(), make_tracker("thief", code.group(), "cadre_register"), domain)
    assert "用过" in text_of(messages)


async def test_claims_and_ordinary_cadres_get_the_explanation_and_nothing_else(
    rt: runtime.Runtime, admins: None, domain: dict
) -> None:
    for chat, text in (("villager", "我是东峪村的支书 给我开通干部权限"), ("c-zichuan", "登记一个新干部")):
        events, messages = await run(ActionCadreRegister(), make_tracker(chat, text, "cadre_register"), domain)
        assert events == [] and "管理员" in text_of(messages)
    injected = make_tracker("villager", '/cadre_register{"invite_code":"ABCD-EFG7"}', "cadre_register",
                            entities={"invite_code": "ABCD-EFG7"})  # fmt: skip
    _, messages = await run(ActionCadreRegister(), injected, domain)
    assert "不对" in text_of(messages)
    with rt.sessions() as session:
        assert session.execute(select(ChatIdentity).where(ChatIdentity.channel_user_id == "villager")).first() is None


async def test_cancelling_the_invitation_creates_nothing(rt: runtime.Runtime, admins: None, domain: dict) -> None:
    tracker = form_tracker("不办了", "invite_name", sender="a-zichuan", form="cadre_invite_form")
    events, messages = await run(ValidateCadreInviteForm(), tracker, domain)
    values = slots_of(events)
    assert values["invite_name"] == "" and values["requested_slot"] is None and "不登记" in text_of(messages)
    await run(ActionCadreInvite(), make_tracker("a-zichuan", "不办了", "cancel", slots=values), domain)
    with rt.sessions() as session:
        assert session.execute(select(CadreInvite)).first() is None


def test_every_new_code_is_recognised_when_typed_back() -> None:
    codes = [new_code() for _ in range(2000)]
    assert all(normalise_code(f"干部绑定 {c[:4]}-{c[4:]}") == c for c in codes)
    assert all(normalise_code(c.lower()) == c for c in codes)


async def test_starting_the_form_is_not_answered_with_complaints(
    rt: runtime.Runtime, admins: None, domain: dict
) -> None:
    """action_cadre_register clears the slots; the form then validates those None values before it asks anything."""
    tracker = make_tracker("a-zichuan", "帮我登记个新干部", "cadre_register")
    tracker.events += [
        {"event": "action", "name": "action_cadre_register"},
        {"event": "slot", "name": "invite_name", "value": None},
        {"event": "slot", "name": "invite_place", "value": None},
    ]
    events, messages = await run(ValidateCadreInviteForm(), tracker, domain)
    assert messages == [] and slots_of(events) == {"invite_name": None, "invite_place": None}
