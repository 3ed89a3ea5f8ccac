"""Logging set-up shared by the processes: no message text or personal data at INFO."""

from __future__ import annotations

import logging


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs request URLs, which for Telegram contain the bot token.
    for noisy in ("httpx", "httpcore", "sanic.access", "jieba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
