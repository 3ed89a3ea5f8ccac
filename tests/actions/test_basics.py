from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import runtime
from actions.basics import ActionGreet, ActionHumanHandoff
from actions.db.models import ChatIdentity, Household, Person
from actions.services.demo import load_demo
from actions.services.identities import add_cadre
from tests.actions.conftest import make_tracker


async def test_anonymous_greeting_uses_the_static_menu(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionGreet().run(dispatcher, make_tracker("stranger", "你好", "greet"), domain)
    assert events == []
    assert dispatcher.messages[0]["response"] == "utter_greet"


async def test_cadre_is_greeted_by_name_and_jurisdiction(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    load_demo(rt.sessions)
    with rt.sessions.begin() as session:
        add_cadre(session, name="李<b>四</b>", region_path="淄博市/淄川区/太河镇", chat_id="777", channel="telegram")
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("777", "你好", "greet", metadata={"channel": "telegram"})
    await ActionGreet().run(dispatcher, tracker, domain)
    message = dispatcher.messages[0]
    assert "李&lt;b&gt;四&lt;/b&gt;同志您好" in message["text"]
    assert "淄博市/淄川区/太河镇" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ["/ask_policy", "/help", "/human_handoff"]


async def test_same_id_on_another_channel_is_not_the_cadre(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    load_demo(rt.sessions)
    with rt.sessions.begin() as session:
        add_cadre(session, name="李四", region_path="淄博市/淄川区/太河镇", chat_id="777", channel="telegram")
    dispatcher = CollectingDispatcher()
    await ActionGreet().run(dispatcher, make_tracker("777", "你好", "greet", channel="rest"), domain)
    assert dispatcher.messages[0]["response"] == "utter_greet"


async def test_greeting_survives_an_unreachable_database(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    with rt.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE chat_identities")
    dispatcher = CollectingDispatcher()
    await ActionGreet().run(dispatcher, make_tracker("someone", "你好", "greet"), domain)
    assert dispatcher.messages[0]["response"] == "utter_greet"


async def test_handoff_without_identity_names_whom_to_ask(rt: runtime.Runtime, domain: dict[str, Any]) -> None:
    dispatcher = CollectingDispatcher()
    await ActionHumanHandoff().run(dispatcher, make_tracker("x", "转人工", "human_handoff"), domain)
    text = dispatcher.messages[0]["text"]
    assert "帮扶干部" in text
    assert "民政扶贫办公室" in text
    assert "热线电话" not in text


async def test_handoff_shows_configured_hotline(
    rt: runtime.Runtime, domain: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    monkeypatch.setattr(runtime, "_runtime", replace(rt, settings=replace(rt.settings, handoff_contact="0533-12345")))
    dispatcher = CollectingDispatcher()
    await ActionHumanHandoff().run(dispatcher, make_tracker("x", "转人工", "human_handoff"), domain)
    assert "热线电话:0533-12345" in dispatcher.messages[0]["text"]


async def test_handoff_for_a_known_villager_lists_local_cadres_first(
    rt: runtime.Runtime, domain: dict[str, Any]
) -> None:
    load_demo(rt.sessions)
    with rt.sessions.begin() as session:
        household = session.execute(select(Household).where(Household.code == "DEMO-3703-0001")).scalar_one()
        person = session.execute(select(Person).where(Person.household_id == household.id)).scalars().first()
        session.add(ChatIdentity(channel="rest", channel_user_id="villager-1", person=person))
        add_cadre(session, name="村支书王", region_path="淄博市/淄川区/太河镇/东峪村", chat_id="c-1", channel="rest")
        add_cadre(session, name="外镇干部", region_path="淄博市/淄川区/岭子镇", chat_id="c-2", channel="rest")
    dispatcher = CollectingDispatcher()
    await ActionHumanHandoff().run(dispatcher, make_tracker("villager-1", "找人", "human_handoff"), domain)
    text = dispatcher.messages[0]["text"]
    assert text.index("村支书王") < text.index("演示·刘书记")
    assert "外镇干部" not in text
