"""Greeting and human handoff: replies that depend on who is writing."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.common import current_caller, domain_buttons, read_db, utter_template
from actions.services.identities import cadres_covering

logger = logging.getLogger(__name__)


class ActionGreet(Action):
    """Greets a cadre by name and jurisdiction, anyone else with the villager menu."""

    def name(self) -> str:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        caller = current_caller(tracker)
        if caller is None or not (caller.is_cadre or caller.person_name):
            dispatcher.utter_message(response="utter_greet")
            return []
        utter_template(dispatcher, "greet.j2", buttons=domain_buttons(domain, "utter_greet"), caller=caller)
        return []


class ActionHumanHandoff(Action):
    """Tells the caller how to reach a person: their own village's cadres when known."""

    def name(self) -> str:
        return "action_human_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        utter_handoff(dispatcher, tracker)
        return []


def utter_handoff(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """How to reach a person: the caller's own village cadres when known, else whom to ask."""
    caller = current_caller(tracker)
    contacts: list[dict[str, str]] = []
    if caller is not None and caller.village:
        village = caller.village
        contacts = read_db(
            "cadre lookup",
            lambda session: [{"name": c.name, "region": c.region.path} for c in cadres_covering(session, village)][:3],
            [],
        )
    utter_template(dispatcher, "human_handoff.j2", contacts=contacts, hotline=runtime.get().settings.handoff_contact)
