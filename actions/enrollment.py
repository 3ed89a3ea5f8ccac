"""齐惠保 enrollment in the chat (enrollment_form) and the chat user's own enrollment status."""

from __future__ import annotations

import logging
import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions import runtime
from actions.basics import utter_handoff
from actions.common import read_db, sender_channel
from actions.forms import (
    HANDOFF,
    YES,
    PersonFormValidation,
    cancel_button,
    handoff_button,
    register_lookup,
)
from actions.insurance import caller_person, enroll_button
from actions.rendering import render
from actions.services.idcard import normalize_phone, validate_id_number
from actions.services.insurance import (
    HOME_CITY,
    EnrollmentView,
    Lookup,
    OutsideRegionError,
    Standing,
    enroll,
    enrollment_of,
    enrollments_of_chat,
    policy_year,
    same_name,
)
from actions.services.knowledge import KnowledgeBase, Policy

logger = logging.getLogger(__name__)

FORM = "enrollment_form"
NAME, ID_NUMBER, PHONE, CONFIRM = "enroll_name", "enroll_id_number", "enroll_phone", "enroll_confirm"
EDITING, FAILURES, READY = "enroll_editing", "enroll_id_failures", "enroll_ready"
FORM_SLOTS = (NAME, ID_NUMBER, PHONE, CONFIRM, EDITING, FAILURES)
# How the form ended; the submit action says what happened.
OUTSIDE, EXISTING = "outside", "existing"  # and YES, CANCEL, HANDOFF of actions.forms
# Medical programmes of the knowledge base offered instead of 齐惠保 to people outside 淄博, by city.
ELSEWHERE = ("yibao_daijiao", "wuchong_baozhang", "xianzhenliao", "menzhen_manxing", "diyi_cunyi")

FIELD_WORDS = (
    (ID_NUMBER, re.compile(r"身份证|证号|身份号")),
    (PHONE, re.compile(r"手机|电话")),
    (NAME, re.compile(r"姓名|名字|名")),
)


def status_button() -> dict[str, str]:
    return {"title": "查参保状态", "payload": "/insurance_status"}


def insured_year() -> int:
    return policy_year(configured=runtime.get().settings.insurance_year)


def existing_enrollment(id_number: str) -> EnrollmentView | None:
    """This year's enrollment of the 身份证号; None when there is none or the database fails."""
    return read_db("enrollment lookup", lambda session: enrollment_of(session, id_number, insured_year()), None)


class ActionEnrollStart(Action):
    """Decides whether enrollment can start: 淄博 only, once a year; fills in what is known of a linked chat user."""

    def name(self) -> str:
        return "action_enroll_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rt = runtime.get()
        regions = [
            str(e["value"])
            for e in tracker.latest_message.get("entities") or []
            if e.get("entity") == "region" and isinstance(e.get("value"), str)
        ]
        elsewhere = next((r for r in regions if r.split("/")[0] != HOME_CITY), None)
        if elsewhere:
            utter_outside(dispatcher, rt.knowledge, elsewhere)
            return [SlotSet(READY, False)]
        person = caller_person(tracker)
        prefill: list[dict[str, Any]] = []
        if person is not None:
            if person.region_path.split("/")[0] != HOME_CITY:
                utter_outside(dispatcher, rt.knowledge, person.region_path)
                return [SlotSet(READY, False)]
            existing = existing_enrollment(person.id_number)
            if existing is not None:
                utter_existing(dispatcher, existing)
                return [SlotSet(READY, False)]
            prefill = [SlotSet(NAME, person.name), SlotSet(ID_NUMBER, person.id_number)]
            if person.phone:
                prefill.append(SlotSet(PHONE, person.phone))
        dispatcher.utter_message(text=render(rt.templates, "enroll_start.j2", person=person, year=insured_year()))
        leftovers = [SlotSet(s, None) for s in FORM_SLOTS if tracker.get_slot(s) is not None]
        return [*leftovers, *prefill, SlotSet(READY, True)]


class ValidateEnrollmentForm(PersonFormValidation):
    """Checks each answer; 取消 or a request for a person at any step ends the form, and a named field can be
    corrected at any step ("手机号写错了"). A 身份证号 outside 淄博, or enrolled already this year, ends it early."""

    NAME, ID_NUMBER, PHONE, CONFIRM, EDITING, FAILURES = NAME, ID_NUMBER, PHONE, CONFIRM, EDITING, FAILURES
    FIELD_WORDS = FIELD_WORDS
    INVALID_TEMPLATE = "enroll_invalid.j2"

    def name(self) -> str:
        return "validate_enrollment_form"

    async def validate_enroll_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.read_name(value, dispatcher, tracker)

    async def validate_enroll_id_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.read_id_number(value, dispatcher, tracker)

    def accept_id(self, id_number: str, name: str, found: Lookup) -> dict[str, Any]:
        if found.standing is Standing.OUTSIDE:
            return {ID_NUMBER: id_number, **self.ending(OUTSIDE)}
        existing = existing_enrollment(id_number)
        if existing is not None and same_name(existing.name, name):
            # Enrolled already this year: say so now rather than after the phone number.
            return {ID_NUMBER: id_number, FAILURES: 0, **self.ending(EXISTING)}
        return {ID_NUMBER: id_number, FAILURES: 0}

    async def validate_enroll_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.read_phone(value, dispatcher, tracker)

    async def validate_enroll_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.read_confirm(value, dispatcher, tracker)

    def confirm_extra(self, text: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any] | None:
        """A new phone number or 身份证号 typed at the last step replaces the old one."""
        phone = normalize_phone(text)
        if phone:
            return {PHONE: phone, CONFIRM: None}
        if validate_id_number(text).ok:
            checked = self.read_id_number(text, dispatcher, tracker)
            return checked if checked.get(CONFIRM) else {**checked, CONFIRM: None}
        return None


class ActionAskEnrollIdNumber(Action):
    """Asks for the 身份证号: the first time with why it is needed and who sees it, after a mistake briefly."""

    def name(self) -> str:
        return "action_ask_enroll_id_number"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        again = bool(tracker.get_slot(FAILURES))
        dispatcher.utter_message(response="utter_ask_enroll_id_number_again" if again else "utter_ask_enroll_id_number")
        return []


class ActionAskEnrollConfirm(Action):
    """Shows what will be submitted (masked) and the premium it will cost, with 确认 / 修改 / 取消."""

    def name(self) -> str:
        return "action_ask_enroll_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rt = runtime.get()
        if tracker.get_slot(EDITING):
            dispatcher.utter_message(response="utter_ask_enroll_field")
            return []
        id_number = str(tracker.get_slot(ID_NUMBER) or "")
        standing = register_lookup(id_number, tracker.get_slot(NAME)).standing
        terms = rt.insurance_terms
        dispatcher.utter_message(
            text=render(
                rt.templates,
                "enroll_confirm.j2",
                person=tracker.get_slot(NAME),
                id_number=id_number,
                phone=str(tracker.get_slot(PHONE) or ""),
                year=insured_year(),
                standing=standing.value,
                premium=terms.premium(standing is Standing.REGISTERED_POOR),
            ),
            buttons=[{"title": "确认", "payload": "确认"}, {"title": "修改", "payload": "修改"}, cancel_button()],
        )
        return []


class ActionEnrollSubmit(Action):
    """The form's single exit: enrolls after 确认, or says why nothing was enrolled; then forgets the answers."""

    def name(self) -> str:
        return "action_enroll_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rt = runtime.get()
        outcome = tracker.get_slot(CONFIRM)
        forget = [SlotSet(s, None) for s in FORM_SLOTS]
        if outcome == HANDOFF:
            utter_handoff(dispatcher, tracker)
            return forget
        if outcome == OUTSIDE:
            found = register_lookup(str(tracker.get_slot(ID_NUMBER) or ""), tracker.get_slot(NAME))
            utter_outside(dispatcher, rt.knowledge, found.region_path)
            return forget
        if outcome == EXISTING:
            existing = existing_enrollment(str(tracker.get_slot(ID_NUMBER) or ""))
            if existing is not None:
                utter_existing(dispatcher, existing)
                return forget
        if outcome != YES:
            dispatcher.utter_message(response="utter_enroll_cancelled")
            return forget
        try:
            result = enroll(
                rt.sessions,
                rt.insurance_terms,
                name=str(tracker.get_slot(NAME)),
                id_number=str(tracker.get_slot(ID_NUMBER)),
                phone=str(tracker.get_slot(PHONE)),
                year=insured_year(),
                channel=sender_channel(tracker),
                channel_user_id=tracker.sender_id,
            )
        except OutsideRegionError as exc:
            utter_outside(dispatcher, rt.knowledge, str(exc.args[0]) if exc.args else None)
            return forget
        except SQLAlchemyError:
            logger.exception("enrollment failed")
            dispatcher.utter_message(response="utter_enroll_failed")
            return forget
        if result.created:
            logger.info("enrollment %s created (verified=%s)", result.enrollment.reference, result.enrollment.verified)
            dispatcher.utter_message(
                text=render(rt.templates, "enroll_done.j2", e=result.enrollment, standing=result.standing.value,
                            bound=result.bound),
                buttons=[status_button()],
            )  # fmt: skip
        else:
            utter_existing(dispatcher, result.enrollment)
        return forget


class ActionInsuranceStatus(Action):
    """The chat user's own 齐惠保 enrollments, and nobody else's."""

    def name(self) -> str:
        return "action_insurance_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rt = runtime.get()
        mine = read_db(
            "enrollment lookup",
            lambda session: enrollments_of_chat(session, sender_channel(tracker), tracker.sender_id),
            None,
        )
        if mine is None:
            dispatcher.utter_message(response="utter_enroll_failed")
            return []
        buttons = [] if mine else [enroll_button()]
        dispatcher.utter_message(text=render(rt.templates, "insurance_status.j2", enrollments=mine), buttons=buttons)
        return []


def utter_existing(dispatcher: CollectingDispatcher, enrollment: EnrollmentView) -> None:
    dispatcher.utter_message(
        text=render(runtime.get().templates, "enroll_existing.j2", e=enrollment),
        buttons=[status_button()],
    )


def local_options(kb: KnowledgeBase, region_path: str | None) -> list[Policy]:
    city = (region_path or "").split("/")[0]
    return [kb.policies[p] for p in ELSEWHERE if p in kb.policies and kb.policies[p].city == city]


def utter_outside(dispatcher: CollectingDispatcher, kb: KnowledgeBase, region_path: str | None) -> None:
    """齐惠保 is a 淄博 programme: say so, and offer what the knowledge base has for the person's own city."""
    from actions.policy import policy_button

    options = local_options(kb, region_path)
    dispatcher.utter_message(
        text=render(runtime.get().templates, "enroll_outside.j2", region=region_path, options=options),
        buttons=[policy_button(p) for p in options] + [handoff_button()],
    )
