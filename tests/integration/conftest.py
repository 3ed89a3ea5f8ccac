"""The production model, and both servers running on free ports against a fresh database."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from actions.db.migrate import upgrade
from actions.db.session import make_engine, make_sessionmaker
from actions.launcher import running_servers
from actions.services.demo import load_demo
from actions.settings import PROJECT_ROOT
from actions.training import train

TEST_DIR = PROJECT_ROOT / "var" / "test"


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
def server_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'helpline.db'}"
    engine = make_engine(url)
    upgrade(engine)
    load_demo(make_sessionmaker(engine))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def action_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def action_url(action_port: int) -> str:
    """The action server of `rasa_url` (its /health tells the Telegram front end whether actions can run)."""
    return f"http://localhost:{action_port}"


@pytest.fixture(scope="session")
def rasa_url(
    test_model: Path, server_db: str, action_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    rasa_port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=server_db,
        RASA_TELEMETRY_ENABLED="false",
    )
    with running_servers(
        test_model,
        rasa_port=rasa_port,
        action_port=action_port,
        env=env,
        log_dir=tmp_path_factory.mktemp("logs"),
    ) as url:
        yield url
