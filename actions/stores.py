"""Rasa's tracker store and lock store, chosen by environment variables (endpoints.yml names these classes).

- `TRACKER_STORE_URL` unset: Rasa's in-memory tracker store (one process; conversations end with it).
  Set (`postgresql://user:password@host:5432/db`, or `sqlite:////path/tracker.db`): `EncryptedSQLTrackerStore`, so
  conversations survive restarts and several Rasa workers share them.
- `LOCK_STORE_URL` unset: the in-memory lock store (one process). Set (`redis://[:password@]host:6379/1`): Rasa's
  `RedisLockStore`, which keeps the messages of one conversation in order across workers.
- `RASA_WORKERS` > 1 needs both; start-up refuses otherwise rather than let two workers keep two different
  conversations for one villager.

endpoints.yml cannot hold optional sections (Rasa refuses a `${VAR}` that is not set), hence these two small
classes that read the environment themselves.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from rasa.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore
from rasa.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from actions import crypto

logger = logging.getLogger(__name__)


class StoreConfigurationError(RuntimeError):
    """The stores named by the environment cannot serve the number of workers asked for."""


def rasa_workers(environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    raw = env.get("RASA_WORKERS") or env.get("SANIC_WORKERS") or "1"
    try:
        workers = int(raw)
    except ValueError:
        raise StoreConfigurationError(f"RASA_WORKERS must be a whole number, not {raw!r}") from None
    if workers < 1:
        raise StoreConfigurationError("RASA_WORKERS must be at least 1")
    return workers


def _require_shared(what: str, variable: str) -> None:
    workers = rasa_workers()
    if workers > 1:
        raise StoreConfigurationError(
            f"RASA_WORKERS={workers} but {variable} is not set: each worker would keep its own {what}. "
            f"Set {variable} (README, Configuration) or run one worker"
        )


class EncryptedSQLTrackerStore(SQLTrackerStore):
    """Rasa's SQL tracker store with each event's JSON encrypted at rest (`actions.crypto`).

    A villager's messages and the form's slots hold 身份证号 and phone numbers; in the `events` table they are
    Fernet tokens. The columns Rasa queries (sender, event type, intent and action name, timestamp) stay plain.
    The engine checks a pooled connection before using it, so the first message after a database restart does not
    fail on a connection the restart closed.
    """

    def __init__(self, domain: Domain | None = None, url: str = "", **kwargs: Any) -> None:
        if "://" not in url:
            raise StoreConfigurationError("TRACKER_STORE_URL must be a database URL (postgresql://… or sqlite:///…)")
        super().__init__(domain=domain, host=url, **kwargs)  # a full URL as `host` is used as it is
        rasa_engine: Any = self.__dict__["engine"]
        options: dict[str, Any] = {}
        if rasa_engine.url.get_backend_name() == "postgresql":
            options = {"pool_size": 10, "max_overflow": 20}
        rasa_engine.dispose()
        self.engine = sa.create_engine(rasa_engine.url, pool_pre_ping=True, hide_parameters=True, **options)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self._cipher = crypto.cipher()

    def _encode(self, data: dict[str, Any]) -> str:
        return self._cipher.encrypt(json.dumps(data, ensure_ascii=False))

    def _decode(self, stored: str) -> dict[str, Any]:
        if stored.startswith(crypto.TOKEN_PREFIX):
            return json.loads(self._cipher.decrypt(stored))  # type: ignore[no-any-return]
        return json.loads(stored)  # type: ignore[no-any-return]  # written before encryption was turned on

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> DialogueStateTracker | None:
        with self.session_scope() as session:
            rows = self._event_query(session, sender_id, fetch_events_from_all_sessions).all()
            events = [self._decode(row.data) for row in rows]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        with self.session_scope() as session:
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                session.add(
                    self.SQLEvent(
                        sender_id=tracker.sender_id,
                        type_name=event.type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                        action_name=data.get("name"),
                        data=self._encode(data),
                    )
                )
            session.commit()


class TrackerStoreFromEnv:
    """`tracker_store: type: actions.stores.TrackerStoreFromEnv`: builds the store that TRACKER_STORE_URL names."""

    def __new__(  # type: ignore[misc]
        cls, domain: Domain | None = None, event_broker: Any = None, host: str | None = None, **kwargs: Any
    ) -> TrackerStore:
        url = os.environ.get("TRACKER_STORE_URL", "").strip()
        if not url:
            _require_shared("conversations", "TRACKER_STORE_URL")
            logger.info("tracker store: in memory")
            return InMemoryTrackerStore(domain or Domain.empty(), event_broker)
        store = EncryptedSQLTrackerStore(domain=domain, url=url, event_broker=event_broker)
        logger.info("tracker store: SQL (%s), events encrypted", store.engine.dialect.name)
        return store


def redis_lock_store(url: str) -> RedisLockStore:
    parsed = urlsplit(url)
    database = parsed.path.strip("/") or "1"
    if parsed.scheme not in ("redis", "rediss") or not database.isdigit():
        raise StoreConfigurationError("LOCK_STORE_URL must look like redis://[:password@]host:6379/1")
    return RedisLockStore(
        host=parsed.hostname or "localhost",
        port=parsed.port or 6379,
        db=int(database),
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        use_ssl=parsed.scheme == "rediss",
        key_prefix=os.environ.get("LOCK_STORE_PREFIX") or None,
    )


class LockStoreFromEnv:
    """`lock_store: type: actions.stores.LockStoreFromEnv`: Redis when LOCK_STORE_URL is set, else in memory."""

    def __new__(cls, endpoint_config: Any = None, **kwargs: Any) -> LockStore:  # type: ignore[misc]
        url = os.environ.get("LOCK_STORE_URL", "").strip()
        if not url:
            _require_shared("conversation locks", "LOCK_STORE_URL")
            return InMemoryLockStore()
        store = redis_lock_store(url)
        store.red.ping()  # fail at start-up, not on the first villager's message
        logger.info("lock store: Redis")
        return store


__all__ = [
    "EncryptedSQLTrackerStore",
    "LockStoreFromEnv",
    "StoreConfigurationError",
    "TrackerStoreFromEnv",
    "rasa_workers",
]
