"""A model trained with a short config, and both servers running on free ports against a fresh database."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from actions.db.migrate import upgrade
from actions.db.session import make_engine, make_sessionmaker
from actions.launcher import running_servers
from actions.services.demo import load_demo
from actions.settings import PROJECT_ROOT
from actions.training import train

TEST_DIR = PROJECT_ROOT / "var" / "test"
TEST_EPOCHS = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def test_config() -> Path:
    """config.yml with fewer DIET epochs; everything else as in production."""
    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    for component in config["pipeline"]:
        if component["name"] == "DIETClassifier":
            component["epochs"] = TEST_EPOCHS
    TEST_DIR.mkdir(parents=True, exist_ok=True)
    path = TEST_DIR / "config.test.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


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
def rasa_url(test_model: Path, server_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    action_port, rasa_port = free_port(), free_port()
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
