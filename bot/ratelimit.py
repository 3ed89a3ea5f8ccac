"""Sending within Telegram's limits: about 30 messages a second overall and one a second per chat, and a 429's
`retry_after` honoured (the request waits, then is sent again)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

logger = logging.getLogger(__name__)

# Bot API methods that put a message into a chat; the per-chat spacing applies to these only.
SENDING = frozenset({"sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "copyMessage", "forwardMessage"})


def retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the attribute will become a timedelta
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class RateLimiter(BaseRateLimiter[int]):
    """Spaces sends: `overall_per_second` across all chats and `per_chat_interval` seconds within one chat.

    A 429 answer is waited out (its `retry_after`, plus a little) and the request is sent again, up to
    `max_retries` times; every request waits while any 429 is being waited out, as Telegram asks.
    """

    def __init__(self, overall_per_second: float = 30.0, per_chat_interval: float = 1.0, max_retries: int = 5) -> None:
        self.overall_interval = 1.0 / overall_per_second
        self.per_chat_interval = per_chat_interval
        self.max_retries = max_retries
        self._overall_lock = asyncio.Lock()
        self._overall_next = 0.0
        self._chat_next: dict[str, float] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._paused_until = 0.0

    async def initialize(self) -> None:
        self._overall_lock = asyncio.Lock()  # bound to the running loop

    async def shutdown(self) -> None:
        self._chat_locks.clear()
        self._chat_next.clear()

    async def _wait_overall(self) -> None:
        async with self._overall_lock:
            now = time.monotonic()
            start = max(now, self._overall_next, self._paused_until)
            self._overall_next = start + self.overall_interval
        if start > now:
            await asyncio.sleep(start - now)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat = str(data.get("chat_id", "")) if endpoint in SENDING else ""
        lock = self._chat_locks.setdefault(chat, asyncio.Lock()) if chat else None
        for attempt in range(self.max_retries + 1):
            if lock is not None:
                async with lock:  # one send at a time per chat, spaced
                    wait = self._chat_next.get(chat, 0.0) - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    self._chat_next[chat] = time.monotonic() + self.per_chat_interval
            await self._wait_overall()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == self.max_retries:
                    raise
                pause = retry_seconds(exc) + 0.1
                self._paused_until = max(self._paused_until, time.monotonic() + pause)
                logger.warning("Telegram asked to wait %.1f s (%s); retrying", pause, endpoint)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")
