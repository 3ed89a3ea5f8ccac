"""困难自主申报 actions: start, validation of each answer, confirmation, submission, failure, and follow-up."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from actions import declaration as declaration_actions
from actions import runtime
from actions.db.models import Cadre, ChatIdentity, HardshipCase, Household, Notification, Person
from actions.declaration import (
    ActionAskDeclAmount,
    ActionAskDeclCause,
    ActionAskDeclConfirm,
    ActionAskDeclIdNumber,
    ActionCancel,
    ActionDeclarationStatus,
    ActionDeclareStart,
    ActionDeclareSubmit,
    ValidateDeclarationForm,
)
from actions.services.regions import get_or_create_region
from tests.actions.conftest import form_tracker, make_tracker, payloads, run, slots_of, text_of
from tests.conftest import POOR_ID, make_id_number

VILLAGE = ["淄博市", "淄川区", "太河镇", "东峪村"]
STRANGER_ID = make_id_number("19800808", 21)
FILLED = {
    "decl_description": "俺男人干活从架子上摔下来 腰断了 住院花了五万多",
    "decl_cause": "因意外事故",
    "decl_amount": "50000",
    "decl_name": "李秀兰",
    "decl_id_number": STRANGER_ID,
    "decl_phone": "13800002222",
    "decl_address": "太河镇东峪村",
    "decl_region": "/".join(VILLAGE),
    "decl_size": "4",
    "decl_income": "30000",
    "decl_key": "form-key-1",
}


@pytest.fixture
def village(rt: runtime.Runtime) -> runtime.Runtime:
    with rt.sessions.begin() as session:
        region = get_or_create_region(session, VILLAGE)
        household = Household(code="H-1", region=region, status="脱贫户", is_registered_poor=True, size=3)
        session.add(Person(household=household, name="王志强", id_number=POOR_ID, phone="13300002486"))
        cadre = Cadre(name="刘书记", region=get_or_create_region(session, VILLAGE[:3]))
        session.add(ChatIdentity(channel="telegram", channel_user_id="cadre-1", cadre=cadre))
    return rt


def decl_tracker(text: str, slot: str, intent: str = "nlu_fallback", **slots: Any) -> Tracker:
    return form_tracker(text, slot, intent, slots=slots, form="declaration_form")


async def validate(tracker: Tracker, domain: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ValidateDeclarationForm().run(dispatcher, tracker, domain)
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}, dispatcher.messages


def cases(rt: runtime.Runtime) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count()).select_from(HardshipCase)).scalar_one())


# --- start ----------------------------------------------------------------------------------------------------------


async def test_a_description_starts_with_what_it_already_says(village: runtime.Runtime, domain: dict) -> None:
    text = "俺家四口人 俺娘住院做手术花了3万 一年就挣两万块"
    events, messages = await run(ActionDeclareStart(), make_tracker("u1", text, "declare_hardship"), domain)
    slots = slots_of(events)
    assert slots["decl_description"] == text
    assert (slots["decl_cause"], slots["decl_amount"], slots["decl_size"], slots["decl_income"]) == (
        "因病",
        "30000",
        "4",
        "20000",
    )
    assert slots["decl_key"]
    assert "因病" in text_of(messages) and "只有负责的工作人员能看到" in text_of(messages)


async def test_a_vague_sum_is_kept_to_be_asked_about(village: runtime.Runtime, domain: dict) -> None:
    events, _ = await run(
        ActionDeclareStart(), make_tracker("u1", "家里老人住院花了好几万", "declare_hardship"), domain
    )
    slots = slots_of(events)
    assert slots["decl_cause"] == "因病" and "decl_amount" not in slots
    assert slots["decl_amount_hint"] == "几万"
    tracker = make_tracker("u1", "", "declare_hardship", slots={"decl_cause": "因病", "decl_amount_hint": "几万"})
    _, messages = await run(ActionAskDeclAmount(), tracker, domain)
    assert "“几万”" in text_of(messages) and "说不准" in payloads(messages)


@pytest.mark.parametrize("text", ["我要申报困难", "申请防返贫监测", "/declare_hardship"])
async def test_a_request_starts_with_nothing_filled_in(village: runtime.Runtime, domain: dict, text: str) -> None:
    events, messages = await run(ActionDeclareStart(), make_tracker("u1", text, "declare_hardship"), domain)
    assert set(slots_of(events)) == {"decl_key"}
    assert "困难自主申报" in text_of(messages)


async def test_a_linked_chat_user_is_not_asked_what_the_register_knows(village: runtime.Runtime, domain: dict) -> None:
    with village.sessions.begin() as session:
        person = session.execute(select(Person)).scalar_one()
        session.add(ChatIdentity(channel="rest", channel_user_id="linked", person=person))
    events, messages = await run(ActionDeclareStart(), make_tracker("linked", "厂子倒闭了没活干", "declare_hardship"),
                                 domain)  # fmt: skip
    slots = slots_of(events)
    assert (slots["decl_name"], slots["decl_id_number"], slots["decl_phone"], slots["decl_size"]) == (
        "王志强",
        POOR_ID,
        "13300002486",
        "3",
    )
    assert slots["decl_region"] == "/".join(VILLAGE)
    assert slots["decl_cause"] == "务工收入减少/失业"
    assert "王志强" in text_of(messages) and POOR_ID not in text_of(messages)


async def test_a_new_start_forgets_an_old_half_filled_form(village: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "我要申报困难", "declare_hardship", slots={"decl_name": "张三", "decl_pending": True})
    events, _ = await run(ActionDeclareStart(), tracker, domain)
    assert slots_of(events)["decl_name"] is None and slots_of(events)["decl_pending"] is None


async def test_slots_filled_before_the_form_are_not_read_as_a_cancel(village: runtime.Runtime, domain: dict) -> None:
    """When the form starts, Rasa validates what action_declare_start filled in against the opening message."""
    text = "厂子倒闭了 算了 俺也不知道咋办了"
    prefilled = {"decl_description": text, "decl_name": "王志强", "decl_size": "3"}
    tracker = Tracker.from_dict(
        {
            "sender_id": "u1",
            "slots": {**prefilled, "requested_slot": None},
            "latest_message": {"text": text, "intent": {"name": "declare_hardship", "confidence": 0.9}},
            "events": [
                {"event": "user", "text": text, "parse_data": {"text": text}},
                {"event": "action", "name": "action_declare_start"},
                {"event": "slot", "name": "requested_slot", "value": None},
                {"event": "action", "name": "declaration_form"},
                *({"event": "slot", "name": k, "value": v} for k, v in prefilled.items()),
            ],
            # At activation the form's ActiveLoop event is not applied yet.
            "active_loop": {},
            "latest_action_name": "declaration_form",
        }
    )
    slots, messages = await validate(tracker, domain)
    assert slots["decl_name"] == "王志强" and slots["decl_size"] == "3"  # validated, and kept
    assert "decl_confirm" not in slots and messages == []


# --- each answer ----------------------------------------------------------------------------------------------------


async def test_a_description_fills_in_the_cause_and_sum_still_open(village: runtime.Runtime, domain: dict) -> None:
    slots, _ = await validate(decl_tracker("下雹子 麦子绝收了 少收了一万二", "decl_description"), domain)
    assert (slots["decl_cause"], slots["decl_amount"]) == ("因灾", "12000")
    kept, _ = await validate(decl_tracker("下雹子 麦子绝收了", "decl_description", decl_cause="其他"), domain)
    assert "decl_cause" not in kept


@pytest.mark.parametrize(("text", "problem"), [("😭😭😭", "没看明白"), ("asdfgh", "没看明白"), ("苦" * 1001, "太长")])
async def test_a_description_that_says_nothing_is_asked_again(
    village: runtime.Runtime, domain: dict, text: str, problem: str
) -> None:
    slots, messages = await validate(decl_tracker(text, "decl_description"), domain)
    assert slots["decl_description"] is None
    assert problem in text_of(messages)


async def test_a_long_description_mentioning_cancel_words_is_not_a_cancel(
    village: runtime.Runtime, domain: dict
) -> None:
    text = "厂子倒闭了 老板说算了不干了 俺俩都没活了"
    slots, _ = await validate(decl_tracker(text, "decl_description"), domain)
    assert slots["decl_description"] == text and "decl_confirm" not in slots


@pytest.mark.parametrize(
    ("text", "cause"), [("因病", "因病"), ("病", "因病"), ("失业", "务工收入减少/失业"), ("其他", "其他")]
)
async def test_cause_from_a_button_or_a_word(village: runtime.Runtime, domain: dict, text: str, cause: str) -> None:
    slots, _ = await validate(decl_tracker(text, "decl_cause"), domain)
    assert slots["decl_cause"] == cause


async def test_several_causes_are_asked_with_the_hinted_ones_first(village: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "", "declare_hardship", slots={"decl_description": "娃上大学 俺又住院了"})
    _, messages = await run(ActionAskDeclCause(), tracker, domain)
    assert payloads(messages)[:2] == ["因学", "因病"]
    assert len(payloads(messages)) == 9


@pytest.mark.parametrize(
    ("text", "value"), [("5万", "50000"), ("一万五", "15000"), ("3000块", "3000"), ("说不准", "不清楚")]
)
async def test_amounts(village: runtime.Runtime, domain: dict, text: str, value: str) -> None:
    slots, _ = await validate(decl_tracker(text, "decl_amount"), domain)
    assert slots["decl_amount"] == value


async def test_an_impossible_amount_gets_a_question(village: runtime.Runtime, domain: dict) -> None:
    slots, messages = await validate(decl_tracker("500000000", "decl_amount"), domain)
    assert slots["decl_amount"] is None and "太大" in text_of(messages)


@pytest.mark.parametrize(("text", "size"), [("4", "4"), ("四口人", "4"), ("就俺一个", "1"), ("老两口", "2")])
async def test_household_size(village: runtime.Runtime, domain: dict, text: str, size: str) -> None:
    slots, _ = await validate(decl_tracker(text, "decl_size"), domain)
    assert slots["decl_size"] == size


@pytest.mark.parametrize(("text", "problem"), [("0", "1 到 30"), ("99口人", "1 到 30"), ("不少", "几口人")])
async def test_an_impossible_household_size_gets_a_question(
    village: runtime.Runtime, domain: dict, text: str, problem: str
) -> None:
    slots, messages = await validate(decl_tracker(text, "decl_size"), domain)
    assert slots["decl_size"] is None and problem in text_of(messages)


@pytest.mark.parametrize(("text", "value"), [("3万", "30000"), ("没有", "0"), ("两万来块", "20000")])
async def test_income(village: runtime.Runtime, domain: dict, text: str, value: str) -> None:
    slots, _ = await validate(decl_tracker(text, "decl_income"), domain)
    assert slots["decl_income"] == value


@pytest.mark.parametrize(("text", "problem"), [("说不准", "大概数"), ("9000万", "太大"), ("挺多", "没看懂")])
async def test_income_that_cannot_be_used_gets_a_question(
    village: runtime.Runtime, domain: dict, text: str, problem: str
) -> None:
    slots, messages = await validate(decl_tracker(text, "decl_income"), domain)
    assert slots["decl_income"] is None and problem in text_of(messages)


async def test_an_invalid_id_number_is_refused_and_kept_out_of_the_reply(
    village: runtime.Runtime, domain: dict
) -> None:
    wrong = STRANGER_ID[:-1] + ("0" if STRANGER_ID[-1] != "0" else "1")
    slots, messages = await validate(decl_tracker(wrong, "decl_id_number", decl_name="李秀兰"), domain)
    assert slots["decl_id_number"] is None and slots["decl_id_failures"] == 1
    assert "校验码" in text_of(messages) and wrong not in text_of(messages)


async def test_the_third_wrong_id_number_offers_a_person(village: runtime.Runtime, domain: dict) -> None:
    tracker = decl_tracker("12345", "decl_id_number", decl_id_failures=2)
    _, messages = await validate(tracker, domain)
    assert "/human_handoff" in payloads(messages)


async def test_an_id_number_registered_to_another_name_is_refused(village: runtime.Runtime, domain: dict) -> None:
    slots, messages = await validate(decl_tracker(POOR_ID, "decl_id_number", decl_name="张三"), domain)
    assert slots["decl_id_number"] is None and "对不上" in text_of(messages)


async def test_the_id_number_question_carries_the_privacy_notice(village: runtime.Runtime, domain: dict) -> None:
    _, first = await run(ActionAskDeclIdNumber(), make_tracker("u1", "", "declare_hardship"), domain)
    _, again = await run(ActionAskDeclIdNumber(), make_tracker("u1", "", "x", slots={"decl_id_failures": 1}), domain)
    assert first[0]["response"] == "utter_ask_decl_id_number"
    assert again[0]["response"] == "utter_ask_decl_id_number_again"
    notice = domain["responses"]["utter_ask_decl_id_number"][0]["text"]
    assert "只给负责核实帮扶的村、镇工作人员看" in notice and "不写进运行日志" in notice


async def test_an_address_is_placed_in_the_tree(village: runtime.Runtime, domain: dict) -> None:
    slots, _ = await validate(decl_tracker("俺是太河镇东峪村的", "decl_address"), domain)
    assert slots["decl_region"] == "/".join(VILLAGE)
    unknown, _ = await validate(decl_tracker("王家庄", "decl_address"), domain)
    assert unknown["decl_address"] == "王家庄" and unknown["decl_region"] is None


@pytest.mark.parametrize("slot", ["decl_description", "decl_name", "decl_size", "decl_income", "decl_confirm"])
async def test_cancel_at_any_step_ends_the_form(village: runtime.Runtime, domain: dict, slot: str) -> None:
    slots, _ = await validate(decl_tracker("算了 不报了", slot, "cancel"), domain)
    assert slots["decl_confirm"] == "cancel" and slots["requested_slot"] is None


async def test_a_named_field_can_be_corrected_at_any_step(village: runtime.Runtime, domain: dict) -> None:
    slots, _ = await validate(decl_tracker("手机号写错了", "decl_size", **FILLED), domain)
    assert slots["decl_phone"] is None


# --- confirmation ---------------------------------------------------------------------------------------------------


async def test_the_summary_is_masked_and_offers_submit_edit_cancel(village: runtime.Runtime, domain: dict) -> None:
    _, messages = await run(ActionAskDeclConfirm(), make_tracker("u1", "", "x", slots=FILLED), domain)
    text = text_of(messages)
    assert STRANGER_ID not in text and "13800002222" not in text
    assert "3708" not in text and STRANGER_ID[:4] + "**********" + STRANGER_ID[-4:] in text
    assert "138****2222" in text and "约 50000 元" in text and "4 口" in text
    assert payloads(messages) == ["提交", "修改", "取消"]


@pytest.mark.parametrize(("text", "intent"), [("提交", "affirm"), ("对", "affirm"), ("确认", "nlu_fallback")])
async def test_submit_words(village: runtime.Runtime, domain: dict, text: str, intent: str) -> None:
    slots, _ = await validate(decl_tracker(text, "decl_confirm", intent, **FILLED), domain)
    assert slots["decl_confirm"] == "yes"


async def test_edit_asks_which_field_then_clears_it(village: runtime.Runtime, domain: dict) -> None:
    slots, _ = await validate(decl_tracker("修改", "decl_confirm", **FILLED), domain)
    assert slots["decl_editing"] is True and slots["decl_confirm"] is None
    editing = make_tracker("u1", "", "x", slots={**FILLED, "decl_editing": True})
    _, messages = await run(ActionAskDeclConfirm(), editing, domain)
    assert messages[0]["response"] == "utter_ask_decl_field"
    slots, _ = await validate(decl_tracker("收入", "decl_confirm", **FILLED, decl_editing=True), domain)
    assert slots["decl_income"] is None and slots["decl_editing"] is False


# --- submission -----------------------------------------------------------------------------------------------------


def submitting(sender: str = "u1", **extra: Any) -> Tracker:
    return make_tracker(sender, "提交", "affirm", slots={**FILLED, "decl_confirm": "yes", **extra})


async def test_submit_commits_the_case_before_confirming_and_forgets_the_answers(
    village: runtime.Runtime, domain: dict
) -> None:
    events, messages = await run(ActionDeclareSubmit(), submitting(), domain)
    with village.sessions() as session:
        case = session.execute(select(HardshipCase)).scalar_one()
        notified = session.execute(select(Notification.channel_user_id)).scalars().all()
    assert case.case_no in text_of(messages)
    assert (case.cause, case.status, case.channel_user_id) == ("因意外事故", "已提交", "u1")
    assert case.category == "突发严重困难户"  # 50000 of 30000 a year, not in the register
    assert notified == ["cadre-1"]
    assert STRANGER_ID not in text_of(messages)
    assert "/declaration_status" in payloads(messages)
    assert all(v is None for v in slots_of(events).values()) and "decl_key" in slots_of(events)


async def test_submitting_the_same_form_twice_creates_one_case(village: runtime.Runtime, domain: dict) -> None:
    _, first = await run(ActionDeclareSubmit(), submitting(), domain)
    _, second = await run(ActionDeclareSubmit(), submitting(), domain)
    assert cases(village) == 1
    assert "已经提交过了" in text_of(second)


async def test_a_database_failure_keeps_the_answers_for_another_try(
    village: runtime.Runtime, domain: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(declaration_actions, "submit", broken)
    events, messages = await run(ActionDeclareSubmit(), submitting(), domain)
    assert messages[0]["response"] == "utter_decl_failed"
    assert slots_of(events) == {"decl_pending": True}  # nothing forgotten
    monkeypatch.undo()

    events, messages = await run(ActionDeclareSubmit(), submitting(decl_pending=True), domain)
    assert cases(village) == 1
    assert "SB-" in text_of(messages)


async def test_cancel_after_a_failure_drops_the_kept_answers(village: runtime.Runtime, domain: dict) -> None:
    tracker = make_tracker("u1", "/cancel", "cancel", slots={**FILLED, "decl_confirm": "yes", "decl_pending": True})
    events, messages = await run(ActionCancel(), tracker, domain)
    assert cases(village) == 0
    assert messages[0]["response"] == "utter_decl_cancelled"
    assert all(v is None for v in slots_of(events).values()) and "decl_pending" in slots_of(events)
    _, nothing = await run(ActionCancel(), make_tracker("u1", "取消", "cancel"), domain)
    assert nothing[0]["response"] == "utter_nothing_to_cancel"


@pytest.mark.parametrize("outcome", ["cancel", None])
async def test_submit_without_confirmation_writes_nothing(
    village: runtime.Runtime, domain: dict, outcome: str | None
) -> None:
    tracker = make_tracker("u1", "算了", "cancel", slots={**FILLED, "decl_confirm": outcome})
    _, messages = await run(ActionDeclareSubmit(), tracker, domain)
    assert cases(village) == 0 and messages[0]["response"] == "utter_decl_cancelled"


# --- follow-up ------------------------------------------------------------------------------------------------------


async def test_status_shows_the_own_cases_with_the_next_step_and_nobody_elses(
    village: runtime.Runtime, domain: dict
) -> None:
    await run(ActionDeclareSubmit(), submitting("u1"), domain)
    _, mine = await run(
        ActionDeclarationStatus(), make_tracker("u1", "我的申报到哪一步了", "declaration_status"), domain
    )
    _, other = await run(
        ActionDeclarationStatus(), make_tracker("u2", "我的申报到哪一步了", "declaration_status"), domain
    )
    assert "SB-" in text_of(mine) and "已提交" in text_of(mine) and "下一步" in text_of(mine)
    assert "SB-" not in text_of(other) and "没查到" in text_of(other)
    assert payloads(other) == ["/declare_hardship"]


async def test_answers_about_self_declaration_offer_to_declare_here(village: runtime.Runtime, domain: dict) -> None:
    from actions.policy import ActionAnswerPolicy

    tracker = make_tracker("u1", "自主申报是啥", "ask_policy", entities={"policy": "zizhu_shenbao"})
    _, messages = await run(ActionAnswerPolicy(), tracker, domain)
    assert "/declare_hardship" in payloads(messages)


async def test_an_overdue_case_offers_a_person(
    village: runtime.Runtime, domain: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    await run(ActionDeclareSubmit(), submitting("u1"), domain)
    monkeypatch.setattr(declaration_actions, "today", lambda: dt.date.today() + dt.timedelta(days=30))
    _, messages = await run(ActionDeclarationStatus(), make_tracker("u1", "申报到哪了", "declaration_status"), domain)
    assert "过了核实期限" in text_of(messages)
    assert payloads(messages) == ["/human_handoff"]
