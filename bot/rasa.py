"""The way to Rasa: its REST channel (`/webhooks/rest/webhook`).

REST rather than running Rasa's agent inside this process: Rasa 3.6 and python-telegram-bot want different event
loops and libraries (Sanic vs httpx), the model takes a minute and gigabytes to load, and the REST channel is the
interface everything else already uses (console chat, integration tests). The bot stays a small process that can
restart in a second, and Rasa can be scaled or restarted behind it.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

logger = logging.getLogger(__name__)


class RasaUnavailable(Exception):
    """Rasa, or the action server behind it, cannot answer now; the message should be sent again later."""


class RasaClient:
    def __init__(self, rasa_url: str, action_url: str | None = None, timeout: float = 120.0) -> None:
        self.rasa_url = rasa_url.rstrip("/")
        self.action_url = action_url.rstrip("/") if action_url else None
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=5.0))

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """Rasa's reply to one message: a list of parts (text, buttons, image, custom)."""
        try:
            response = await self._client.post(
                f"{self.rasa_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": text, "metadata": metadata},
            )
        except httpx.HTTPError as exc:
            raise RasaUnavailable(type(exc).__name__) from None
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise RasaUnavailable(f"HTTP {response.status_code}")
        response.raise_for_status()
        parts = response.json()
        if not isinstance(parts, list):
            raise RasaUnavailable("unexpected reply")
        if not parts and not await self.actions_healthy():
            # Rasa answers 200 with nothing when a custom action could not be reached.
            raise RasaUnavailable("action server down")
        return [p for p in parts if isinstance(p, dict)]

    async def actions_healthy(self) -> bool:
        if self.action_url is None:
            return True
        try:
            response = await self._client.get(f"{self.action_url}/health", timeout=5.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200
