from __future__ import annotations

import json
import re
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.policy import ActionAnswerPolicy, ActionClarify, policy_button
from actions.services.answers import TELEGRAM_LIMIT
from actions.services.identities import add_cadre
from actions.services.regions import get_or_create_region
from tests.actions.conftest import make_tracker


async def answer(tracker: Any, domain: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerPolicy().run(dispatcher, tracker, domain)
    return dispatcher.messages, events


async def clarify(tracker: Any, domain: dict[str, Any]) -> list[dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    await ActionClarify().run(dispatcher, tracker, domain)
    return dispatcher.messages


def all_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


async def test_amount_question_gets_the_figure_first_with_region_date_and_source(
    rt: runtime.Runtime, domain: dict[str, Any]
) -> None:
    tracker = make_tracker("u", "低保一年给多少钱", "ask_policy", entities={"policy": "dibao", "aspect": "amount"})
    messages, events = await answer(tracker, domain)
    lines = all_text(messages).splitlines()
    assert lines[0] == "<b>农村低保</b>(枣庄市)"
    assert "5220" in lines[1] and lines[1].startswith("• 枣庄市:") and "2020-07" in lines[1]
    assert lines[-1].startswith("来源:《") and "枣庄日报" in lines[-1] and "2020-10-17" in lines[-1]
    assert "干部参考" not in all_text(messages)
    assert events == [{"event": "slot", "timestamp": None, "name": "policy", "value": "dibao"}]


async def test_buttons_offer_more_and_related_entries(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    messages, _ = await answer(make_tracker("u", "低保", "ask_policy", entities={"policy": "dibao"}), domain)
    buttons = messages[-1]["buttons"]
    assert buttons[0]["title"] == "更多"
    assert buttons[0]["payload"] == '/ask_policy{"policy":"dibao","aspect":"more"}'
    related = [json.loads(b["payload"].removeprefix("/ask_policy"))["policy"] for b in buttons[1:]]
    assert related and set(related) <= set(rt.knowledge.policies)
    assert all(len(b["payload"].encode()) <= 64 for b in buttons)


async def test_cadre_gets_the_programme_figures(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    with rt.sessions.begin() as session:
        get_or_create_region(session, ["枣庄市"])
        add_cadre(session, name="孙", region_path="枣庄市", chat_id="c1", channel="rest")
    messages, _ = await answer(make_tracker("c1", "低保", "ask_policy", entities={"policy": "dibao"}), domain)
    text = all_text(messages)
    assert "【干部参考】" in text
    assert "32424" in text


async def test_other_region_is_told_the_programme_is_not_theirs(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    tracker = make_tracker(
        "u", "淄川有没有低保", "ask_policy", entities=[("region", "淄博市/淄川区"), ("policy", "dibao")]
    )
    text = all_text((await answer(tracker, domain))[0])
    assert "这是枣庄市的做法" in text
    assert "报告里没有写淄博市淄川区也有这一项" in text


async def test_uncovered_question_is_honest_and_has_no_policy_figure(
    rt: runtime.Runtime, domain: dict[str, Any]
) -> None:
    messages, events = await answer(make_tracker("u", "城乡居民养老保险一年交多少", "ask_policy"), domain)
    text = all_text(messages)
    assert "没有答案" in text and "村委会" in text and "12345" in text
    assert set(re.findall(r"\d+", text)) <= {"2020", "12345"}
    assert events == [{"event": "slot", "timestamp": None, "name": "policy", "value": None}]


async def test_a_typo_is_asked_about_not_guessed(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    messages, _ = await answer(make_tracker("u", "齐回保多少钱", "ask_policy"), domain)
    assert "点一下" in messages[0]["text"]
    assert '/ask_policy{"policy":"qihuibao"}' in [b["payload"] for b in messages[0]["buttons"]]
    assert "99" not in messages[0]["text"]


async def test_follow_up_aspect_uses_the_policy_in_the_slot(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    tracker = make_tracker("u", "那咋申请呢", "ask_policy", entities={"aspect": "apply"}, slots={"policy": "yulu"})
    text = all_text((await answer(tracker, domain))[0])
    assert text.startswith("<b>雨露计划</b>")


async def test_follow_up_region_uses_the_policy_in_the_slot(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    entities = [("region", "淄博市/淄川区", 1, 3)]
    tracker = make_tracker("u", "那淄川有没有", "ask_policy", entities=entities, slots={"policy": "dibao"})
    text = all_text((await answer(tracker, domain))[0])
    assert text.startswith("<b>农村低保</b>(枣庄市)")
    assert "淄博市淄川区" in text


async def test_another_programme_is_not_answered_with_the_last_one(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    entities = [("aspect", "apply", 8, 10)]
    tracker = make_tracker("u", "城乡居民养老保险咋交", "ask_policy", entities=entities, slots={"policy": "yulu"})
    messages, events = await answer(tracker, domain)
    text = all_text(messages)
    assert "雨露计划</b>" not in text
    assert "12345" in text
    assert events == [{"event": "slot", "timestamp": None, "name": "policy", "value": None}]


async def test_a_general_question_does_not_reuse_the_slot(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    tracker = make_tracker("u", "有啥补贴能领", "ask_policy", slots={"policy": "dibao"})
    text = all_text((await answer(tracker, domain))[0])
    assert "农村低保</b>" not in text


async def test_many_policies_at_once_are_asked_about(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    tracker = make_tracker(
        "u", "低保特困临时救助都说说", "ask_policy",
        entities=[("policy", "dibao"), ("policy", "tekun"), ("policy", "linshi_jiuzhu")],
    )  # fmt: skip
    messages, _ = await answer(tracker, domain)
    assert len(messages) == 1
    assert len(messages[0]["buttons"]) == 3


async def test_menu_button_without_policy_lists_topics(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    messages, _ = await answer(make_tracker("u", "/ask_policy", "ask_policy"), domain)
    assert "想问哪项政策" in messages[0]["text"]
    assert len(messages[0]["buttons"]) >= 4


@pytest.mark.parametrize("aspect", [None, "amount", "eligibility", "apply", "contact", "what", "more"])
async def test_every_entry_renders_for_every_aspect_within_telegram_limits(
    rt: runtime.Runtime, domain: dict[str, Any], aspect: str | None
) -> None:
    with rt.sessions.begin() as session:
        get_or_create_region(session, ["淄博市"])
        add_cadre(session, name="赵", region_path="淄博市", chat_id="c2", channel="rest")
    for policy_id, policy in rt.knowledge.policies.items():
        entities = {"policy": policy_id} | ({"aspect": aspect} if aspect else {})
        messages, _ = await answer(make_tracker("c2", policy.name, "ask_policy", entities=entities), domain)
        text = all_text(messages)
        assert text.startswith(f"<b>{policy.name}</b>"), policy_id
        assert "来源:《" in text, policy_id
        assert all(len(m["text"]) <= TELEGRAM_LIMIT for m in messages)
        assert "\n\n\n" not in text, policy_id


async def test_clarify_offers_near_policies(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    messages = await clarify(make_tracker("u", "那个齐回保", "nlu_fallback"), domain)
    assert '/ask_policy{"policy":"qihuibao"}' in [b["payload"] for b in messages[0]["buttons"]]


async def test_clarify_without_candidates_uses_the_general_reply(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    messages = await clarify(make_tracker("u", "qwerty", "nlu_fallback"), domain)
    assert messages[0]["response"] == "utter_default"


async def test_clarify_offers_the_policy_a_vague_follow_up_is_about(
    rt: runtime.Runtime, domain: dict[str, Any]
) -> None:
    entities = [("region", "淄博市/淄川区", 0, 2)]
    tracker = make_tracker("u", "淄川有没有", "nlu_fallback", entities=entities, slots={"policy": "tekun"})
    [button] = (await clarify(tracker, domain))[0]["buttons"]
    assert button["title"] == "特困供养"
    assert json.loads(button["payload"].removeprefix("/ask_policy")) == {"policy": "tekun", "region": "淄博市/淄川区"}
    assert len(button["payload"].encode()) <= 64


async def test_clarify_does_not_follow_up_a_question_about_something_else(
    rt: runtime.Runtime, domain: dict[str, Any]
) -> None:
    entities = [("aspect", "apply", 3, 5)]
    tracker = make_tracker("u", "宅基地咋申请", "nlu_fallback", entities=entities, slots={"policy": "tekun"})
    assert (await clarify(tracker, domain))[0]["response"] == "utter_default"


def test_a_region_too_long_for_a_button_is_left_out(rt: runtime.Runtime) -> None:
    policy = rt.knowledge.policies["zichuan_jiance"]
    button = policy_button(policy, "amount", "淄博市/淄川区/太河镇/某某村民委员会")
    assert json.loads(button["payload"].removeprefix("/ask_policy")) == {"policy": "zichuan_jiance", "aspect": "amount"}
