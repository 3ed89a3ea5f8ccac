"""Rasa's stores chosen by the environment (actions/stores.py), the tracker encrypted at rest, and the REST
channel's replies when a store is down (actions/channels.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from rasa.core.lock_store import InMemoryLockStore, RedisLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.exc import OperationalError

from actions import channels, crypto, stores
from actions.settings import PROJECT_ROOT
from tests.conftest import make_id_number
from tests.servers import PostgresServer, RedisServer

ID_NUMBER = make_id_number("19660101", 7)


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT_ROOT / "domain.yml"))


@pytest.fixture
def no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRACKER_STORE_URL", "LOCK_STORE_URL", "RASA_WORKERS", "SANIC_WORKERS"):
        monkeypatch.delenv(name, raising=False)


def test_unset_means_in_memory(no_store_env: None, domain: Domain) -> None:
    assert isinstance(stores.TrackerStoreFromEnv(domain=domain), InMemoryTrackerStore)
    assert isinstance(stores.LockStoreFromEnv(), InMemoryLockStore)


@pytest.mark.parametrize("variable", ["RASA_WORKERS", "SANIC_WORKERS"])
def test_several_workers_refuse_stores_of_their_own(
    no_store_env: None, domain: Domain, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "2")
    with pytest.raises(stores.StoreConfigurationError, match="TRACKER_STORE_URL"):
        stores.TrackerStoreFromEnv(domain=domain)
    with pytest.raises(stores.StoreConfigurationError, match="LOCK_STORE_URL"):
        stores.LockStoreFromEnv()


@pytest.mark.parametrize("url", ["http://x", "redis://localhost:6379/abc", "localhost"])
def test_a_bad_lock_store_url_is_refused(url: str) -> None:
    with pytest.raises(stores.StoreConfigurationError):
        stores.redis_lock_store(url)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def tracker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"tracker_{abs(hash(tmp_path)) % 10**8}"
    return server.create_database(name)


def _conversation(domain: Domain) -> DialogueStateTracker:
    return DialogueStateTracker.from_events(
        "villager-1",
        [
            ActionExecuted("action_listen"),
            UserUttered(f"我的身份证是{ID_NUMBER}", {"name": "inform", "confidence": 1.0}),
            SlotSet("decl_id_number", ID_NUMBER),
            SlotSet("decl_phone", "13912345678"),
            ActionExecuted("action_listen"),
        ],
        domain.slots,
    )


def test_the_tracker_survives_the_store_and_is_encrypted_at_rest(
    no_store_env: None, domain: Domain, tracker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKER_STORE_URL", tracker_url)
    store = stores.TrackerStoreFromEnv(domain=domain)
    assert isinstance(store, stores.EncryptedSQLTrackerStore)
    tracker = _conversation(domain)
    asyncio.run(store.save(tracker))
    tracker.update(UserUttered("还有一句"))
    asyncio.run(store.save(tracker))  # only the new event is added

    again = stores.TrackerStoreFromEnv(domain=domain)  # a restarted Rasa server
    restored = asyncio.run(again.retrieve("villager-1"))
    assert restored is not None
    assert [e.as_dict() for e in restored.events] == [e.as_dict() for e in tracker.events]
    assert restored.get_slot("decl_id_number") == ID_NUMBER

    engine = sa.create_engine(tracker_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT type_name, data FROM events ORDER BY id")).all()
    engine.dispose()
    assert len(rows) == len(tracker.events)
    dump = "\n".join(row.data for row in rows)
    assert ID_NUMBER not in dump and "13912345678" not in dump and "身份证" not in dump
    assert all(row.data.startswith(crypto.TOKEN_PREFIX) for row in rows)
    if tracker_url.startswith("sqlite:///"):  # the file itself, WAL included
        raw = b"".join(p.read_bytes() for p in Path(tracker_url[10:]).parent.glob("tracker.db*"))
        assert ID_NUMBER.encode() not in raw


def test_events_stored_before_encryption_still_read(no_store_env: None, domain: Domain, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    store = stores.EncryptedSQLTrackerStore(domain=domain, url=url)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES ('old', 'user', 1, :d)"),
            {"d": json.dumps(UserUttered("你好", timestamp=1).as_dict())},
        )
    engine.dispose()
    restored = asyncio.run(store.retrieve("old"))
    assert restored is not None and restored.latest_message.text == "你好"  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def test_redis_locks_one_conversation_across_stores(
    no_store_env: None, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCK_STORE_URL", redis_server.url(3))
    monkeypatch.setenv("RASA_WORKERS", "2")
    first, second = stores.LockStoreFromEnv(), stores.LockStoreFromEnv()  # as in two workers
    assert isinstance(first, RedisLockStore) and isinstance(second, RedisLockStore)
    lock = first.issue_ticket("villager-1")
    assert second.get_or_create_lock("villager-1").is_someone_waiting()
    first.finish_serving("villager-1", lock)


def test_an_unreachable_store_gets_a_clear_reply_and_no_text_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    error = OperationalError("SELECT 1", {}, Exception("connection refused"))
    wrapped = RuntimeError("while reading the tracker")
    wrapped.__cause__ = error
    with caplog.at_level(logging.DEBUG, logger="actions.channels"):
        assert channels.failure_reply("villager-1", wrapped) == (
            503,
            [{"recipient_id": "villager-1", "text": channels.UNAVAILABLE}],
        )
        status, reply = channels.failure_reply("villager-1", KeyError("a bug"))
    assert status == 500 and reply[0]["text"] == channels.FAILED
    assert "villager-1" not in caplog.text and "SELECT" not in caplog.text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("低保咋申请", "低保咋申请"),
        ("a\ud800b", "a\ufffdb"),  # a lone surrogate: valid JSON, not text
        ("住址:东峪\u202e村\x1a\x00\u200b", "住址:东峪村"),  # a bidi override, control characters, a zero-width space
        ("第一行\r\n第二行\t完", "第一行\n第二行\t完"),
        ("👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧"),  # emoji sequences keep their joiners
        ('/choose{"x": [[1]]}', '/choose{"x": [[1]]}'),  # a button's payload stays a payload
    ],
)
def test_message_text_is_cleaned(raw: str, clean: str) -> None:
    assert channels.clean_text(raw) == clean


def test_a_payload_nested_deeper_than_any_button_is_read_as_text() -> None:
    deep = '/greet{"a": ' + "[" * 5000 + "]" * 5000 + "}"
    assert channels.clean_text(deep) == deep[1:]


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"sender": "x", "message": "你好"}, True),
        ({"sender": 42, "message": "你好", "metadata": {"channel": "telegram"}}, True),
        ({"sender": "x", "message": "你好", "metadata": None}, True),
        ({"sender": "x", "message": 123}, False),
        ({"sender": "x", "message": None}, False),
        ({"sender": "x"}, False),
        ({"sender": ["x"], "message": "你好"}, False),
        ({"sender": True, "message": "你好"}, False),
        ({"message": "你好"}, False),
        ({"sender": "x", "message": "你好", "metadata": "x"}, False),
        ([], False),
    ],
)
def test_only_well_formed_requests_reach_rasa(body: object, ok: bool) -> None:
    assert channels.well_formed(body) is ok
