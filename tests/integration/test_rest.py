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
    assert {b["payload"] for b in buttons(parts)} >= {"/help", "/human_handoff"}


def test_greeting_has_menu_buttons(rasa_url: str) -> None:
    parts = post_message(rasa_url, "it-greet", "你好")
    assert "您好" in texts(parts)
    assert [b["payload"] for b in buttons(parts)] == ["/help", "/human_handoff"]


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
