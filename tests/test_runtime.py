"""The runtime is built at the action server's start, or by the first action under a server without our hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions import runtime
from actions.db.migrate import upgrade
from actions.db.session import make_engine


def test_the_first_use_builds_the_runtime_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'lazy.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    runtime.reset()
    try:
        built = runtime.get()
        assert runtime.get() is built
        assert str(built.engine.url) == url
    finally:
        runtime.reset()
