"""The actions' runtime on a migrated SQLite database, and trackers built as financial-demo does."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.db.migrate import upgrade
from actions.settings import PROJECT_ROOT, Settings


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[runtime.Runtime]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'actions.db'}",
        rasa_url="http://localhost:5005",
        action_port=5055,
        rasa_port=5005,
        log_level="INFO",
        handoff_contact="",
    )
    current = runtime.init(settings)
    upgrade(current.engine)
    yield current
    runtime.reset()


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    return dict(yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8")))


def entity(name: str, value: str, start: int | None = None, end: int | None = None) -> dict[str, Any]:
    """An extracted entity; with start and end when the test needs its place in the text."""
    return {"entity": name, "value": value} | ({"start": start, "end": end} if start is not None else {})


def make_tracker(
    sender: str,
    text: str,
    intent: str,
    channel: str = "rest",
    metadata: dict | None = None,
    entities: dict[str, str] | list[tuple[str, str]] | list[tuple[str, str, int, int]] | None = None,
    slots: dict[str, Any] | None = None,
) -> Tracker:
    pairs = list(entities.items()) if isinstance(entities, dict) else list(entities or [])
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.99},
        "entities": [entity(*pair) for pair in pairs],
        "metadata": metadata or {},
    }
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": slots or {},
            "latest_message": latest,
            "events": [{"event": "user", "text": text, "parse_data": latest, "input_channel": channel}],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


def form_tracker(
    text: str,
    slot: str,
    intent: str = "nlu_fallback",
    slots: dict[str, Any] | None = None,
    sender: str = "u1",
    form: str = "enrollment_form",
) -> Tracker:
    """The tracker as an active form hands it to validation (rasa FormAction._temporary_tracker): the message, then
    the requested slot, the form's own ActionExecuted, and the message's text extracted into `slot`."""
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": []}
    all_slots = {"requested_slot": slot, **(slots or {}), slot: text}
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": all_slots,
            "latest_message": latest,
            "events": [
                {"event": "user", "text": text, "parse_data": latest, "input_channel": "rest"},
                {"event": "slot", "name": "requested_slot", "value": slot},
                {"event": "action", "name": form},
                {"event": "slot", "name": slot, "value": text},
            ],
            "paused": False,
            "followup_action": None,
            "active_loop": {"name": form},
            "latest_action_name": form,
        }
    )


async def run(action: Any, tracker: Tracker, domain: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, domain)
    return events, dispatcher.messages


@functools.cache
def domain_responses() -> dict[str, list[dict[str, Any]]]:
    return dict(yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))["responses"])


def text_of(messages: list[dict[str, Any]]) -> str:
    """What the user reads: a message's text, or the first variant of the domain response it names."""
    return "\n".join(
        m.get("text") or (domain_responses()[m["response"]][0]["text"] if m.get("response") else "") for m in messages
    )


def payloads(messages: list[dict[str, Any]]) -> list[str]:
    return [b["payload"] for m in messages for b in m.get("buttons") or []]


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}
