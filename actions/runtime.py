"""Per-process singletons (settings, engine, sessionmaker, templates), built once at start-up."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from jinja2 import Environment
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from actions import crypto
from actions.db.session import make_engine, make_sessionmaker
from actions.db.types import check_data_key
from actions.rendering import make_environment
from actions.services import follow_up
from actions.services.insurance import Terms
from actions.services.knowledge import KnowledgeBase, load_knowledge_base
from actions.services.triage import MonitoringRules
from actions.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker
    templates: Environment
    knowledge: KnowledgeBase
    insurance_terms: Terms  # 齐惠保's figures, checked once at start-up
    monitoring: MonitoringRules  # triage thresholds and deadlines (data/monitoring.yml)


_runtime: Runtime | None = None
_init_lock = threading.Lock()


def init(settings: Settings | None = None) -> Runtime:
    """Build the process's runtime; called from the action server's start-up hook and the CLI.

    Raises `crypto.DataKeyError` when the data key is missing (HELPLINE_DATA_KEY, required with DATABASE_URL), and
    `crypto.DecryptionError` when the database's 身份证号 were encrypted with another key.
    """
    global _runtime
    settings = settings or Settings.from_env()
    crypto.configure(crypto.DataCipher(crypto.load_secret(settings.database_url)))
    engine = make_engine(settings.database_url)
    try:
        check_data_key(engine)
    except crypto.DecryptionError:
        engine.dispose()
        crypto.configure(None)
        raise
    knowledge = load_knowledge_base()
    _runtime = Runtime(
        settings,
        engine,
        make_sessionmaker(engine),
        make_environment(),
        knowledge,
        Terms.from_knowledge_base(knowledge),
        MonitoringRules.load(settings.monitoring_config),
    )
    follow_up.warm_up()
    logger.info("runtime ready (database backend: %s)", engine.dialect.name)
    return _runtime


def get() -> Runtime:
    """The process's runtime. `python -m actions.server` builds it at start-up; under another server (the stock
    `rasa run actions`, which knows no start-up hook of ours) the first action builds it from the environment."""
    if _runtime is None:
        with _init_lock:
            if _runtime is None:
                init()
    assert _runtime is not None
    return _runtime


def reset() -> None:
    """Dispose of the runtime (tests and shutdown), and forget the data cipher init() configured."""
    global _runtime
    if _runtime is not None:
        _runtime.engine.dispose()
        crypto.configure(None)
    _runtime = None
