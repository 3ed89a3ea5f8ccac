"""The REST channel (`/webhooks/rest/webhook`), with a clear reply when a store is down and no message text in logs.

Rasa's own REST channel answers `200 []` when handling a message fails (the villager hears nothing) and logs the
failure with the message text, which can hold a 身份证号. Here:

- the tracker store or the lock store unreachable (the database restarting, Redis gone): `503` with a reply that
  says nothing was recorded and to send the message again in a few minutes. Nothing of the conversation is lost:
  the message was not processed, and the tracker still holds every earlier answer (see `no_fail_safe` below);
- any other failure: `500` with an apology and the helpline's number to call;
- the log line names the sender's hash and the exception's type, never the text.

credentials.yml names this class; its `name()` is still "rest", so the URL is unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import re
from asyncio import CancelledError
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from rasa.core.lock_store import LockError
from rasa.utils.endpoints import bool_arg
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

UNAVAILABLE = "系统的数据库暂时连不上，您刚才这句话没有记下。\n您前面填好的内容都还在，请过几分钟把这句话再发一次。"
FAILED = "抱歉，系统出了点问题，这句话没有处理成。请稍后再发一次；着急的话请打村委会或乡镇的电话。"


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [DBAPIError, LockError, ConnectionError, TimeoutError]
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # pragma: no cover - redis comes with rasa
        pass
    return tuple(errors)


UNAVAILABLE_ERRORS = _unavailable_errors()


def is_unavailable(error: BaseException) -> bool:
    """A store that cannot be reached now (it may come back), as opposed to a fault in the code."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UNAVAILABLE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


BAD_REQUEST = '请求体应是 JSON: {"sender": "…", "message": "…", "metadata": {…}(可省)}'
# What a message may not carry into the bot: lone surrogates (valid JSON escapes, not text), control characters
# other than tab and newline, zero-width spaces, and the bidirectional overrides and marks that make a summary read
# other than it is. (The zero-width joiner stays: emoji sequences need it.)
_SURROGATES = re.compile("[\ud800-\udfff]")
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2060\u202a-\u202e\u2066-\u2069\ufeff]")
PAYLOAD_MAX_DEPTH = 32  # the bot's own buttons nest 2 deep; Rasa's payload parser recurses without a limit


def well_formed(body: Any) -> bool:
    """A JSON object with a sender (text or number), a message (text) and, if any, metadata (an object)."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("sender"), str | int)
        and not isinstance(body.get("sender"), bool)
        and isinstance(body.get("message"), str)
        and isinstance(body.get("metadata") or {}, dict)
    )


def clean_text(text: str) -> str:
    """The message as the bot should read it (the reasons above); a payload nested deeper than any button's is
    read as plain text, without its slash (the NLU's normaliser would turn a full-width one back)."""
    text = _INVISIBLE.sub("", _SURROGATES.sub("\ufffd", text.replace("\r\n", "\n")))
    if text.lstrip().startswith("/") and _depth(text) > PAYLOAD_MAX_DEPTH:
        text = text.lstrip()[1:]
    return text


def _depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def sender_tag(sender_id: str) -> str:
    return hashlib.sha256(sender_id.encode()).hexdigest()[:10]


def failure_reply(sender_id: str, error: BaseException) -> tuple[int, list[dict[str, Any]]]:
    """The status and the reply for a message whose handling failed."""
    if is_unavailable(error):
        logger.warning("message from %s not handled: a store is unavailable (%s)", sender_tag(sender_id),
                       type(error).__name__)  # fmt: skip
        return 503, [{"recipient_id": sender_id, "text": UNAVAILABLE}]
    logger.error("message from %s not handled: %s", sender_tag(sender_id), type(error).__name__,
                 exc_info=(type(error), error, error.__traceback__))  # fmt: skip
    return 500, [{"recipient_id": sender_id, "text": FAILED}]


class RestInput(RasaRestInput):
    """Rasa's REST channel with the failure handling above."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> Any:
            try:
                body = request.json
            except Exception:  # sanic raises its own error for a body that is not JSON
                body = None
            if not well_formed(body):
                return response.json({"error": BAD_REQUEST}, status=400)
            sender_id = await self._extract_sender(request)
            text = clean_text(str(body["message"]))
            input_channel = self._extract_input_channel(request)
            metadata = self.get_metadata(request)
            if bool_arg(request, "stream", default=False):
                return response.stream(
                    self.stream_response(on_new_message, text, sender_id, input_channel, metadata),
                    content_type="text/event-stream",
                )
            collector = CollectingOutputChannel()
            message = UserMessage(text, collector, sender_id, input_channel=input_channel, metadata=metadata)
            try:
                await on_new_message(message)
            except CancelledError:
                logger.warning("message from %s timed out", sender_tag(str(sender_id)))
                return response.json([{"recipient_id": sender_id, "text": FAILED}], status=503)
            except Exception as error:
                status, reply = failure_reply(str(sender_id), error)
                return response.json(reply, status=status)
            return response.json(collector.messages)

        return webhook
