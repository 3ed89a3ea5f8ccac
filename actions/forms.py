"""What the chat forms (齐惠保 enrollment, hardship declaration) share: reading answers, and their buttons."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.common import read_db, utter_template
from actions.services.idcard import normalize_phone, validate_id_number
from actions.services.insurance import Lookup, Standing, is_cancel, look_up
from actions.services.knowledge import normalize
from actions.services.triage import CAUSES

EDIT_WORDS = re.compile(r"修改|改|写错|错了|不对|有误|重填|重新填|重输|重新输")
YES_WORDS = re.compile(
    r"^(?:确认|确定|对|对的|是|是的|没错|正确|好|好的|中|行|可以|提交|办吧|对着嘞|没问题)[!！。.~ ]*$"
)
NAME_PREFIX = re.compile(
    r"^(?:我叫|俺叫|我是|俺是|姓名是?|名字是?|名字叫|叫|参保人是?|参保人叫|申报人是?|申报人叫|户主是?|户主叫)[::\s]*"
)
NAME_PATTERN = re.compile(r"[\u4e00-\u9fff]{2,5}|[\u4e00-\u9fff]{1,10}(?:[·•][\u4e00-\u9fff]{1,10})+")
NOT_NAME_CHARS = re.compile(r"[吗呢啥咋么怎谁哪吧啊呀嘛呗的了]")
# The forms' own button words and answers to a yes/no question: a stale tap or a reply to the wrong question.
NOT_NAMES = frozenset(
    {"提交", "确认", "确定", "修改", "取消", "说不准", "不知道", "不清楚", "再提交", "再提交一次", "找工作人员"}
    | {"是的", "不是", "没问题", "可以", "好的", "对的", "不报了", "不办了", "你好", "您好", "谢谢", "多谢"}
    | set(CAUSES)  # the declaration's cause buttons
)
QUESTION_INTENTS = frozenset(
    {
        "ask_policy",
        "help",
        "bot_identity",
        "insurance_status",
        "enroll_insurance",
        "declare_hardship",
        "declaration_status",
        "greet",
        "out_of_scope",
    }
)
ID_IN_TEXT = re.compile(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9Xx])")
PHONE_IN_TEXT = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
# How a form ended, for its submit action; other outcomes are a form's own (enrolled already, outside 淄博).
YES, CANCEL, HANDOFF = "yes", "cancel", "handoff"
# Free-text answers (a description, an address) are only taken as 取消 when that is about all they say.
SHORT_STOP = 10


def latest_text(tracker: Tracker) -> str:
    return str(tracker.latest_message.get("text") or "").strip()


def latest_intent(tracker: Tracker) -> tuple[str | None, float]:
    intent = tracker.latest_message.get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def cancel_button() -> dict[str, str]:
    return {"title": "取消", "payload": "取消"}


def handoff_button() -> dict[str, str]:
    return {"title": "找工作人员", "payload": "/human_handoff"}


def split_details(text: str) -> tuple[str, str | None, str | None]:
    """ "王志强 370399195007140044 13300002486" → ("王志强", the 身份证号, the phone): people send all at once."""
    ids = ID_IN_TEXT.findall(text)
    phones = PHONE_IN_TEXT.findall(text)
    id_number = ids[0] if len(ids) == 1 else None
    phone = phones[0] if len(phones) == 1 else None
    rest = text
    for found in (id_number, phone):
        if found:
            rest = rest.replace(found, " ")
    rest = re.sub(r"(?:身份证号码?|身份证|证号|手机号码?|手机|电话)[::\s]*", " ", rest)
    return rest.strip(), id_number, phone


def clean_name(text: str) -> str | None:
    """The name in "我叫王志强。" or "王志强", or None when the text does not read as a person's name."""
    name = re.sub(r"[\s。.,,!!~]+", "", NAME_PREFIX.sub("", text.strip()))
    if not NAME_PATTERN.fullmatch(name) or name in NOT_NAMES:
        return None
    if "·" not in name and "•" not in name and NOT_NAME_CHARS.search(name[1:]):
        return None
    return name.replace("•", "·")


def register_lookup(id_number: str, name: str | None) -> Lookup:
    """The register's word on a 身份证号 and name; NOT_FOUND when the database fails."""
    return read_db("person lookup", lambda session: look_up(session, id_number, name), Lookup(Standing.NOT_FOUND))


class PersonFormValidation(FormValidationAction, ABC):
    """What the enrollment and declaration forms share: a name, a 身份证号 and a phone number read from what people
    type (all three at once too); 取消, a request for a person, or a correction of a named field at any step; and
    the last step's yes / edit.

    A subclass names its slots and the template of its "this step needs …" replies, and adds `validate_<slot>`
    methods that call the readers below.
    """

    NAME: ClassVar[str]
    ID_NUMBER: ClassVar[str]
    PHONE: ClassVar[str]
    CONFIRM: ClassVar[str]
    EDITING: ClassVar[str]
    FAILURES: ClassVar[str]
    FIELD_WORDS: ClassVar[tuple[tuple[str, re.Pattern[str]], ...]]
    INVALID_TEMPLATE: ClassVar[str]
    MAX_ID_FAILURES: ClassVar[int] = 3

    @abstractmethod
    def name(self) -> str:
        """The validation action's name (validate_<form>)."""

    def ending(self, outcome: str) -> dict[str, Any]:
        """Slot values that end the form with an outcome for the submit action."""
        return {self.CONFIRM: outcome, "requested_slot": None}

    def edited_field(self, text: str) -> str | None:
        """The field a correction names: "手机号写错了" → the phone slot."""
        if not EDIT_WORDS.search(text):
            return None
        return self.named_field(text)

    def named_field(self, text: str) -> str | None:
        return next((slot for slot, words in self.FIELD_WORDS if words.search(text)), None)

    def interruption(self, tracker: Tracker, free_text: bool = False) -> dict[str, Any] | None:
        """取消, a request for a person, or a correction of a named field ("名字写错了").

        A free-text answer (a description) is only taken for one of these when it is short: "厂子倒闭了 老板说算了"
        is a description. Only an answer counts: when the form starts, Rasa validates the slots filled before it
        (from the register, from the first message), and that message ("…算了 不知道咋办") is not a 取消. Rasa hands
        validation a temporary tracker whose latest action is always the form itself, so what tells an answer from
        the start is whether the form was already active: its ActiveLoop event is applied only after activation.
        """
        if tracker.active_loop_name != self.form_name():
            return None
        text = latest_text(tracker)
        intent, confidence = latest_intent(tracker)
        short = not free_text or len(text) <= SHORT_STOP
        if short and (is_cancel(text) or (intent == "cancel" and confidence >= 0.6)):
            return self.ending(CANCEL)
        if text.startswith("/human_handoff") or (short and intent == "human_handoff" and confidence >= 0.6):
            return self.ending(HANDOFF)
        field = self.edited_field(text) if short else None
        if field:
            return {field: None, self.CONFIRM: None, self.EDITING: False}
        return None

    def refuse(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        slot: str,
        problem: str,
        buttons: list[dict[str, str]] | None = None,
        **context: Any,
    ) -> None:
        """Says what this step needs; for a question instead of an answer, how to leave the form to ask it."""
        intent, confidence = latest_intent(tracker)
        text = latest_text(tracker)
        # Digits mean the person tried to answer (a short 身份证号, say).
        asked_else = intent in QUESTION_INTENTS and confidence >= 0.7 and not re.search(r"[0-9]", text)
        utter_template(
            dispatcher,
            self.INVALID_TEMPLATE,
            buttons=buttons or [cancel_button()],
            slot=slot,
            problem=problem,
            asked_else=asked_else,
            **context,
        )

    def read_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        if value is None:
            return {self.NAME: None}
        stop = self.interruption(tracker)
        if stop is not None:
            return {self.NAME: None, **stop}
        rest, id_number, phone = split_details(str(value))
        name = clean_name(rest)
        if name is None or normalize(name) in runtime.get().knowledge.aliases:  # 低保 is not a name
            self.refuse(dispatcher, tracker, self.NAME, "name")
            return {self.NAME: None}
        result: dict[str, Any] = {self.NAME: name}
        if id_number:
            result.update(self.check_id(dispatcher, tracker, id_number, name))
        if phone and "requested_slot" not in result:
            result[self.PHONE] = phone
        return result

    def read_id_number(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        if value is None:
            return {self.ID_NUMBER: None}
        text = str(value)
        _, found, phone = split_details(text)
        raw = text if validate_id_number(text).ok or not found else found  # "身份证号370399…" works too
        if not validate_id_number(raw).ok:
            stop = self.interruption(tracker)
            if stop is not None:
                return {self.ID_NUMBER: None, **stop}
        result = self.check_id(dispatcher, tracker, raw, str(tracker.get_slot(self.NAME) or ""))
        if phone and result.get(self.ID_NUMBER) and "requested_slot" not in result:
            result[self.PHONE] = phone
        return result

    def check_id(self, dispatcher: CollectingDispatcher, tracker: Tracker, raw: str, name: str) -> dict[str, Any]:
        """The 身份证号 checked by its digits, then against the name the register has for it."""
        check = validate_id_number(raw)
        if not check.ok or check.normalized is None:
            return self.fail_id(dispatcher, tracker, "id", code=check.problem.value if check.problem else "")
        found = register_lookup(check.normalized, name or None)
        if found.standing is Standing.NAME_MISMATCH:
            return self.fail_id(dispatcher, tracker, "mismatch")
        return self.accept_id(check.normalized, name, found)

    def accept_id(self, id_number: str, name: str, found: Lookup) -> dict[str, Any]:
        """A valid 身份证号 that matches the name; a form may end here instead (enrolled already, say)."""
        return {self.ID_NUMBER: id_number, self.FAILURES: 0}

    def fail_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, problem: str, code: str = ""
    ) -> dict[str, Any]:
        """A wrong 身份证号 (or one not matching the name): say what is wrong; from the third, offer a person."""
        failures = int(tracker.get_slot(self.FAILURES) or 0) + 1
        offer = failures >= self.MAX_ID_FAILURES
        buttons = [handoff_button(), cancel_button()] if offer else [cancel_button()]
        self.refuse(dispatcher, tracker, self.ID_NUMBER, problem, buttons=buttons, code=code, offer_person=offer)
        return {self.ID_NUMBER: None, self.FAILURES: failures}

    def read_phone(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        if value is None:
            return {self.PHONE: None}
        text = str(value)
        phone = normalize_phone(text) or split_details(text)[2]  # "手机13300002486" works too
        if phone is not None:
            return {self.PHONE: phone}
        stop = self.interruption(tracker)
        if stop is not None:
            return {self.PHONE: None, **stop}
        self.refuse(dispatcher, tracker, self.PHONE, "phone")
        return {self.PHONE: None}

    def read_confirm(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        """确认/提交, 修改 (then which field), 取消, or something `confirm_extra` takes (a new phone number)."""
        if value is None:
            return {self.CONFIRM: None}
        text = latest_text(tracker)
        intent, confidence = latest_intent(tracker)
        if tracker.get_slot(self.EDITING):
            field = self.named_field(text)
            if field:
                return {field: None, self.CONFIRM: None, self.EDITING: False}
        stop = self.interruption(tracker)
        if stop is not None:
            return stop
        extra = self.confirm_extra(text, dispatcher, tracker)
        if extra is not None:
            return extra
        if YES_WORDS.match(text) or (intent == "affirm" and confidence >= 0.6 and len(text) <= 10):
            return {self.CONFIRM: YES}
        if EDIT_WORDS.search(text) or tracker.get_slot(self.EDITING):
            return {self.CONFIRM: None, self.EDITING: True}
        self.refuse(dispatcher, tracker, self.CONFIRM, "confirm")
        return {self.CONFIRM: None}

    def confirm_extra(self, text: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any] | None:
        """What else the last step takes; nothing by default."""
        return None
