"""齐惠保 price and reimbursement answers through the policy actions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.db.models import ChatIdentity, Household, Person
from actions.policy import ActionAnswerPolicy, ActionClarify
from actions.services.regions import get_or_create_region
from tests.actions.conftest import make_tracker
from tests.conftest import make_id_number


async def answer(tracker: Any, domain: dict[str, Any], action: Any = None) -> list[dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    await (action or ActionAnswerPolicy()).run(dispatcher, tracker, domain)
    return dispatcher.messages


def text_of(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def qihuibao(text: str, aspect: str | None = "amount", sender: str = "u1", **extra: str) -> Any:
    entities = {"policy": "qihuibao", **({"aspect": aspect} if aspect else {}), **extra}
    return make_tracker(sender, text, "ask_policy", entities=entities)


async def test_the_issue_example_shows_24000_and_the_arithmetic(rt: runtime.Runtime, domain: dict) -> None:
    text = text_of(await answer(qihuibao("医保报完自己还要出5万,齐惠保能报多少?"), domain))
    assert "<b>24000 元</b>" in text
    assert "(50000 − 20000)× 80% = 24000 元" in text
    assert "总花费" not in text  # it said the sum is what is left after 医保


async def test_a_sum_not_said_to_be_after_basic_insurance_says_what_it_assumed(
    rt: runtime.Runtime, domain: dict
) -> None:
    text = text_of(await answer(qihuibao("住院花了5万齐惠保能报多少"), domain))
    assert "24000" in text and "总花费" in text


async def test_below_the_line_explains_why_nothing_is_paid(rt: runtime.Runtime, domain: dict) -> None:
    text = text_of(await answer(qihuibao("自己出了一万五 齐惠保报多少"), domain))
    assert "报不了" in text and "2万元" in text
    assert "算法" not in text


async def test_the_cap_is_applied_and_named(rt: runtime.Runtime, domain: dict) -> None:
    text = text_of(await answer(qihuibao("门诊特药医保报完自己还得出两百万 能报多少"), domain))
    assert "<b>1000000 元</b>" in text and "门诊特定高额药品医疗费用的保额 100万元" in text


async def test_an_unreadable_sum_is_asked_for_in_yuan(rt: runtime.Runtime, domain: dict) -> None:
    messages = await answer(qihuibao("自己掏了好几万 齐惠保能报多少"), domain)
    assert "用元写" in text_of(messages) and "几万" in text_of(messages)
    assert "算法" not in text_of(messages)


async def test_several_sums_are_asked_about_with_buttons(rt: runtime.Runtime, domain: dict) -> None:
    messages = await answer(qihuibao("花了10万 报了6万 齐惠保能报多少"), domain)
    buttons = messages[-1]["buttons"]
    assert [b["title"] for b in buttons] == ["100,000 元", "60,000 元"]
    for b in buttons:
        assert len(b["payload"].encode()) <= 64
        assert json.loads(b["payload"].removeprefix("/ask_policy"))["policy"] == "qihuibao"
    tracker = make_tracker(
        "u1", buttons[1]["payload"], "ask_policy", entities={"policy": "qihuibao", "amount": "60000"}
    )
    picked = text_of(await answer(tracker, domain))
    assert "(60000 − 20000)× 80% = 32000 元" in picked and "总花费" not in picked


async def test_sums_after_a_qihuibao_answer_are_a_follow_up(rt: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "花了10万 医保报了6万", "ask_policy", slots={"policy": "qihuibao"})
    messages = await answer(tracker, domain)
    assert [b["title"] for b in messages[-1]["buttons"]] == ["100,000 元", "60,000 元"]


async def test_price_question_from_an_unknown_chat_shows_both_prices(rt: runtime.Runtime, domain: dict) -> None:
    messages = await answer(qihuibao("齐惠保一年交多少钱"), domain)
    text = text_of(messages)
    assert "99 元" in text and "10 元" in text and "建档立卡" in text
    assert "200万元" in text and "80%" in text
    assert messages[-1]["buttons"][0]["payload"] == "/enroll_insurance"


@pytest.mark.parametrize(("poor", "premium"), [(True, "10"), (False, "99")])
async def test_price_for_a_linked_person_uses_their_household(
    rt: runtime.Runtime, domain: dict, poor: bool, premium: str
) -> None:
    with rt.sessions.begin() as session:
        region = get_or_create_region(session, ["淄博市", "淄川区", "太河镇", "东峪村"])
        household = Household(code="H1", region=region, status="一般农户", is_registered_poor=poor)
        person = Person(household=household, name="王志强", id_number=make_id_number(sequence=5))
        session.add(ChatIdentity(channel="rest", channel_user_id="u1", person=person))
    text = text_of(await answer(qihuibao("俺交多少钱"), domain))
    assert f"<b>{premium} 元</b>" in text
    assert ("是建档立卡" if poor else "不是建档立卡") in text


async def test_a_sum_after_a_qihuibao_answer_is_estimated(rt: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "那自己出八万呢", "ask_policy", slots={"policy": "qihuibao"})
    assert "48000" in text_of(await answer(tracker, domain))
    tracker = make_tracker("u1", "8万", "nlu_fallback", slots={"policy": "qihuibao"})
    assert "48000" in text_of(await answer(tracker, domain, ActionClarify()))


async def test_a_sum_about_something_else_is_not_estimated(rt: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "城乡居民养老保险一年交300块", "ask_policy", slots={"policy": "qihuibao"})
    assert "算法" not in text_of(await answer(tracker, domain))


async def test_qihuibao_answers_offer_enrollment(rt: runtime.Runtime, domain: dict) -> None:
    messages = await answer(qihuibao("齐惠保咋办理", aspect="apply"), domain)
    assert "/enroll_insurance" in [b["payload"] for b in messages[-1]["buttons"]]
