"""Rasa's reply parts as Telegram messages: text (HTML), inline keyboards, photos and documents."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.constants import MessageLimit, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from actions.services.answers import split_message
from bot.console import to_plain

logger = logging.getLogger(__name__)

T = TypeVar("T")
SHORT_TITLE = 8  # buttons with titles this short go two to a row


def decode_data_url(url: str) -> bytes | None:
    """The bytes of a `data:…;base64,` URL; None when it is not one or does not decode."""
    if not url.startswith("data:") or ";base64," not in url:
        return None
    try:
        return base64.b64decode(url.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        return None


def keyboard(buttons: list[dict[str, Any]], data_for: Callable[[str], str]) -> InlineKeyboardMarkup | None:
    """An inline keyboard; each payload goes through `data_for` (a short key when it is over 64 bytes)."""
    usable = [b for b in buttons if str(b.get("title") or "").strip() and str(b.get("payload") or "").strip()]
    if not usable:
        return None
    made = [InlineKeyboardButton(str(b["title"])[:64], callback_data=data_for(str(b["payload"]))) for b in usable]
    per_row = 2 if all(len(str(b["title"])) <= SHORT_TITLE for b in usable) else 1
    return InlineKeyboardMarkup([made[i : i + per_row] for i in range(0, len(made), per_row)])


class Undeliverable(Exception):
    """A message could not be sent: `permanent` when trying again cannot help (the user blocked the bot)."""

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


async def with_retries(send: Callable[[], Awaitable[T]], what: str, attempts: int = 3) -> T:
    """Send, retrying network failures a few times (429s are waited out by the rate limiter)."""
    for attempt in range(1, attempts + 1):
        try:
            return await send()
        except Forbidden as exc:
            raise Undeliverable(f"Forbidden: {exc.message[:120]}", permanent=True) from None
        except BadRequest:
            raise
        except RetryAfter as exc:  # the rate limiter gave up waiting
            if attempt == attempts:
                raise Undeliverable("RetryAfter", permanent=False) from exc
        except NetworkError as exc:
            logger.warning("sending %s failed (%s), attempt %d of %d", what, type(exc).__name__, attempt, attempts)
            if attempt == attempts:
                raise Undeliverable(type(exc).__name__, permanent=False) from None
            await asyncio.sleep(attempt)
    raise AssertionError("unreachable")


class Delivery:
    """Sends one chat's reply parts in order."""

    def __init__(self, bot: Bot, data_for: Callable[[str], Awaitable[str]], choose: str = "") -> None:
        self.bot = bot
        self.data_for = data_for
        self.choose = choose  # the text for buttons that come without one (Telegram needs a text)

    async def markup(self, buttons: list[dict[str, Any]]) -> InlineKeyboardMarkup | None:
        mapped = {str(b.get("payload") or ""): await self.data_for(str(b.get("payload") or "")) for b in buttons}
        return keyboard(buttons, lambda payload: mapped[payload])

    async def text(self, chat_id: int | str, text: str, buttons: list[dict[str, Any]] | None = None) -> None:
        markup = await self.markup(buttons or [])
        pieces = split_message(text, MessageLimit.MAX_TEXT_LENGTH)
        for i, piece in enumerate(pieces):
            reply_markup = markup if i == len(pieces) - 1 else None
            await self._send_text(chat_id, piece, reply_markup)

    async def _send_text(self, chat_id: int | str, piece: str, reply_markup: InlineKeyboardMarkup | None) -> None:
        async def as_html() -> Any:
            return await self.bot.send_message(chat_id, piece, parse_mode=ParseMode.HTML, reply_markup=reply_markup)

        async def as_plain() -> Any:
            plain = to_plain(piece)[: MessageLimit.MAX_TEXT_LENGTH]
            return await self.bot.send_message(chat_id, plain, reply_markup=reply_markup)

        try:
            await with_retries(as_html, "a message")
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                raise Undeliverable("BadRequest: chat not found", permanent=True) from None
            # Text Telegram cannot parse as HTML still reaches the user, as plain text.
            logger.warning("Telegram refused a message (%s); sending it as plain text", exc.message[:80])
            await with_retries(as_plain, "a message")

    async def parts(self, chat_id: int | str, parts: list[dict[str, Any]]) -> None:
        for part in parts:
            text = str(part.get("text") or "")
            buttons = [b for b in part.get("buttons") or [] if isinstance(b, dict)]
            if text or buttons:
                await self.text(chat_id, text or self.choose, buttons)
            if part.get("image"):
                await self.image(chat_id, str(part["image"]))
            custom = part.get("custom")
            if isinstance(custom, dict) and isinstance(custom.get("document"), dict):
                await self.document(chat_id, custom["document"])

    async def image(self, chat_id: int | str, image: str) -> None:
        data = decode_data_url(image)
        if data is not None:
            photo: bytes | str = data
        elif image.startswith(("https://", "http://")):
            photo = image
        else:
            logger.warning("an image part was neither a data URL nor a web address; skipped")
            return
        await with_retries(lambda: self.bot.send_photo(chat_id, photo), "a photo")

    async def document(self, chat_id: int | str, document: dict[str, Any]) -> None:
        try:
            data = base64.b64decode(str(document.get("data") or ""), validate=True)
        except (binascii.Error, ValueError):
            logger.warning("a document part did not decode; skipped")
            return
        filename = str(document.get("filename") or "file")
        await with_retries(lambda: self.bot.send_document(chat_id, InputFile(data, filename=filename)), "a document")
