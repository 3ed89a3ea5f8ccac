"""Logging for the Telegram front end: the bot token never reaches a log line.

The token is part of every Bot API URL, and URLs turn up in library log lines and in exception messages
(httpx errors name the URL). A filter on every root handler replaces the token, in the message and in the
formatted traceback, with `<token>`.
"""

from __future__ import annotations

import logging

from actions.logs import configure_logging


class RedactToken(logging.Filter):
    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<token>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install(token: str, *more_secrets: str, level: str = "INFO") -> RedactToken:
    """Configure logging (actions.logs) and put the redacting filter on every root handler."""
    configure_logging(level)
    redact = RedactToken(token, *more_secrets)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactToken) for f in handler.filters):
            handler.addFilter(redact)
    # PTB logs each request and its data at DEBUG; keep its network chatter at INFO and above.
    logging.getLogger("telegram.request").setLevel(logging.INFO)
    return redact
