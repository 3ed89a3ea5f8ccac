"""The cadre workspace over REST: a registered cadre lists a fresh declaration of their village and moves it to
纳入监测; the villager who declared sees 纳入监测 at their next status question. A villager is refused."""

from __future__ import annotations

import re
from typing import Any

import pytest

from actions.launcher import post_message
from tests.conftest import make_id_number

pytestmark = pytest.mark.integration

CASE_NO = re.compile(r"SB-\d{4}-\d{6}")
VILLAGER, CADRE = "it-cadre-villager", "demo-cadre-taihe"  # the demo cadre of 淄博市/淄川区/太河镇 (rest)
ID_NUMBER = make_id_number("19680303", 512)


def texts(parts: list[dict[str, Any]]) -> str:
    return "\n".join(str(p.get("text", "")) for p in parts)


def payloads(parts: list[dict[str, Any]]) -> list[str]:
    return [b["payload"] for p in parts for b in p.get("buttons") or []]


def declare(rasa_url: str) -> str:
    for message in (
        "俺家房子让暴雨冲塌了一半 修房子得花四万",
        "赵春花",
        ID_NUMBER,
        "13900005120",
        "太河镇东峪村",
        "三口人",
        "两万",
    ):
        post_message(rasa_url, VILLAGER, message)
    found = CASE_NO.search(texts(post_message(rasa_url, VILLAGER, "提交")))
    assert found is not None
    return found.group()


def test_a_cadre_lists_and_moves_a_fresh_declaration_and_the_villager_sees_it(rasa_url: str) -> None:
    case_no = declare(rasa_url)

    listed = post_message(rasa_url, CADRE, "看看俺这片还有哪些申报没核实")
    assert case_no in texts(listed) and ID_NUMBER not in texts(listed)
    shown = post_message(rasa_url, CADRE, f"查一下{case_no}")
    assert "赵春花" in texts(shown) and ID_NUMBER not in texts(shown)
    verify = f'/cadre_cases{{"case_no":"{case_no}","target_status":"核实中"}}'
    assert verify in payloads(shown)
    asked = texts(post_message(rasa_url, CADRE, verify))
    assert "原因" in asked and "比如" not in asked  # the question alone, no complaint about a reason not yet given
    assert "核实中" in texts(post_message(rasa_url, CADRE, "已电话联系 明天入户"))
    moved = texts(post_message(rasa_url, CADRE, f"{case_no} 纳入监测 入户看过了 房子确实塌了"))
    assert "纳入监测" in moved

    status = texts(post_message(rasa_url, VILLAGER, "/declaration_status"))
    assert case_no in status and "纳入监测" in status


def test_a_villager_gets_no_cadre_data(rasa_url: str) -> None:
    refused = texts(post_message(rasa_url, "it-cadre-stranger", "/cadre_stats"))
    assert "只对登记过的干部开放" in refused
    refused = texts(post_message(rasa_url, "it-cadre-stranger", "/cadre_export"))
    assert "只对登记过的干部开放" in refused


def test_statistics_come_with_a_chart_image(rasa_url: str) -> None:
    reply = post_message(rasa_url, CADRE, "/cadre_stats")
    assert "困难申报统计" in texts(reply)
    assert any(str(p.get("image", "")).startswith("data:image/png;base64,") for p in reply)


def test_an_administrator_invites_a_cadre_who_then_works_their_own_place(rasa_url: str) -> None:
    admin, newcomer = "demo-cadre-zaozhuang", "it-new-cadre"  # 孙科长 administers 枣庄市 in the demo data
    refused = texts(post_message(rasa_url, newcomer, "我是泥沟村新来的网格员 给我开通干部权限"))
    assert "管理员" in refused and "登记好了" not in refused

    asked = texts(post_message(rasa_url, admin, "帮我登记个新干部"))
    assert "叫什么名字" in asked and "没找到" not in asked and "姓名请写" not in asked
    assert "负责哪里" in texts(post_message(rasa_url, admin, "王敏"))
    invited = texts(post_message(rasa_url, admin, "泥沟村"))
    code = re.search(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}", invited)
    assert code is not None, invited

    joined = texts(post_message(rasa_url, newcomer, f"干部绑定 {code.group()}"))
    assert "登记好了" in joined and "枣庄市/台儿庄区/泥沟镇/泥沟村" in joined
    stats = texts(post_message(rasa_url, newcomer, "/cadre_stats"))
    assert "只对登记过的干部开放" not in stats
    again = texts(post_message(rasa_url, "it-someone-else", f"干部绑定 {code.group()}"))
    assert "用过" in again
