"""困难自主申报 in the chat (declaration_form), and the chat user's own declarations."""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from decimal import Decimal
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions import runtime
from actions.basics import utter_handoff
from actions.common import read_db, sender_channel, utter_template
from actions.forms import (
    HANDOFF,
    YES,
    PersonFormValidation,
    cancel_button,
    handoff_button,
    latest_text,
)
from actions.policy import declare_button, policy_button
from actions.rendering import render
from actions.services.cases import (
    CHINA,
    CaseView,
    Declarant,
    Declaration,
    cases_of_chat,
    declarant_of_chat,
    submit,
)
from actions.services.declaration import (
    MAX_INCOME,
    Answer,
    SumFound,
    cause_from_answer,
    causes_in,
    describes_trouble,
    description_problem,
    read_size,
    read_sum,
    size_in,
    sums_in,
)
from actions.services.regions import resolve_address
from actions.services.triage import CAUSES

logger = logging.getLogger(__name__)

FORM = "declaration_form"
DESCRIPTION, CAUSE, AMOUNT = "decl_description", "decl_cause", "decl_amount"
NAME, ID_NUMBER, PHONE, ADDRESS = "decl_name", "decl_id_number", "decl_phone", "decl_address"
SIZE, INCOME, CONFIRM = "decl_size", "decl_income", "decl_confirm"
REGION, AMOUNT_HINT, EDITING, FAILURES, KEY, PENDING = (
    "decl_region",
    "decl_amount_hint",
    "decl_editing",
    "decl_id_failures",
    "decl_key",
    "decl_pending",
)
ANSWER_SLOTS = (DESCRIPTION, CAUSE, AMOUNT, NAME, ID_NUMBER, PHONE, ADDRESS, SIZE, INCOME, CONFIRM)
FORM_SLOTS = (*ANSWER_SLOTS, REGION, AMOUNT_HINT, EDITING, FAILURES, KEY, PENDING)
UNKNOWN = "不清楚"  # the value of decl_amount when the person cannot say the sum
FIELD_WORDS = (
    (ID_NUMBER, re.compile(r"身份证|证号|身份号")),
    (PHONE, re.compile(r"手机|电话")),
    (ADDRESS, re.compile(r"住址|地址|住哪|村名|哪个村")),
    (SIZE, re.compile(r"人口|几口|口人")),
    (INCOME, re.compile(r"收入")),
    (AMOUNT, re.compile(r"金额|钱数|多少钱|花了|损失")),
    (CAUSE, re.compile(r"原因|困难类型|类型")),
    (DESCRIPTION, re.compile(r"情况|描述|说明|经过")),
    (NAME, re.compile(r"姓名|名字|名")),
)
# Programmes of the knowledge base worth a look while the case is verified, by cause.
RELATED = {
    "因病": ("linshi_jiuzhu", "wuchong_baozhang"),
    "因残": ("canji_butie",),
    "因学": ("yulu", "jiaoyu_zizhu"),
    "因灾": ("linshi_jiuzhu", "weifang"),
    "因意外事故": ("linshi_jiuzhu",),
    "务工收入减少/失业": ("gongyi_gangwei",),
    "产业经营失败": ("linshi_jiuzhu",),
    "其他": ("linshi_jiuzhu",),
}


def status_button() -> dict[str, str]:
    return {"title": "查申报进度", "payload": "/declaration_status"}


def today() -> dt.date:
    return dt.datetime.now(CHINA).date()


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal(1)) if value == value.to_integral_value() else value)


def from_description(text: str) -> dict[str, Any]:
    """What a description already says: the cause (when it names one), the sum, the household's size and income."""
    found: dict[str, Any] = {DESCRIPTION: text}
    causes = causes_in(text)
    if len(causes) == 1:
        found[CAUSE] = causes[0]
    sums = sums_in(text)
    if sums.loss is SumFound.ONE and sums.loss_value is not None:
        found[AMOUNT] = money(sums.loss_value)
    elif sums.loss is SumFound.UNREADABLE:
        found[AMOUNT_HINT] = sums.loss_text
    if sums.income is not None:
        found[INCOME] = money(sums.income)
    size = size_in(text)
    if size is not None:
        found[SIZE] = str(size)
    return found


def known_of(declarant: Declarant) -> dict[str, Any]:
    """What the register knows of the chat user: none of it is asked again."""
    known: dict[str, Any] = {
        NAME: declarant.name,
        ID_NUMBER: declarant.id_number,
        ADDRESS: declarant.region_path.replace("/", ""),
        REGION: declarant.region_path,
    }
    if declarant.phone:
        known[PHONE] = declarant.phone
    if declarant.household_size:
        known[SIZE] = str(declarant.household_size)
    return known


def own_cases(tracker: Tracker) -> list[CaseView] | None:
    """The chat user's own cases; None when the database cannot be reached."""
    return read_db(
        "case lookup", lambda session: cases_of_chat(session, sender_channel(tracker), tracker.sender_id), None
    )


class ActionDeclareStart(Action):
    """Starts a declaration with what the message and the register already say, and tells what will happen."""

    def name(self) -> str:
        return "action_declare_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        text = latest_text(tracker)
        said: dict[str, Any] = {}
        if not text.startswith("/") and describes_trouble(text):
            said = from_description(text)
        declarant = read_db(
            "declarant lookup",
            lambda session: declarant_of_chat(session, sender_channel(tracker), tracker.sender_id),
            None,
        )
        known = known_of(declarant) if declarant is not None else {}
        open_cases = [c for c in own_cases(tracker) or [] if c.status in ("已提交", "核实中")]
        utter_template(
            dispatcher,
            "decl_start.j2",
            said=said,
            declarant=declarant,
            open_cases=open_cases,
            amount_unknown=UNKNOWN,
        )
        prefill = {**known, **said}  # the message wins over the register (a size just said is newer)
        leftovers = [SlotSet(s, None) for s in FORM_SLOTS if tracker.get_slot(s) is not None and s not in prefill]
        return [*leftovers, *(SlotSet(k, v) for k, v in prefill.items()), SlotSet(KEY, uuid.uuid4().hex)]


class ValidateDeclarationForm(PersonFormValidation):
    """Checks each answer; 取消 or a request for a person ends the form, and a named field can be corrected."""

    NAME, ID_NUMBER, PHONE, CONFIRM, EDITING, FAILURES = NAME, ID_NUMBER, PHONE, CONFIRM, EDITING, FAILURES
    FIELD_WORDS = FIELD_WORDS
    INVALID_TEMPLATE = "decl_invalid.j2"

    def name(self) -> str:
        return "validate_declaration_form"

    async def validate_decl_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {DESCRIPTION: None}
        text = str(value).strip()
        stop = self.interruption(tracker, free_text=True)
        if stop is not None:
            return {DESCRIPTION: None, **stop}
        problem = description_problem(text)
        if problem is not None:
            self.refuse(dispatcher, tracker, DESCRIPTION, problem)
            return {DESCRIPTION: None}
        found = from_description(text)
        # Only fill what is still open: a corrected description does not undo a cause or a sum already given.
        return {k: v for k, v in found.items() if k == DESCRIPTION or tracker.get_slot(k) is None}

    async def validate_decl_cause(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {CAUSE: None}
        cause = cause_from_answer(str(value), CAUSES)
        if cause is not None:
            return {CAUSE: cause}
        stop = self.interruption(tracker)
        if stop is not None:
            return {CAUSE: None, **stop}
        self.refuse(dispatcher, tracker, CAUSE, "cause", buttons=cause_buttons())
        return {CAUSE: None}

    async def validate_decl_amount(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {AMOUNT: None}
        answer = read_sum(str(value))  # 说不准 / 不清楚 is UNKNOWN, which the cadre verifies
        if answer.outcome is Answer.OK and answer.value is not None:
            return {AMOUNT: money(answer.value), AMOUNT_HINT: None}
        if answer.outcome is Answer.UNKNOWN:
            return {AMOUNT: UNKNOWN, AMOUNT_HINT: None}
        stop = self.interruption(tracker)
        if stop is not None:
            return {AMOUNT: None, **stop}
        buttons = [unknown_button(), cancel_button()]
        self.refuse(dispatcher, tracker, AMOUNT, answer.outcome.value, buttons=buttons, value=answer.value)
        return {AMOUNT: None}

    async def validate_decl_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.read_name(value, dispatcher, tracker)

    async def validate_decl_id_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.read_id_number(value, dispatcher, tracker)

    async def validate_decl_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.read_phone(value, dispatcher, tracker)

    async def validate_decl_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {ADDRESS: None}
        text = " ".join(str(value).split())
        stop = self.interruption(tracker, free_text=True)
        if stop is not None:
            return {ADDRESS: None, **stop}
        if len(text) > 200 or description_problem(text) is not None:
            self.refuse(dispatcher, tracker, ADDRESS, "address")
            return {ADDRESS: None}
        region = read_db("address lookup", lambda session: resolve_address(session, text), None)
        return {ADDRESS: text, REGION: region}

    async def validate_decl_size(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {SIZE: None}
        size = read_size(str(value))
        if size is not None:
            return {SIZE: str(size)}
        stop = self.interruption(tracker)
        if stop is not None:
            return {SIZE: None, **stop}
        impossible = bool(re.search(r"[0-9零〇一二两三四五六七八九十百]", str(value)))
        self.refuse(dispatcher, tracker, SIZE, "size_range" if impossible else "size")
        return {SIZE: None}

    async def validate_decl_income(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {INCOME: None}
        answer = read_sum(str(value), maximum=MAX_INCOME, allow_none=True)
        if answer.outcome is Answer.OK and answer.value is not None:
            return {INCOME: money(answer.value)}
        stop = self.interruption(tracker)
        if stop is not None:
            return {INCOME: None, **stop}
        self.refuse(dispatcher, tracker, INCOME, answer.outcome.value, value=answer.value)
        return {INCOME: None}

    async def validate_decl_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.read_confirm(value, dispatcher, tracker)


def cause_buttons() -> list[dict[str, str]]:
    return [{"title": c, "payload": c} for c in CAUSES] + [cancel_button()]


def unknown_button() -> dict[str, str]:
    return {"title": "说不准", "payload": "说不准"}


class ActionAskDeclCause(Action):
    """Asks for the cause with a button each; the causes the description hinted at come first."""

    def name(self) -> str:
        return "action_ask_decl_cause"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        hinted = causes_in(str(tracker.get_slot(DESCRIPTION) or ""))
        ordered = hinted + [c for c in CAUSES if c not in hinted]
        buttons = [{"title": c, "payload": c} for c in ordered] + [cancel_button()]
        utter_template(dispatcher, "decl_ask_cause.j2", buttons=buttons, hinted=hinted)
        return []


class ActionAskDeclAmount(Action):
    """Asks for the extra expense or the lost income, quoting a vague sum the description gave (好几万)."""

    def name(self) -> str:
        return "action_ask_decl_amount"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        utter_template(
            dispatcher,
            "decl_ask_amount.j2",
            buttons=[unknown_button(), cancel_button()],
            cause=tracker.get_slot(CAUSE),
            hint=tracker.get_slot(AMOUNT_HINT),
        )
        return []


class ActionAskDeclIdNumber(Action):
    """Asks for the 身份证号: the first time with why and who sees it (the privacy notice), after a mistake briefly."""

    def name(self) -> str:
        return "action_ask_decl_id_number"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        again = bool(tracker.get_slot(FAILURES))
        dispatcher.utter_message(response="utter_ask_decl_id_number_again" if again else "utter_ask_decl_id_number")
        return []


def summary_context(tracker: Tracker) -> dict[str, Any]:
    return {
        "description": tracker.get_slot(DESCRIPTION),
        "cause": tracker.get_slot(CAUSE),
        "amount": tracker.get_slot(AMOUNT),
        "unknown": UNKNOWN,
        "person": tracker.get_slot(NAME),
        "id_number": str(tracker.get_slot(ID_NUMBER) or ""),
        "phone": str(tracker.get_slot(PHONE) or ""),
        "address": tracker.get_slot(ADDRESS),
        "region": tracker.get_slot(REGION),
        "size": tracker.get_slot(SIZE),
        "income": tracker.get_slot(INCOME),
    }


class ActionAskDeclConfirm(Action):
    """Shows the whole declaration (masked) with 提交 / 修改 / 取消; after 修改, which field to change."""

    def name(self) -> str:
        return "action_ask_decl_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if tracker.get_slot(EDITING):
            dispatcher.utter_message(response="utter_ask_decl_field")
            return []
        buttons = [{"title": "提交", "payload": "提交"}, {"title": "修改", "payload": "修改"}, cancel_button()]
        utter_template(dispatcher, "decl_confirm.j2", buttons=buttons, **summary_context(tracker))
        return []


def declaration_of(tracker: Tracker) -> Declaration:
    amount = tracker.get_slot(AMOUNT)
    return Declaration(
        name=str(tracker.get_slot(NAME)),
        id_number=str(tracker.get_slot(ID_NUMBER)),
        phone=str(tracker.get_slot(PHONE)),
        address=str(tracker.get_slot(ADDRESS) or ""),
        cause=str(tracker.get_slot(CAUSE)),
        amount=None if amount in (None, UNKNOWN) else Decimal(str(amount)),
        income=Decimal(str(tracker.get_slot(INCOME))),
        size=int(str(tracker.get_slot(SIZE))),
        description=str(tracker.get_slot(DESCRIPTION) or ""),
        channel=sender_channel(tracker),
        channel_user_id=tracker.sender_id,
        region_path=tracker.get_slot(REGION),
        submission_key=tracker.get_slot(KEY),
    )


class ActionDeclareSubmit(Action):
    """The form's single exit: submits after 提交 and commits before confirming; or says why nothing was submitted.

    When the database fails, the answers stay in the conversation and 再提交 (or 提交) tries again.
    """

    def name(self) -> str:
        return "action_declare_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rt = runtime.get()
        outcome = tracker.get_slot(CONFIRM)
        forget = [SlotSet(s, None) for s in FORM_SLOTS]
        if outcome == HANDOFF:
            utter_handoff(dispatcher, tracker)
            return forget
        if outcome != YES:
            dispatcher.utter_message(response="utter_decl_cancelled")
            return forget
        try:
            result = submit(
                rt.sessions,
                rt.monitoring,
                declaration_of(tracker),
                describe=render_notice,
            )
        except SQLAlchemyError:
            logger.exception("declaration could not be stored")
            dispatcher.utter_message(response="utter_decl_failed")
            return [SlotSet(PENDING, True)]
        if result.created:
            logger.info(
                "case %s submitted (category=%s, risk=%s, urgent=%s)",
                result.case.case_no,
                result.case.category,
                result.case.risk,
                result.case.urgent,
            )
        kb = rt.knowledge
        related = [kb.policies[p] for p in RELATED.get(result.case.cause or "", ()) if p in kb.policies]
        utter_template(
            dispatcher,
            "decl_done.j2",
            buttons=[status_button()] + [policy_button(p) for p in related],
            case=result.case,
            created=result.created,
            days=rt.monitoring.verification_working_days,
        )
        return forget


def render_notice(case: CaseView) -> str:
    """The notification a cadre receives about a new case (masked)."""
    return render(runtime.get().templates, "decl_notice.j2", case=case)


class ActionDeclarationStatus(Action):
    """The chat user's own declarations, with the status and the next step; nobody else's."""

    def name(self) -> str:
        return "action_declaration_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        mine = own_cases(tracker)
        if mine is None:
            dispatcher.utter_message(response="utter_decl_lookup_failed")
            return []
        overdue = any(c.overdue(today()) for c in mine)
        utter_template(
            dispatcher,
            "decl_status.j2",
            buttons=[declare_button()] if not mine else [handoff_button()] if overdue else [],
            cases=mine[:5],
            more=max(len(mine) - 5, 0),
            today=today(),
        )
        return []


class ActionCancel(Action):
    """取消 outside a form: drops the answers of a declaration kept after a failed 提交, else nothing is under way."""

    def name(self) -> str:
        return "action_cancel"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if tracker.get_slot(PENDING):
            dispatcher.utter_message(response="utter_decl_cancelled")
            return [SlotSet(s, None) for s in FORM_SLOTS]
        dispatcher.utter_message(response="utter_nothing_to_cancel")
        return []
