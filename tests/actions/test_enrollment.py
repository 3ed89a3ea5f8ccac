"""齐惠保 enrollment actions with CollectingDispatcher: start, each validation, the confirm step, submit, status."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

from actions import runtime
from actions.db.models import ChatIdentity, Enrollment, Household, Person
from actions.db.types import id_number_digest
from actions.enrollment import (
    ActionAskEnrollConfirm,
    ActionAskEnrollIdNumber,
    ActionEnrollStart,
    ActionEnrollSubmit,
    ActionInsuranceStatus,
    ValidateEnrollmentForm,
)
from actions.services.insurance import enroll
from actions.services.regions import get_or_create_region
from tests.actions.conftest import form_tracker, make_tracker, payloads, run, slots_of, text_of
from tests.conftest import ORDINARY_ID, POOR_ID, ZAOZHUANG_ID, make_id_number


@pytest.fixture
def people(rt: runtime.Runtime) -> runtime.Runtime:
    with rt.sessions.begin() as session:
        for name, id_number, poor, city in (
            ("王志强", POOR_ID, True, "淄博市"),
            ("刘立新", ORDINARY_ID, False, "淄博市"),
            ("赵永刚", ZAOZHUANG_ID, False, "枣庄市"),
        ):
            region = get_or_create_region(session, [city, "某区", "某镇", "某村"])
            household = Household(code=f"H-{id_number[-4:]}", region=region, status="一般农户", is_registered_poor=poor)
            session.add(Person(household=household, name=name, id_number=id_number, phone="13300002486"))
    return rt


async def validate(tracker: Tracker, domain: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ValidateEnrollmentForm().run(dispatcher, tracker, domain)
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}, dispatcher.messages


def bind(rt: runtime.Runtime, sender: str, id_number: str) -> None:
    with rt.sessions.begin() as session:
        found = select(Person.id).where(Person.id_number_hash == id_number_digest(id_number))
        person_id = session.execute(found).scalar_one()
        session.add(ChatIdentity(channel="rest", channel_user_id=sender, person_id=person_id))


def enrollments(rt: runtime.Runtime) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count()).select_from(Enrollment)).scalar_one())


# --- start -----------------------------------------------------------------------------------------------------------


async def test_start_for_an_unknown_chat_user_asks_everything(people: runtime.Runtime, domain: dict) -> None:
    events, messages = await run(ActionEnrollStart(), make_tracker("u1", "我要参保", "enroll_insurance"), domain)
    assert slots_of(events) == {"enroll_ready": True}
    assert "姓名、身份证号、手机号" in text_of(messages)
    assert "取消" in text_of(messages)


async def test_start_from_zaozhuang_is_refused_with_local_options(people: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "俺是枣庄的 能办齐惠保不", "enroll_insurance", entities={"region": "枣庄市"})
    events, messages = await run(ActionEnrollStart(), tracker, domain)
    assert slots_of(events) == {"enroll_ready": False}
    assert "淄博市的保险" in text_of(messages) and "枣庄市" in text_of(messages)
    assert '/ask_policy{"policy":"yibao_daijiao"}' in payloads(messages)
    assert "/human_handoff" in payloads(messages)


async def test_start_for_a_linked_person_outside_zibo_is_refused(people: runtime.Runtime, domain: dict) -> None:
    bind(people, "u1", ZAOZHUANG_ID)
    events, messages = await run(ActionEnrollStart(), make_tracker("u1", "我要参保", "enroll_insurance"), domain)
    assert slots_of(events) == {"enroll_ready": False}
    assert "枣庄市某区某镇某村的户口参加不了" in text_of(messages)


async def test_start_for_a_linked_person_fills_in_what_is_known(people: runtime.Runtime, domain: dict) -> None:
    bind(people, "u1", POOR_ID)
    events, messages = await run(ActionEnrollStart(), make_tracker("u1", "我要参保", "enroll_insurance"), domain)
    assert slots_of(events) == {
        "enroll_name": "王志强",
        "enroll_id_number": POOR_ID,
        "enroll_phone": "13300002486",
        "enroll_ready": True,
    }
    assert "参保人是王志强" in text_of(messages)
    assert POOR_ID not in text_of(messages)


async def test_start_for_a_linked_person_enrolled_this_year_returns_the_enrollment(
    people: runtime.Runtime, domain: dict
) -> None:
    bind(people, "u1", POOR_ID)
    first = enroll(
        people.sessions, people.insurance_terms, name="王志强", id_number=POOR_ID,
        phone="13300002486", year=people.settings.insurance_year or __import__("datetime").date.today().year,
        channel="rest", channel_user_id="u1",
    )  # fmt: skip
    events, messages = await run(ActionEnrollStart(), make_tracker("u1", "我要参保", "enroll_insurance"), domain)
    assert slots_of(events) == {"enroll_ready": False}
    assert first.enrollment.reference in text_of(messages)
    assert "已经登记过了" in text_of(messages)


# --- validation ------------------------------------------------------------------------------------------------------


async def test_name_is_taken_from_what_people_type(people: runtime.Runtime, domain: dict) -> None:
    assert (await validate(form_tracker("我叫王志强。", "enroll_name"), domain))[0] == {"enroll_name": "王志强"}
    assert (await validate(form_tracker("阿依古丽·买买提", "enroll_name"), domain))[0] == {
        "enroll_name": "阿依古丽·买买提"
    }


async def test_everything_sent_at_once_is_taken_at_once(people: runtime.Runtime, domain: dict) -> None:
    slots, messages = await validate(form_tracker(f"王志强 {POOR_ID} 13300002486", "enroll_name"), domain)
    assert slots == {"enroll_name": "王志强", "enroll_id_number": POOR_ID, "enroll_id_failures": 0,
                     "enroll_phone": "13300002486"}  # fmt: skip
    assert messages == []
    slots, _ = await validate(form_tracker(f"俺叫王志强,身份证号{POOR_ID}", "enroll_name"), domain)
    assert slots == {"enroll_name": "王志强", "enroll_id_number": POOR_ID, "enroll_id_failures": 0}


async def test_a_wrong_number_sent_with_the_name_keeps_the_name(people: runtime.Runtime, domain: dict) -> None:
    slots, messages = await validate(form_tracker(f"王志强 {POOR_ID[:-1]}5", "enroll_name"), domain)
    assert slots == {"enroll_name": "王志强", "enroll_id_number": None, "enroll_id_failures": 1}
    assert "校验码" in text_of(messages)


async def test_numbers_with_words_around_them_are_found(people: runtime.Runtime, domain: dict) -> None:
    tracker = form_tracker(f"身份证号:{POOR_ID}", "enroll_id_number", slots={"enroll_name": "王志强"})
    assert (await validate(tracker, domain))[0] == {"enroll_id_number": POOR_ID, "enroll_id_failures": 0}
    assert (await validate(form_tracker("手机13300002486", "enroll_phone"), domain))[0] == {
        "enroll_phone": "13300002486"
    }


@pytest.mark.parametrize(
    "text",
    [
        "啥意思啊",
        "a",
        "12345",
        "齐惠保到底多少钱啊 你先告诉俺",
        "提交",
        "确认",
        "说不准",
        "其他",
        "因病",
        "你好",
        "低保",
    ],
)
async def test_what_is_not_a_name_is_asked_again(people: runtime.Runtime, domain: dict, text: str) -> None:
    slots, messages = await validate(form_tracker(text, "enroll_name"), domain)
    assert slots == {"enroll_name": None}
    assert messages and "取消" in payloads(messages)


async def test_a_question_instead_of_a_name_says_what_this_step_needs(people: runtime.Runtime, domain: dict) -> None:
    slots, messages = await validate(form_tracker("低保咋申请", "enroll_name", intent="ask_policy"), domain)
    assert slots == {"enroll_name": None}
    assert "这一步要填的是姓名" in text_of(messages)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("370399195007140045", "校验码"),
        ("37039919500714004", "位数不对"),
        ("370399195002300048", "出生日期"),
        ("37039919500714004A", "不该有的字符"),
        ("123", "位数不对"),
    ],
)
async def test_a_wrong_id_number_is_answered_with_what_is_wrong(
    people: runtime.Runtime, domain: dict, text: str, says: str
) -> None:
    slots, messages = await validate(form_tracker(text, "enroll_id_number", slots={"enroll_name": "王志强"}), domain)
    assert slots == {"enroll_id_number": None, "enroll_id_failures": 1}
    assert says in text_of(messages)
    assert "/human_handoff" not in payloads(messages)


async def test_the_third_wrong_id_number_offers_a_person(people: runtime.Runtime, domain: dict) -> None:
    tracker = form_tracker("110105194912310021", "enroll_id_number", slots={"enroll_id_failures": 2.0})
    slots, messages = await validate(tracker, domain)
    assert slots["enroll_id_failures"] == 3
    assert "找工作人员" in text_of(messages)
    assert payloads(messages)[:1] == ["/human_handoff"]


async def test_id_number_of_someone_else_is_refused_without_saying_whose(people: runtime.Runtime, domain: dict) -> None:
    slots, messages = await validate(form_tracker(POOR_ID, "enroll_id_number", slots={"enroll_name": "李四"}), domain)
    assert slots == {"enroll_id_number": None, "enroll_id_failures": 1}
    assert "对不上" in text_of(messages)
    assert "王志强" not in text_of(messages)


async def test_valid_id_number_is_kept_normalised(people: runtime.Runtime, domain: dict) -> None:
    spaced = f"{POOR_ID[:6]} {POOR_ID[6:14]} {POOR_ID[14:]}".lower()
    slots, messages = await validate(form_tracker(spaced, "enroll_id_number", slots={"enroll_name": "王志强"}), domain)
    assert slots == {"enroll_id_number": POOR_ID, "enroll_id_failures": 0}
    assert messages == []


async def test_household_outside_zibo_ends_the_form(people: runtime.Runtime, domain: dict) -> None:
    tracker = form_tracker(ZAOZHUANG_ID, "enroll_id_number", slots={"enroll_name": "赵永刚"})
    slots, _ = await validate(tracker, domain)
    assert slots["enroll_confirm"] == "outside"
    assert slots["requested_slot"] is None


@pytest.mark.parametrize(("text", "valid"), [("133 0000 2486", "13300002486"), ("+8613300002486", "13300002486")])
async def test_phone_numbers(people: runtime.Runtime, domain: dict, text: str, valid: str) -> None:
    assert (await validate(form_tracker(text, "enroll_phone"), domain))[0] == {"enroll_phone": valid}


@pytest.mark.parametrize("text", ["1330000248", "23300002486", "0533-1234567", "没有手机"])
async def test_wrong_phone_numbers_are_asked_again(people: runtime.Runtime, domain: dict, text: str) -> None:
    slots, messages = await validate(form_tracker(text, "enroll_phone"), domain)
    assert slots == {"enroll_phone": None}
    assert "11 位" in text_of(messages)


@pytest.mark.parametrize(
    ("slot", "text", "intent"),
    [
        ("enroll_name", "算了不办了", "cancel"),
        ("enroll_id_number", "取消", "nlu_fallback"),
        ("enroll_phone", "先不弄了 俺问问俺儿", "cancel"),
        ("enroll_confirm", "取消", "cancel"),
    ],
)
async def test_cancel_at_any_step_ends_the_form(
    people: runtime.Runtime, domain: dict, slot: str, text: str, intent: str
) -> None:
    slots, messages = await validate(form_tracker(text, slot, intent=intent), domain)
    assert slots["enroll_confirm"] == "cancel"
    assert slots["requested_slot"] is None
    assert messages == []


async def test_asking_for_a_person_ends_the_form(people: runtime.Runtime, domain: dict) -> None:
    slots, _ = await validate(form_tracker("/human_handoff", "enroll_id_number", intent="human_handoff"), domain)
    assert slots["enroll_confirm"] == "handoff"
    assert slots["requested_slot"] is None


async def test_a_named_field_can_be_corrected_at_any_step(people: runtime.Runtime, domain: dict) -> None:
    tracker = form_tracker("名字写错了", "enroll_phone", slots={"enroll_name": "王志刚", "enroll_id_number": POOR_ID})
    slots, _ = await validate(tracker, domain)
    assert slots["enroll_name"] is None
    assert slots["enroll_phone"] is None


CONFIRMING = {"enroll_name": "王志强", "enroll_id_number": POOR_ID, "enroll_phone": "13300002486"}


@pytest.mark.parametrize(("text", "intent"), [("确认", "nlu_fallback"), ("对 没错", "affirm"), ("中", "affirm")])
async def test_confirm(people: runtime.Runtime, domain: dict, text: str, intent: str) -> None:
    slots, _ = await validate(form_tracker(text, "enroll_confirm", intent=intent, slots=CONFIRMING), domain)
    assert slots == {"enroll_confirm": "yes"}


async def test_edit_asks_which_field_then_clears_it(people: runtime.Runtime, domain: dict) -> None:
    slots, _ = await validate(form_tracker("修改", "enroll_confirm", slots=CONFIRMING), domain)
    assert slots == {"enroll_confirm": None, "enroll_editing": True}
    tracker = form_tracker("身份证号", "enroll_confirm", slots={**CONFIRMING, "enroll_editing": True})
    slots, _ = await validate(tracker, domain)
    assert slots == {"enroll_confirm": None, "enroll_id_number": None, "enroll_editing": False}


async def test_a_new_phone_number_at_the_confirm_step_replaces_the_old(people: runtime.Runtime, domain: dict) -> None:
    slots, _ = await validate(form_tracker("13912345678", "enroll_confirm", slots=CONFIRMING), domain)
    assert slots == {"enroll_confirm": None, "enroll_phone": "13912345678"}


async def test_anything_else_at_the_confirm_step_asks_again(people: runtime.Runtime, domain: dict) -> None:
    slots, messages = await validate(form_tracker("嗯嗯那个啥", "enroll_confirm", slots=CONFIRMING), domain)
    assert slots == {"enroll_confirm": None}
    assert "确认" in text_of(messages)


# --- asking ---------------------------------------------------------------------------------------------------------


async def test_id_number_is_asked_with_the_privacy_line_first_and_briefly_after_a_mistake(
    people: runtime.Runtime, domain: dict
) -> None:
    dispatcher = CollectingDispatcher()
    await ActionAskEnrollIdNumber().run(dispatcher, make_tracker("u1", "王志强", "nlu_fallback"), domain)
    assert dispatcher.messages[0]["response"] == "utter_ask_enroll_id_number"
    privacy = domain["responses"]["utter_ask_enroll_id_number"][0]["text"]
    assert "为啥要身份证号" in privacy and "遮住" in privacy
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("u1", "123", "nlu_fallback", slots={"enroll_id_failures": 1.0})
    await ActionAskEnrollIdNumber().run(dispatcher, tracker, domain)
    assert dispatcher.messages[0]["response"] == "utter_ask_enroll_id_number_again"


async def test_confirmation_shows_masked_details_and_the_premium(people: runtime.Runtime, domain: dict) -> None:
    events, messages = await run(ActionAskEnrollConfirm(), make_tracker("u1", "x", "nlu_fallback", slots=CONFIRMING),
                                 domain)  # fmt: skip
    text = text_of(messages)
    assert POOR_ID not in text and "13300002486" not in text
    assert f"{POOR_ID[:4]}**********{POOR_ID[-4:]}" in text and "133****2486" in text
    assert "<b>10 元</b>" in text and "建档立卡" in text
    assert [b["title"] for b in messages[0]["buttons"]] == ["确认", "修改", "取消"]


async def test_after_edit_the_confirm_step_asks_which_field(people: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "修改", "nlu_fallback", slots={**CONFIRMING, "enroll_editing": True})
    _, messages = await run(ActionAskEnrollConfirm(), tracker, domain)
    assert messages[0]["response"] == "utter_ask_enroll_field"
    buttons = domain["responses"]["utter_ask_enroll_field"][0]["buttons"]
    assert [b["payload"] for b in buttons] == ["姓名", "身份证号", "手机号", "取消"]


async def test_confirmation_for_someone_not_in_the_database_says_99_and_unverified(
    people: runtime.Runtime, domain: dict
) -> None:
    slots = {**CONFIRMING, "enroll_name": "孙丽", "enroll_id_number": make_id_number("19900101", 77)}
    _, messages = await run(ActionAskEnrollConfirm(), make_tracker("u1", "x", "nlu_fallback", slots=slots), domain)
    assert "<b>99 元</b>" in text_of(messages) and "没查到" in text_of(messages)


# --- submit and status ------------------------------------------------------------------------------------------------


async def test_submit_after_confirm_enrolls_and_forgets_the_answers(people: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "确认", "affirm", slots={**CONFIRMING, "enroll_confirm": "yes"})
    events, messages = await run(ActionEnrollSubmit(), tracker, domain)
    with people.sessions() as session:
        row = session.execute(select(Enrollment)).scalar_one()
    assert row.premium == Decimal(10) and row.verified and row.channel_user_id == "u1"
    assert row.reference in text_of(messages)
    assert "<b>10 元</b>" in text_of(messages)
    assert POOR_ID not in text_of(messages)
    assert all(value is None for value in slots_of(events).values())
    assert "enroll_id_number" in slots_of(events)


async def test_submit_twice_returns_the_first_reference(people: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "确认", "affirm", slots={**CONFIRMING, "enroll_confirm": "yes"})
    await run(ActionEnrollSubmit(), tracker, domain)
    _, messages = await run(ActionEnrollSubmit(), make_tracker("u2", "确认", "affirm", slots={**CONFIRMING,
                            "enroll_confirm": "yes"}), domain)  # fmt: skip
    assert "已经登记过了" in text_of(messages)
    assert enrollments(people) == 1


@pytest.mark.parametrize("outcome", ["cancel", None])
async def test_submit_without_confirmation_writes_nothing(
    people: runtime.Runtime, domain: dict, outcome: str | None
) -> None:
    tracker = make_tracker("u1", "算了", "cancel", slots={**CONFIRMING, "enroll_confirm": outcome})
    events, messages = await run(ActionEnrollSubmit(), tracker, domain)
    assert enrollments(people) == 0
    assert messages[0]["response"] == "utter_enroll_cancelled"
    assert all(value is None for value in slots_of(events).values())


async def test_submit_after_asking_for_a_person_hands_off(people: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "/human_handoff", "human_handoff", slots={"enroll_confirm": "handoff"})
    _, messages = await run(ActionEnrollSubmit(), tracker, domain)
    assert "帮扶干部" in text_of(messages)
    assert enrollments(people) == 0


async def test_status_is_the_chat_users_own(people: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "确认", "affirm", slots={**CONFIRMING, "enroll_confirm": "yes"})
    await run(ActionEnrollSubmit(), tracker, domain)
    _, mine = await run(ActionInsuranceStatus(), make_tracker("u1", "我的齐惠保办好了吗", "insurance_status"), domain)
    _, other = await run(ActionInsuranceStatus(), make_tracker("u2", "我的齐惠保办好了吗", "insurance_status"), domain)
    assert "QH" in text_of(mine) and "10 元" in text_of(mine) and "还没交" in text_of(mine)
    assert "QH" not in text_of(other) and "没查到" in text_of(other)
    assert payloads(other) == ["/enroll_insurance"]
