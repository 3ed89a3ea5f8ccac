"""Registering cadres in the chat (actions/services/invites.py does the work).

- A message with an invitation code (干部绑定 K7Q2-M9XD, or the code in a /start deep link) binds the sender's chat
  account to the new cadre.
- An administrator cadre who asks to register someone is asked the person's name and place (cadre_invite_form) and
  gets a one-time code to hand over.
- Anyone else learns how registration works. Saying "我是干部" changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions import runtime
from actions.cadre import ActionCadreCases, WorkspaceAction
from actions.common import sender_channel, utter_template
from actions.forms import cancel_button
from actions.services.insurance import is_cancel
from actions.services.invites import INVITE_HOURS, InviteError, clean_name, create_invite, normalise_code, redeem_invite
from actions.services.workspace import NotACadre, Officer, WorkspaceError, officer_of_chat, resolve_place

logger = logging.getLogger(__name__)

NAME_SLOT, PLACE_SLOT = "invite_name", "invite_place"
CADRE_MENU = [
    {"title": "待核实的申报", "payload": '/cadre_cases{"list":"pending"}'},
    {"title": "辖区统计", "payload": "/cadre_stats"},
]


def _clear() -> list[dict[str, Any]]:
    return [SlotSet(NAME_SLOT, None), SlotSet(PLACE_SLOT, None)]


class ActionCadreRegister(Action):
    """A code binds the account; an administrator is asked whom to invite; anyone else is told how it works."""

    def name(self) -> str:
        return "action_cadre_register"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        text = str(tracker.latest_message.get("text") or "")
        carried = next(tracker.get_latest_entity_values("invite_code"), None)
        said = str(carried) if carried else ("" if text.startswith("/") else text)
        channel, user = sender_channel(tracker), str(tracker.sender_id)
        try:
            with runtime.get().sessions.begin() as session:
                if normalise_code(said):
                    try:
                        registered = redeem_invite(session, channel, user, said)
                    except InviteError as exc:  # the failed attempt is audited and committed
                        utter_template(dispatcher, "cadre_problem.j2", problem=str(exc))
                        return []
                    utter_template(dispatcher, "cadre_registered.j2", registered=registered, buttons=CADRE_MENU)
                    return []
                try:
                    officer = officer_of_chat(session, channel, user)
                except NotACadre:
                    utter_template(dispatcher, "cadre_register_how.j2", officer=None, hours=INVITE_HOURS)
                    return []
                if not officer.is_admin:
                    utter_template(dispatcher, "cadre_register_how.j2", officer=officer, hours=INVITE_HOURS)
                    return []
                place = ActionCadreCases.place_in(session, officer, said) if said else None
        except SQLAlchemyError:
            logger.exception("cadre registration failed")
            dispatcher.utter_message(response="utter_decl_lookup_failed")
            return []
        return [SlotSet(NAME_SLOT, None), SlotSet(PLACE_SLOT, place), FollowupAction("cadre_invite_form")]


class ValidateCadreInviteForm(FormValidationAction):
    """The new cadre's name (2–20 characters) and a place of the administrator's jurisdiction; 取消 stops."""

    def name(self) -> str:
        return "validate_cadre_invite_form"

    @staticmethod
    def answer(
        slot: str, value: Any, dispatcher: CollectingDispatcher, check: Callable[[str], dict[str, Any]]
    ) -> dict[str, Any]:
        """取消 ends the form with empty answers (action_cadre_invite then creates nothing); the rest is checked.

        A slot cleared when the form starts (value None) is not an answer and gets no complaint.
        """
        if value is None:
            return {slot: None}
        text = " ".join(str(value or "").split())
        if is_cancel(text) and len(text) <= 10:
            dispatcher.utter_message(response="utter_invite_cancelled")
            return {NAME_SLOT: "", PLACE_SLOT: "", "requested_slot": None}
        return check(text)

    def validate_invite_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        def check(text: str) -> dict[str, Any]:
            try:
                return {NAME_SLOT: clean_name(text)}
            except WorkspaceError as exc:
                utter_template(dispatcher, "cadre_problem.j2", problem=str(exc), buttons=[cancel_button()])
                return {NAME_SLOT: None}

        return self.answer(NAME_SLOT, value, dispatcher, check)

    def validate_invite_place(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.answer(PLACE_SLOT, value, dispatcher, lambda text: self.place(text, dispatcher, tracker))

    @staticmethod
    def place(text: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        try:
            with runtime.get().sessions.begin() as session:
                officer = officer_of_chat(session, sender_channel(tracker), str(tracker.sender_id))
                region = resolve_place(session, officer, text) if text and not text.startswith("/") else None
                if region is None and text:
                    named = ActionCadreCases.place_in(session, officer, text[:200])
                    region = resolve_place(session, officer, named) if named else None
                if region is not None:
                    return {PLACE_SLOT: region.path}
                jurisdiction = officer.jurisdiction
        except NotACadre:
            utter_template(dispatcher, "cadre_refused.j2")
            return {NAME_SLOT: "", PLACE_SLOT: "", "requested_slot": None}
        except SQLAlchemyError:
            logger.exception("place lookup failed")
            dispatcher.utter_message(response="utter_decl_lookup_failed")
            return {PLACE_SLOT: None}
        utter_template(dispatcher, "invite_place_unknown.j2", jurisdiction=jurisdiction, buttons=[cancel_button()])
        return {PLACE_SLOT: None}


class ActionAskInvitePlace(Action):
    def name(self) -> str:
        return "action_ask_invite_place"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        name = tracker.get_slot(NAME_SLOT)
        utter_template(dispatcher, "invite_ask_place.j2", name=name, buttons=[cancel_button()])
        return []


class ActionCadreInvite(WorkspaceAction):
    """After the form: the one-time code, to hand to the new cadre in person or by phone."""

    def name(self) -> str:
        return "action_cadre_invite"

    def work(self, session: Any, officer: Officer, dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
        name, place = tracker.get_slot(NAME_SLOT), tracker.get_slot(PLACE_SLOT)
        if not (name and place):
            return _clear()
        region = resolve_place(session, officer, str(place))
        if region is None:
            raise WorkspaceError(f"在您的辖区里没找到“{place}”。")
        invitation = create_invite(session, officer, str(name), region)
        utter_template(dispatcher, "cadre_invited.j2", invitation=invitation, hours=INVITE_HOURS)
        return _clear()
