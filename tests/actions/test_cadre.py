"""Cadre workspace actions: refusal of non-cadres, isolation, lists, lookups, moves with a reason, stats, export."""

from __future__ import annotations

import base64
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import select

from actions import runtime
from actions.cadre import (
    ActionCadreCases,
    ActionCadreExport,
    ActionCadreMove,
    ActionCadreStats,
    ValidateCadreMoveForm,
    asks_for_counts,
    case_number,
    reason_in,
)
from actions.db.models import Cadre, ChatIdentity, HardshipCase, Household, Notification, Person
from actions.services.cases import Declaration, submit
from actions.services.regions import get_or_create_region
from actions.services.triage import MonitoringRules
from tests.actions.conftest import form_tracker, make_tracker, payloads, run, text_of
from tests.conftest import make_id_number

ZICHUAN = ["淄博市", "淄川区", "太河镇", "东峪村"]
YIYUAN = ["淄博市", "沂源县", "燕崖镇", "朱家户村"]
ZICHUAN_ID = make_id_number("19650101", 41)
YIYUAN_ID = make_id_number("19700202", 42)


@pytest.fixture
def world(rt: runtime.Runtime) -> dict[str, str]:
    with rt.sessions.begin() as session:
        for path, code, name, id_number in (
            (ZICHUAN, "ZC-1", "王志强", ZICHUAN_ID),
            (YIYUAN, "YY-1", "朱桂英", YIYUAN_ID),
        ):
            household = Household(code=code, region=get_or_create_region(session, path), status="脱贫户",
                                  is_registered_poor=True, size=3)  # fmt: skip
            session.add(Person(household=household, name=name, id_number=id_number, phone="13300002486"))
        for name, path, chat in (("淄川干部", ZICHUAN[:2], "c-zichuan"), ("沂源干部", YIYUAN[:2], "c-yiyuan")):
            cadre = Cadre(name=name, region=get_or_create_region(session, path))
            session.add(ChatIdentity(channel="rest", channel_user_id=chat, cadre=cadre))
    numbers = {}
    for key, path, name, id_number in (
        ("zichuan", ZICHUAN, "王志强", ZICHUAN_ID),
        ("yiyuan", YIYUAN, "朱桂英", YIYUAN_ID),
    ):
        declaration = Declaration(
            name=name, id_number=id_number, phone="13300002486", address=path[-1], cause="因病", amount=Decimal(30000),
            income=Decimal(24000), size=3, description="住院花了三万", channel="rest", channel_user_id=f"v-{key}",
            region_path="/".join(path), submission_key=key,
        )  # fmt: skip
        numbers[key] = submit(
            rt.sessions, MonitoringRules.load(), declaration, describe=lambda v: v.case_no
        ).case.case_no
    return numbers


async def cases_reply(
    sender: str, text: str, domain: dict, entities: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return await run(ActionCadreCases(), make_tracker(sender, text, "cadre_cases", entities=entities), domain)


def status_of(rt: runtime.Runtime, case_no: str) -> str:
    with rt.sessions() as session:
        return str(session.execute(select(HardshipCase.status).where(HardshipCase.case_no == case_no)).scalar_one())


def test_case_numbers_and_reasons_are_read_from_words() -> None:
    assert case_number("查一下sb2026000123") == "SB-2026-000123"
    assert case_number("SB-2026-000045啥情况") == "SB-2026-000045"
    assert case_number("SB-2026-0001234") is None
    assert reason_in("把SB-2026-000001改成纳入监测 已入户核实", "纳入监测") == "已入户核实"
    assert reason_in("SB-2026-000001 核实中", "核实中") is None


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        ("统计一下", True),
        ("各类户占的比例 做成图看看", True),
        ("A类几户 B类几户 C类几户", True),
        ("待核实的还剩几户", True),
        ("风险消除率多少", True),
        ("还有多少没核 给我看下清单", False),
        ("哪几户报上来了还没去看", False),
        ("太河镇的监测户", False),
        ("王志强家定成B类 原因:主要劳动力住院", False),
    ],
)
def test_counts_are_told_from_lists(text: str, counts: bool) -> None:
    assert asks_for_counts(text) is counts


async def test_a_count_question_gets_the_statistics_and_a_list_question_the_list(world: dict, domain: dict) -> None:
    _, messages = await cases_reply("c-zichuan", "俺这片各类户有多少 按村分", domain)
    assert "困难申报统计" in text_of(messages) and any(m.get("image") for m in messages)
    _, messages = await cases_reply("c-zichuan", "还有哪些没核实的 列一下", domain)
    assert world["zichuan"] in text_of(messages) and not any(m.get("image") for m in messages)


@pytest.mark.parametrize("action", [ActionCadreCases(), ActionCadreStats(), ActionCadreExport()])
async def test_a_villager_claiming_to_be_a_cadre_is_refused(world: dict, domain: dict, action: Any) -> None:
    tracker = make_tracker("v-zichuan", f"我是村支书 查一下{world['yiyuan']}", "cadre_cases")
    events, messages = await run(action, tracker, domain)
    assert "只对登记过的干部开放" in text_of(messages) and events == []
    assert "朱桂英" not in text_of(messages)


async def test_pending_lists_only_the_jurisdiction(world: dict, domain: dict) -> None:
    _, messages = await cases_reply("c-zichuan", "有哪些待核实的申报", domain)
    text = text_of(messages)
    assert world["zichuan"] in text and world["yiyuan"] not in text and "共 1 件" in text
    assert f'/cadre_cases{{"case_no":"{world["zichuan"]}"}}' in payloads(messages)


async def test_a_case_outside_the_jurisdiction_is_not_found(world: dict, domain: dict) -> None:
    _, messages = await cases_reply("c-zichuan", f"查一下{world['yiyuan']}", domain)
    assert "没有编号为" in text_of(messages) and "朱桂英" not in text_of(messages)
    _, messages = await cases_reply("c-zichuan", f"查一下{world['zichuan']}", domain)
    shown = text_of(messages)
    assert "王志强" in shown and ZICHUAN_ID not in shown and ZICHUAN_ID[:4] + "**********" + ZICHUAN_ID[-4:] in shown
    assert any(b["title"] == "改为核实中" for m in messages for b in m.get("buttons") or [])


async def test_households_by_name_and_id_inside_the_jurisdiction_only(world: dict, domain: dict) -> None:
    _, messages = await cases_reply("c-zichuan", "查下王志强家", domain)
    assert "ZC-1" in text_of(messages) and world["zichuan"] in text_of(messages)
    _, messages = await cases_reply("c-zichuan", f"看看{YIYUAN_ID}这户", domain)
    assert "没查到" in text_of(messages) and "YY-1" not in text_of(messages)
    _, messages = await cases_reply("c-zichuan", "查下370399196501010410", domain)
    assert "校验" in text_of(messages)


async def test_a_move_without_a_reason_asks_for_one_then_moves_and_tells_the_declarant(
    rt: runtime.Runtime, world: dict, domain: dict
) -> None:
    number = world["zichuan"]
    events, _ = await cases_reply("c-zichuan", "", domain, {"case_no": number, "target_status": "核实中"})
    assert {"event": "followup", "name": "cadre_move_form"} in [
        {"event": e["event"], "name": e.get("name")} for e in events
    ]
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    starting = make_tracker("c-zichuan", "", "cadre_cases", slots=slots)
    starting.events += [{"event": "slot", "name": name, "value": value} for name, value in slots.items()]
    _, messages = await run(ValidateCadreMoveForm(), starting, domain)
    assert messages == []  # the form's question comes next, without a complaint before it
    tracker = form_tracker("已电话联系 明天入户", "cadre_note", slots=slots, sender="c-zichuan", form="cadre_move_form")
    validated, _ = await run(ValidateCadreMoveForm(), tracker, domain)
    note = next(e["value"] for e in validated if e["event"] == "slot" and e["name"] == "cadre_note")
    move = make_tracker("c-zichuan", "已电话联系 明天入户", "nlu_fallback", slots={**slots, "cadre_note": note})
    _, messages = await run(ActionCadreMove(), move, domain)
    assert "已把" in text_of(messages) and status_of(rt, number) == "核实中"
    with rt.sessions() as session:
        told = (
            session.execute(select(Notification.text).where(Notification.channel_user_id == "v-zichuan"))
            .scalars()
            .all()
        )
    assert len(told) == 1 and "开始核实" in told[0]


async def test_a_move_with_its_reason_in_the_message_is_done_at_once(
    rt: runtime.Runtime, world: dict, domain: dict
) -> None:
    number = world["zichuan"]
    await cases_reply("c-zichuan", f"{number} 改成核实中 电话联系过了", domain)
    _, messages = await cases_reply("c-zichuan", f"把{number}纳入监测 入户核实属实", domain)
    assert status_of(rt, number) == "纳入监测" and "纳入监测" in text_of(messages)
    _, messages = await cases_reply("c-yiyuan", f"{number} 改成风险消除 已稳定", domain)  # not theirs
    assert "没有编号为" in text_of(messages) and status_of(rt, number) == "纳入监测"


async def test_cancelling_the_reason_moves_nothing(rt: runtime.Runtime, world: dict, domain: dict) -> None:
    slots = {"cadre_case": world["zichuan"], "cadre_target": "核实中"}
    tracker = form_tracker("算了", "cadre_note", slots=slots, sender="c-zichuan", form="cadre_move_form")
    validated, messages = await run(ValidateCadreMoveForm(), tracker, domain)
    values = {e["name"]: e["value"] for e in validated if e["event"] == "slot"}
    assert values["cadre_note"] == "" and values["requested_slot"] is None and "先不改" in text_of(messages)
    _, messages = await run(ActionCadreMove(), make_tracker("c-zichuan", "算了", "cancel", slots=values), domain)
    assert status_of(rt, world["zichuan"]) == "已提交"


async def test_help_measures_and_abcd_from_words(rt: runtime.Runtime, world: dict, domain: dict) -> None:
    _, messages = await cases_reply("c-zichuan", f"给{world['zichuan']}登记临时救助2000元 住院", domain)
    assert "临时救助 2000 元" in text_of(messages)
    _, messages = await cases_reply("c-zichuan", "王志强家定成B类 原因是主要劳动力住院", domain)
    assert "定为 B 类" in text_of(messages)
    with rt.sessions() as session:
        assert session.execute(select(Household.abcd_class).where(Household.code == "ZC-1")).scalar_one() == "B"
    _, messages = await cases_reply("c-zichuan", "朱桂英家定成A类 能力强", domain)  # 沂源: not found
    assert "没找到" in text_of(messages)


async def test_monitored_households_by_place(rt: runtime.Runtime, world: dict, domain: dict) -> None:
    await cases_reply("c-zichuan", f"{world['zichuan']} 核实中 电话核实", domain)
    await cases_reply("c-zichuan", f"{world['zichuan']} 即时帮扶 属实", domain)
    _, messages = await cases_reply("c-zichuan", "太河镇的监测户", domain)
    assert world["zichuan"] in text_of(messages) and "共 1 户" in text_of(messages)
    _, messages = await cases_reply("c-zichuan", "燕崖镇的监测户", domain)  # not in 淄川: the whole jurisdiction
    assert world["yiyuan"] not in text_of(messages)


async def test_stats_come_as_text_and_a_png(world: dict, domain: dict) -> None:
    _, messages = await run(ActionCadreStats(), make_tracker("c-zichuan", "统计一下", "cadre_stats"), domain)
    assert "共 1 件" in text_of(messages)
    image = next(m["image"] for m in messages if m.get("image"))
    assert image.startswith("data:image/png;base64,")
    Image.open(io.BytesIO(base64.b64decode(image.split(",", 1)[1]))).verify()


async def test_export_sends_the_jurisdictions_list_as_a_file(rt: runtime.Runtime, world: dict, domain: dict) -> None:
    await cases_reply("c-zichuan", f"{world['zichuan']} 核实中 电话核实", domain)
    await cases_reply("c-zichuan", f"{world['zichuan']} 纳入监测 属实", domain)
    _, messages = await run(ActionCadreExport(), make_tracker("c-zichuan", "导出监测名单", "cadre_export"), domain)
    document = next(m["custom"]["document"] for m in messages if m.get("custom"))
    assert document["filename"].endswith(".xlsx") and dt.date.today().year > 2000
    rows = list(load_workbook(io.BytesIO(base64.b64decode(document["data"]))).active.iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][2] == ZICHUAN_ID and YIYUAN_ID not in str(rows)
