"""Typed settings read from environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_database_url() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'var' / 'helpline.db'}"


@dataclass(frozen=True)
class Settings:
    """Runtime configuration; every field has an environment variable."""

    database_url: str
    rasa_url: str
    action_port: int
    rasa_port: int
    log_level: str
    handoff_contact: str
    insurance_year: int | None = None  # the year 齐惠保 enrollments are for; None: the current calendar year
    monitoring_config: Path = PROJECT_ROOT / "data" / "monitoring.yml"  # triage thresholds, deadlines
    action_workers: int = 1  # Sanic worker processes of the action server
    rasa_workers: int = 1  # of the Rasa server; more than 1 needs TRACKER_STORE_URL and LOCK_STORE_URL

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("DATABASE_URL") or _default_database_url(),
            rasa_url=os.environ.get("RASA_URL", "http://localhost:5005"),
            action_port=int(os.environ.get("ACTION_PORT", "5055")),
            rasa_port=int(os.environ.get("RASA_PORT", "5005")),
            log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
            handoff_contact=os.environ.get("HANDOFF_CONTACT", ""),
            insurance_year=int(os.environ["INSURANCE_YEAR"]) if os.environ.get("INSURANCE_YEAR") else None,
            monitoring_config=Path(os.environ.get("MONITORING_CONFIG") or PROJECT_ROOT / "data" / "monitoring.yml"),
            action_workers=int(os.environ.get("ACTION_WORKERS") or 1),
            rasa_workers=int(os.environ.get("RASA_WORKERS") or 1),
        )
