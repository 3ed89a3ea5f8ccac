"""The Telegram front end's settings, from environment variables only (the token is a secret)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_API_URL = "https://api.telegram.org/bot"
SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what Telegram accepts as a webhook secret_token


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable, never its value."""


@dataclass(frozen=True)
class BotSettings:
    token: str
    rasa_url: str = "http://localhost:5005"
    action_url: str = "http://localhost:5055"  # only its /health is used, to tell an action-server outage
    api_url: str = DEFAULT_API_URL  # TELEGRAM_API_URL: any Bot API server (a local one, a test stand-in)
    webhook_url: str | None = None  # set: webhook mode; unset: long polling
    webhook_secret: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    per_chat_interval: float = 1.0  # seconds between two messages to one chat
    overall_per_second: float = 30.0
    outbox_interval: float = 5.0  # seconds between looks at the notification outbox

    @property
    def webhook_path(self) -> str:
        return urlsplit(self.webhook_url or "").path or "/telegram"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BotSettings:
        env = dict(os.environ if environ is None else environ)
        token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
        if not token:
            raise SettingsError("TELEGRAM_BOT_TOKEN 没有设置(向 @BotFather 申请机器人后得到)")
        webhook_url = env.get("TELEGRAM_WEBHOOK_URL", "").strip() or None
        secret = env.get("TELEGRAM_WEBHOOK_SECRET", "").strip() or None
        if webhook_url:
            if not webhook_url.startswith("https://") and not env.get("TELEGRAM_API_URL"):
                raise SettingsError("TELEGRAM_WEBHOOK_URL 必须是 https:// 地址(Telegram 只向 HTTPS 推送)")
            if not secret or not SECRET.match(secret):
                raise SettingsError("webhook 模式需要 TELEGRAM_WEBHOOK_SECRET:1–256 个字母、数字、_ 或 -")
        rasa_port = env.get("RASA_PORT", "5005")
        action_port = env.get("ACTION_PORT", "5055")
        return cls(
            token=token,
            rasa_url=env.get("RASA_URL", f"http://localhost:{rasa_port}").rstrip("/"),
            action_url=env.get("ACTION_SERVER_URL", f"http://localhost:{action_port}").rstrip("/"),
            api_url=env.get("TELEGRAM_API_URL", "").strip() or DEFAULT_API_URL,
            webhook_url=webhook_url,
            webhook_secret=secret,
            webhook_listen=env.get("TELEGRAM_WEBHOOK_LISTEN", "0.0.0.0"),
            webhook_port=int(env.get("TELEGRAM_WEBHOOK_PORT", "8443")),
            per_chat_interval=float(env.get("TELEGRAM_PER_CHAT_INTERVAL", "1.0")),
            overall_per_second=float(env.get("TELEGRAM_MESSAGES_PER_SECOND", "30")),
            outbox_interval=float(env.get("TELEGRAM_OUTBOX_INTERVAL", "5")),
        )
