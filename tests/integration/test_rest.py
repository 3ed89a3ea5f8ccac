"""Round trips through the REST channel against the real Rasa and action servers."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from sqlalchemy import inspect

from actions.db.session import make_engine
from actions.launcher import post_message
from actions.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration

CJK = re.compile(r"[\u4e00-\u9fff]")
DOMAIN = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))


def response_text(name: str) -> str:
    return str(DOMAIN["responses"][name][0]["text"])


def texts(parts: list[dict[str, Any]]) -> str:
    return "\n".join(str(p.get("text", "")) for p in parts)


def buttons(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for p in parts for b in p.get("buttons") or []]


def assert_clarification(parts: list[dict[str, Any]]) -> None:
    """A short Chinese clarification with suggestion buttons: the fallback or the out-of-scope reply."""
    assert texts(parts) in {response_text("utter_default"), response_text("utter_out_of_scope")}
    assert {b["payload"] for b in buttons(parts)} >= {"/ask_policy", "/help", "/human_handoff"}


def test_greeting_has_menu_buttons(rasa_url: str) -> None:
    parts = post_message(rasa_url, "it-greet", "你好")
    assert "您好" in texts(parts)
    assert [b["payload"] for b in buttons(parts)] == ["/ask_policy", "/help", "/human_handoff"]


def test_registered_cadre_is_greeted_with_jurisdiction(rasa_url: str) -> None:
    parts = post_message(rasa_url, "demo-cadre-taihe", "你好呀")
    assert "演示·刘书记" in texts(parts)
    assert "淄博市/淄川区/太河镇" in texts(parts)


@pytest.mark.parametrize("message", ["qwpoeiruty zmxncbv", "3.1415926", "😀😀😀🙏", "。。。？？"])
def test_nonsense_gets_a_clarification(rasa_url: str, message: str) -> None:
    assert_clarification(post_message(rasa_url, f"it-nonsense-{hash(message)}", message))


def test_button_payload_runs_its_intent(rasa_url: str) -> None:
    parts = post_message(rasa_url, "it-button", "/help")
    assert texts(parts) == response_text("utter_help")


def test_asked_whether_it_is_a_person_it_says_it_is_not(rasa_url: str) -> None:
    parts = post_message(rasa_url, "it-identity", "你到底是不是真人")
    assert texts(parts) == response_text("utter_bot_identity")
    assert "不是真人" in texts(parts)
    assert "/human_handoff" in [b["payload"] for b in buttons(parts)]


def test_an_acknowledgement_after_an_answer_gets_a_short_reply(rasa_url: str) -> None:
    post_message(rasa_url, "it-affirm", "特困供养一年给多少钱")
    assert texts(post_message(rasa_url, "it-affirm", "那中 俺明白了")) == response_text("utter_affirm")


def test_human_handoff_names_whom_to_ask(rasa_url: str) -> None:
    parts = post_message(rasa_url, "it-handoff", "俺要找工作人员")
    assert "帮扶干部" in texts(parts)
    assert "民政扶贫办" in texts(parts)


def test_ten_kilobyte_message_gets_a_chinese_reply(rasa_url: str) -> None:
    parts = post_message(rasa_url, "it-long", "俺家的事说来话长" * 1300, timeout=60)
    assert parts and CJK.search(texts(parts))


def test_injection_string_is_only_text(rasa_url: str, server_db: str) -> None:
    parts = post_message(rasa_url, "it-inject", "'; DROP TABLE households; -- <script>alert(1)</script>")
    assert parts and CJK.search(texts(parts))
    engine = make_engine(server_db)
    try:
        assert "households" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_conversation_keeps_going_after_bad_input(rasa_url: str) -> None:
    post_message(rasa_url, "it-after", "\x00\x01\x02")
    parts = post_message(rasa_url, "it-after", "谢谢")
    assert texts(parts) == response_text("utter_thanks")


def test_dibao_standard_with_region_date_and_source(rasa_url: str) -> None:
    text = texts(post_message(rasa_url, "it-dibao", "农村低保标准是多少"))
    assert "5220" in text
    assert "枣庄市" in text
    assert "2020-07" in text
    assert "来源:《" in text


def test_tekun_amount(rasa_url: str) -> None:
    text = texts(post_message(rasa_url, "it-tekun", "特困供养一年给多少钱"))
    assert "5616" in text
    assert "来源:《" in text


def test_qihuibao_prices(rasa_url: str) -> None:
    text = texts(post_message(rasa_url, "it-qhb", "齐惠保多少钱一年"))
    assert "99 元" in text and "10 元" in text and "建档立卡" in text
    assert "淄博" in text
    assert "来源:《" in text


def test_yulu_says_who_it_supports(rasa_url: str) -> None:
    text = texts(post_message(rasa_url, "it-yulu", "雨露计划资助谁"))
    assert "中高职" in text or "中职" in text
    assert "来源:《" in text


def test_traditional_characters_are_understood(rasa_url: str) -> None:
    assert "5220" in texts(post_message(rasa_url, "it-trad", "農村低保標準是多少"))


def test_follow_up_question_keeps_the_policy(rasa_url: str) -> None:
    post_message(rasa_url, "it-follow", "特困供养是啥")
    text = texts(post_message(rasa_url, "it-follow", "那一年给多少钱"))
    assert "5616" in text


@pytest.mark.parametrize("message", ["新农合到外地看病能报销不", "居民养老保险每年交多少"])
def test_question_outside_the_knowledge_base_gets_an_honest_reply(rasa_url: str, message: str) -> None:
    parts = post_message(rasa_url, f"it-gap-{hash(message)}", message)
    text = texts(parts)
    assert "村委会" in text and "12345" in text
    assert set(re.findall(r"\d+", text)) <= {"2020", "12345"}
    assert "来源" not in text


def test_uncovered_question_after_an_answer_does_not_get_that_answer(rasa_url: str) -> None:
    post_message(rasa_url, "it-gap-after", "雨露计划资助谁")
    text = texts(post_message(rasa_url, "it-gap-after", "城乡居民养老保险咋交"))
    assert "雨露计划" not in text and "12345" in text
