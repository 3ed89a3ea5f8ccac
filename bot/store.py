"""The front end's rows in the case database: the update inbox, long button payloads, the notification outbox.

Plain synchronous SQLAlchemy (2.0 style); the bot calls these through `asyncio.to_thread`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from actions.db.models import Notification, TelegramButton, TelegramUpdate

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_ATTEMPTS = 8  # then a notification is marked failed (with its last error) for a person to look at
CALLBACK_LIMIT = 64  # bytes of callback_data Telegram accepts
KEY_PREFIX = "k:"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Inbox:
    """Each update is recorded before it is handled; a repeated update_id is refused."""

    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions

    def claim(self, update_id: int, chat_id: int | None, body: dict[str, Any]) -> bool:
        """True when the update is new, or was recorded but never handled (a replay); False for a duplicate."""
        try:
            with self.sessions.begin() as session:
                session.add(TelegramUpdate(update_id=update_id, chat_id=chat_id, body=json.dumps(body)))
            return True
        except IntegrityError:
            with self.sessions() as session:
                row = session.get(TelegramUpdate, update_id)
                return row is not None and row.handled_at is None

    def done(self, update_id: int) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(TelegramUpdate)
                .where(TelegramUpdate.update_id == update_id)
                .values(handled_at=utcnow(), body=None)
            )

    def unhandled(self) -> list[dict[str, Any]]:
        """Updates received but not answered (the bot stopped, or gave up waiting for Rasa), oldest first."""
        with self.sessions() as session:
            rows = session.execute(
                select(TelegramUpdate.body)
                .where(TelegramUpdate.handled_at.is_(None), TelegramUpdate.body.is_not(None))
                .order_by(TelegramUpdate.update_id)
            ).scalars()
            return [json.loads(body) for body in rows]


class Buttons:
    """callback_data for a payload: the payload itself when it fits in 64 bytes, else a key kept in the database."""

    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions

    def data_for(self, payload: str) -> str:
        if len(payload.encode("utf-8")) <= CALLBACK_LIMIT and not payload.startswith(KEY_PREFIX):
            return payload
        key = KEY_PREFIX + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]
        try:
            with self.sessions.begin() as session:
                if session.get(TelegramButton, key) is None:
                    session.add(TelegramButton(key=key, payload=payload))
        except IntegrityError:
            pass  # another chat's reply stored the same payload at the same moment: the key is the same
        return key

    def payload_of(self, data: str) -> str | None:
        """The payload a pressed button stands for; None for a key this database does not know."""
        if not data.startswith(KEY_PREFIX):
            return data
        with self.sessions() as session:
            row = session.get(TelegramButton, data)
            return row.payload if row is not None else None


@dataclass(frozen=True)
class Pending:
    id: int
    chat_id: str
    text: str
    buttons: list[dict[str, Any]]
    attempts: int


class Outbox:
    """Notifications waiting for delivery over Telegram; each attempt's outcome is recorded."""

    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions

    def due(self, limit: int = 20) -> list[Pending]:
        now = utcnow()
        with self.sessions() as session:
            rows = session.execute(
                select(Notification)
                .where(
                    Notification.channel == CHANNEL,
                    Notification.sent_at.is_(None),
                    Notification.failed_at.is_(None),
                    (Notification.next_attempt_at.is_(None)) | (Notification.next_attempt_at <= now),
                )
                .order_by(Notification.id)
                .limit(limit)
            ).scalars()
            return [
                Pending(n.id, n.channel_user_id, n.text, json.loads(n.buttons) if n.buttons else [], n.attempts or 0)
                for n in rows
            ]

    def sent(self, notification_id: int) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(Notification)
                .where(Notification.id == notification_id)
                .values(sent_at=utcnow(), attempts=Notification.attempts + 1, last_error=None)
            )

    def failed(self, notification_id: int, error: str, *, permanent: bool) -> bool:
        """Record a failed attempt; returns True when the notification will not be tried again."""
        now = utcnow()
        with self.sessions.begin() as session:
            row = session.get(Notification, notification_id)
            if row is None:
                return True
            row.attempts = (row.attempts or 0) + 1
            row.last_error = error[:200]
            if permanent or row.attempts >= MAX_ATTEMPTS:
                row.failed_at = now
                return True
            row.next_attempt_at = now + dt.timedelta(seconds=min(30 * 2 ** (row.attempts - 1), 3600))
            return False
