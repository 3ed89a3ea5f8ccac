"""Helpers shared by the actions: who is writing, and replies rendered from templates."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions import runtime
from actions.rendering import render
from actions.services.identities import Caller, find_caller

logger = logging.getLogger(__name__)
T = TypeVar("T")


def sender_channel(tracker: Tracker) -> str:
    """The channel a front end reports in the message metadata (bot/ says 'telegram'), else Rasa's input channel."""
    metadata = tracker.latest_message.get("metadata") or {}
    channel = metadata.get("channel") if isinstance(metadata, dict) else None
    return str(channel or tracker.get_latest_input_channel() or "rest")


def read_db(what: str, query: Callable[[Session], T], default: T) -> T:
    """Run a read in its own short transaction; when the database fails, log it and return `default`.

    Engines hide bound parameters, so the logged error carries no 身份证号 or phone number.
    """
    try:
        with runtime.get().sessions.begin() as session:
            return query(session)
    except SQLAlchemyError:
        logger.exception("%s failed", what)
        return default


def current_caller(tracker: Tracker) -> Caller | None:
    """The caller as the case database knows them; None when the database cannot be reached."""
    return read_db(
        "caller lookup", lambda session: find_caller(session, sender_channel(tracker), tracker.sender_id), None
    )


def intent_payload(entities: dict[str, str], intent: str = "ask_policy") -> str:
    """A button payload that runs the intent with entities, compact so that it fits Telegram's 64 bytes."""
    return f"/{intent}{json.dumps(entities, ensure_ascii=False, separators=(',', ':'))}"


def domain_buttons(domain: dict[str, Any], response: str) -> list[dict[str, Any]]:
    """The buttons of a static response in domain.yml, so a menu is defined once."""
    variants = domain.get("responses", {}).get(response) or [{}]
    return list(variants[0].get("buttons", []))


def utter_template(
    dispatcher: CollectingDispatcher, template: str, /, buttons: list[dict[str, Any]] | None = None, **context: Any
) -> None:
    """Say a Jinja2 template; its context may use any name, `name` and `template` included."""
    text = render(runtime.get().templates, template, **context)
    dispatcher.utter_message(text=text, buttons=buttons or [])
