"""The production model, and both servers running on free ports against a fresh database.

HELPLINE_TEST_BACKEND chooses the stores the servers run on:
- `sqlite` (the default): the embedded default, one worker each, conversations in memory;
- `postgres`: production mode, on private PostgreSQL and Redis servers (tests/servers.py): the case database and
  Rasa's tracker store in PostgreSQL, the lock store in Redis, two Rasa workers and two action-server workers.

The servers' logs go to var/test/logs/<backend>/, which `make test` scans for personal data afterwards.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from actions import crypto
from actions.db.migrate import upgrade
from actions.db.session import make_engine, make_sessionmaker
from actions.launcher import running_servers
from actions.services.demo import load_demo
from actions.settings import PROJECT_ROOT
from actions.training import train
from tests.servers import PostgresServer, RedisServer

TEST_DIR = PROJECT_ROOT / "var" / "test"
BACKEND = os.environ.get("HELPLINE_TEST_BACKEND", "sqlite")
# The servers' data key (HELPLINE_DATA_KEY): a fixed test value, never a real one.
SERVER_DATA_KEY = "dGVzdC1vbmx5LWtleS1mb3ItdGhlLWludGVncmF0aW9uLXN1aXRl"


@pytest.fixture(autouse=True)
def data_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Tests here read the servers' database: they decrypt with the servers' key (overrides tests/conftest.py)."""
    monkeypatch.setenv("HELPLINE_DATA_KEY", SERVER_DATA_KEY)
    crypto.configure(None)
    yield SERVER_DATA_KEY
    crypto.configure(None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "rasa_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.servers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def test_config() -> Path:
    """The production config: the linear intent classifier trains in seconds, so tests use the real model."""
    return PROJECT_ROOT / "config.yml"


@pytest.fixture(scope="session")
def test_model(test_config: Path) -> Path:
    model, _ = train(test_config, TEST_DIR / "models")
    return model


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    if BACKEND != "postgres":
        yield None
        return
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer | None]:
    if BACKEND != "postgres":
        yield None
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def fresh_database(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None, name: str) -> str:
    """A migrated case database with the demo data, encrypted with the servers' key."""
    if postgres is None:
        url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'helpline.db'}"
    else:
        url = postgres.create_database(name)
    previous = crypto.current()
    crypto.configure(crypto.DataCipher(crypto.decode_secret(SERVER_DATA_KEY)))
    try:
        engine = make_engine(url)
        upgrade(engine)
        load_demo(make_sessionmaker(engine))
        engine.dispose()
    finally:
        crypto.configure(previous)
    return url


def environment_for(
    database: str, postgres: PostgresServer | None, redis_server: RedisServer | None, name: str
) -> dict[str, str]:
    """The environment both servers run with: production mode on the postgres backend."""
    env = dict(os.environ)
    env.update(DATABASE_URL=database, RASA_TELEMETRY_ENABLED="false", HELPLINE_DATA_KEY=SERVER_DATA_KEY)
    if postgres is not None and redis_server is not None:
        env.update(
            TRACKER_STORE_URL=postgres.create_database(f"{name}_tracker"),
            LOCK_STORE_URL=redis_server.url(),
            LOCK_STORE_PREFIX=name,
            RASA_WORKERS="2",
            ACTION_WORKERS="2",
        )
    return env


@pytest.fixture(scope="session")
def server_db(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None) -> str:
    return fresh_database(tmp_path_factory, postgres, "helpline")


@pytest.fixture(scope="session")
def server_env(server_db: str, postgres: PostgresServer | None, redis_server: RedisServer | None) -> dict[str, str]:
    return environment_for(server_db, postgres, redis_server, "helpline")


@pytest.fixture(scope="session")
def action_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def action_url(action_port: int) -> str:
    """The action server of `rasa_url` (its /health tells the Telegram front end whether actions can run)."""
    return f"http://localhost:{action_port}"


@pytest.fixture(scope="session")
def rasa_url(test_model: Path, server_env: dict[str, str], action_port: int) -> Iterator[str]:
    rasa_port = free_port()
    with running_servers(
        test_model,
        rasa_port=rasa_port,
        action_port=action_port,
        env=server_env,
        log_dir=TEST_DIR / "logs" / BACKEND,
    ) as url:
        yield url
