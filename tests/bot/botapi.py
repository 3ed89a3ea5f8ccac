"""A local stand-in of the Telegram Bot API for end-to-end tests.

Point the real python-telegram-bot at it and play the villagers' side from the test::

    with BotApiStandIn() as api:
        application = Application.builder().token(api.token).base_url(api.base_url).build()
        ...  # run the bot (polling, or a webhook registered with setWebhook)
        api.send_text(42, "/start")
        api.wait_for(lambda: api.texts_to(42))
        message = api.sent_to(42)[-1]
        api.press_button(42, api.buttons_of(message)[0][1])

The server is aiohttp in a background thread with its own event loop, listening on 127.0.0.1 and a free port.
PTB builds request URLs as ``base_url + token + "/" + method`` and POSTs every call: parameters are form fields
whose values are JSON-encoded, except plain strings which are sent as they are (so ``chat_id`` arrives as
``"123"`` and ``reply_markup`` as a JSON string); when a call uploads files, the request is
``multipart/form-data`` and every file is a part named after its parameter, with a filename and a MIME type.

Answers have the Bot API's shapes (https://core.telegram.org/bots/api) and errors its status codes and
descriptions, so PTB raises the same exceptions it raises against Telegram: 400 ``BadRequest``,
401/404 ``InvalidToken``, 409 ``Conflict``, 429 ``RetryAfter``.

Methods called from test code (``send_text``, ``press_button``, ``sent_to``, ``wait_for`` ...) are thread-safe.
The blocking ones (``wait_for``, ``post_to_webhook``) must not be called from an event loop that the bot or a
webhook receiver runs in; use ``wait_for_async`` / ``post_to_webhook_async`` there.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import enum
import html
import itertools
import json
import mimetypes
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

__all__ = [
    "BOT_USER",
    "TEST_TOKEN",
    "BotApiStandIn",
    "EntityParseError",
    "Secret",
    "parse_html",
]

Json = dict[str, Any]
T = TypeVar("T")

TEST_TOKEN = "1000:AAHelplineStandInTokenNotARealToken01"
"""A token in Telegram's format whose bot id matches :data:`BOT_USER`."""

BOT_USER: Json = {
    "id": 1000,
    "is_bot": True,
    "first_name": "乡村振兴热线",
    "username": "helpline_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
"""What getMe answers."""

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
MAX_POLL_TIMEOUT = 50.0
DEFAULT_FIRST_NAME = "村民"

# Parameters whose values are strings in the Bot API. PTB sends strings without JSON-encoding them, so these
# are kept as they arrive: a text "123" or "true" must not turn into a number or a boolean.
_STRING_PARAMS = frozenset(
    {
        "action",
        "animation",
        "audio",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "description",
        "document",
        "emoji",
        "inline_message_id",
        "ip_address",
        "language_code",
        "message_effect_id",
        "name",
        "parse_mode",
        "photo",
        "short_description",
        "sticker",
        "text",
        "thumbnail",
        "title",
        "url",
        "secret_token",
        "video",
        "video_note",
        "voice",
    }
)

_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

_INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)

_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
_WRONG_FILE = "wrong file identifier/HTTP URL specified"
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_BOT_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")


class Secret(enum.Enum):
    """``Secret.REGISTERED``, the default of ``post_to_webhook(secret=...)``: the secret given to setWebhook."""

    REGISTERED = "the registered secret"


# --------------------------------------------------------------------------------------------------------------
# HTML parse mode
# --------------------------------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """Text that Telegram would refuse with "can't parse entities: ..."."""


_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([A-Za-z][A-Za-z0-9]{0,31}));")
_TAG_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_END_TAG_RE = re.compile(r"</([A-Za-z][A-Za-z0-9-]*)\s*>")
_ATTRIBUTE_RE = re.compile(r"""\s+([A-Za-z][A-Za-z0-9_-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


@dataclass
class _OpenTag:
    name: str
    attributes: dict[str, str]
    offset: int  # in UTF-16 code units of the plain text, as entity offsets are


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> tuple[str, list[Json]]:
    """The plain text and MessageEntity dicts of a text in Telegram's HTML parse mode.

    Follows https://core.telegram.org/bots/api#html-style: only the tags b strong i em u ins s strike del
    a(href) code pre tg-spoiler span(class="tg-spoiler") blockquote; the named entities &lt; &gt; &amp; &quot;
    and numeric ones. A ``<`` or ``&`` that is not part of a tag or such an entity, an unknown tag, and an
    unclosed or mismatched tag raise :class:`EntityParseError` with a message like Telegram's (byte offsets
    count UTF-8 bytes). Entity offsets and lengths count UTF-16 code units, as in the Bot API.
    """
    out: list[str] = []
    length = 0  # UTF-16 length of out
    stack: list[_OpenTag] = []
    entities: list[Json] = []

    def at(position: int) -> str:
        return f"at byte offset {len(text[:position].encode('utf-8'))}"

    i = 0
    while i < len(text):
        char = text[i]
        if char == "&":
            match = _HTML_ENTITY_RE.match(text, i)
            if match is None:
                raise EntityParseError(f'Character "&" must be escaped as "&amp;" {at(i)}')
            decimal, hexadecimal, name = match.groups()
            if name is not None:
                if name not in _NAMED_ENTITIES:
                    raise EntityParseError(f'Unsupported HTML entity "&{name};" {at(i)}')
                decoded = _NAMED_ENTITIES[name]
            else:
                code = int(decimal) if decimal is not None else int(hexadecimal, 16)
                if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise EntityParseError(f"Invalid character reference {at(i)}")
                decoded = chr(code)
            out.append(decoded)
            length += _utf16_length(decoded)
            i = match.end()
        elif char == "<" and text.startswith("</", i):
            end = _END_TAG_RE.match(text, i)
            if end is None:
                raise EntityParseError(f"Unclosed end tag {at(i)}")
            name = end.group(1).lower()
            if not stack:
                raise EntityParseError(f"Unexpected end tag {at(i)}")
            tag = stack.pop()
            if tag.name != name:
                raise EntityParseError(f'Unmatched end tag {at(i)}, expected "</{tag.name}>", found "</{name}>"')
            _close_tag(tag, length, stack, entities)
            i = end.end()
        elif char == "<":
            start = _TAG_NAME_RE.match(text, i + 1)
            if start is None:
                raise EntityParseError(f"Empty tag name {at(i)}")
            name = start.group().lower()
            if name not in _ENTITY_TYPES:
                raise EntityParseError(f'Unsupported start tag "{name}" {at(i)}')
            j = start.end()
            attributes: dict[str, str] = {}
            while attribute := _ATTRIBUTE_RE.match(text, j):
                key, double, single, bare = attribute.groups()
                value = next((v for v in (double, single, bare) if v is not None), "")
                attributes[key.lower()] = html.unescape(value)
                j = attribute.end()
            while j < len(text) and text[j].isspace():
                j += 1
            if j >= len(text) or text[j] != ">":
                raise EntityParseError(f"Unclosed start tag {at(i)}")
            if name == "span" and attributes.get("class") != "tg-spoiler":
                raise EntityParseError(f'Tag "span" must have class "tg-spoiler" {at(i)}')
            stack.append(_OpenTag(name, attributes, length))
            i = j + 1
        else:
            out.append(char)
            length += 2 if ord(char) > 0xFFFF else 1
            i += 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(out), entities


def _close_tag(tag: _OpenTag, end: int, stack: list[_OpenTag], entities: list[Json]) -> None:
    """Adds the entity of a closed tag, if it covers any text."""
    if tag.name == "code" and stack and stack[-1].name == "pre":
        language = tag.attributes.get("class", "")
        if language.startswith("language-"):  # <pre><code class="language-x"> is one pre entity
            stack[-1].attributes["language"] = language.removeprefix("language-")
            return
    if end == tag.offset:
        return
    entity: Json = {"type": _ENTITY_TYPES[tag.name], "offset": tag.offset, "length": end - tag.offset}
    if tag.name == "a":
        if "href" not in tag.attributes:
            return
        entity["url"] = tag.attributes["href"]
    elif tag.name == "pre" and tag.attributes.get("language"):
        entity["language"] = tag.attributes["language"]
    elif tag.name == "blockquote" and "expandable" in tag.attributes:
        entity["type"] = "expandable_blockquote"
    entities.append(entity)


# --------------------------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------------------------


class _ApiError(Exception):
    """An error answer: HTTP status = error_code, as Telegram does."""

    def __init__(self, code: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> Json:
        body: Json = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


@dataclass
class _Described:
    """A successful result that Telegram answers with a description too (setWebhook, deleteWebhook)."""

    result: Any
    description: str


@dataclass
class _Upload:
    """A file part of a multipart/form-data request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class _Queued:
    update: Json
    delivered: bool = False

    @property
    def kind(self) -> str:
        return next((key for key in self.update if key != "update_id"), "")


@dataclass
class _Chat:
    next_message_id: int = 1
    messages: dict[int, Json] = field(default_factory=dict)


def _no_webhook() -> Json:
    """The ``webhook`` record while no webhook is set (keys named after setWebhook's parameters)."""
    return {
        "url": "",
        "secret_token": None,
        "allowed_updates": None,
        "max_connections": 40,
        "last_error_date": None,
        "last_error_message": None,
    }


def _decode_value(name: str, value: Any) -> Any:
    """A form value as the Bot API reads it: JSON when it parses, else the string (string parameters stay)."""
    if not isinstance(value, str) or name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _int_param(params: Json, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise _bad(f"wrong parameter {name} specified")
    return int(value)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1")) or value == 1


def _abbreviate(value: Any) -> Any:
    """Bytes shown as their size, for dumps."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {key: _abbreviate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_abbreviate(item) for item in value]
    return value


_CANONICAL_METHODS = (
    "getMe",
    "getUpdates",
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "sendChatAction",
    "answerCallbackQuery",
    "editMessageReplyMarkup",
    "editMessageText",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "setMyCommands",
    "deleteMyCommands",
    "getMyCommands",
    "close",
    "logOut",
)
_METHODS = {name.lower(): name for name in _CANONICAL_METHODS}


def _handler_name(method: str) -> str:
    return "_api_" + re.sub(r"(?<!^)(?=[A-Z])", "_", method).lower()


# --------------------------------------------------------------------------------------------------------------
# The stand-in
# --------------------------------------------------------------------------------------------------------------


class BotApiStandIn:
    """A Telegram Bot API server for one bot, plus the users' side of its chats.

    Records for assertions:

    * ``sent``: one dict per message the bot sent or edited successfully, with the keys method, chat_id, text,
      parse_mode, reply_markup (dict or None), photo (bytes when uploaded, else the URL / file_id), document
      (bytes or str), filename, caption, message_id and time (``time.monotonic()``); text is as the bot sent it
      (with its HTML), unset keys are None.
    * ``calls``: every request, as {"method", "params" (decoded; uploads as {"file_name", "mime_type",
      "file_size"}), "status" (HTTP status, None while a long poll waits), "time"}.
    * ``webhook``: what setWebhook registered, as {"url" ("" while none is set), "secret_token", "allowed_updates",
      "max_connections", "last_error_date", "last_error_message"}.
    * ``webhook_posts``: every POST to a webhook, as {"url", "update_id", "secret_token" (the header sent, or None),
      "status" (0 when the connection failed), "error", "time"}.
    """

    def __init__(
        self,
        token: str = TEST_TOKEN,
        *,
        host: str = "127.0.0.1",
        webhook_retry_delays: Iterable[float] = (0.1, 0.3, 1.0),
    ) -> None:
        """``webhook_retry_delays``: the pauses before each retry of a webhook POST answered with non-2xx."""
        self.token = token
        self.host = host
        self.port = 0
        self.url = ""
        self.base_url = ""
        self.bot_user: Json = dict(BOT_USER)
        self.webhook_retry_delays = tuple(webhook_retry_delays)
        self.sent: list[Json] = []
        self.calls: list[Json] = []
        self.webhook: Json = _no_webhook()
        self.webhook_posts: list[Json] = []

        self._lock = threading.RLock()
        self._updates: list[_Queued] = []
        self._next_update_id = 1
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._chats: dict[int, _Chat] = {}
        self._users: dict[int, Json] = {}
        self._files: dict[str, Json] = {}
        self._file_numbers = itertools.count(1)
        self._callback_numbers = itertools.count(1)
        self._callback_queries: set[str] = set()
        self._failures: dict[str, list[int]] = {}
        self._commands: dict[str, list[Json]] = {}

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._delivery: asyncio.Task[None] | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self._closing = False

    def __repr__(self) -> str:
        return f"<BotApiStandIn {self.url or 'stopped'} webhook={self.webhook['url']!r}>"

    # ----------------------------------------------------------------------------------------------------------
    # Life cycle
    # ----------------------------------------------------------------------------------------------------------

    def __enter__(self) -> BotApiStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> BotApiStandIn:
        """Starts serving in a background thread; returns when the port is open."""
        if self._thread is not None:
            raise RuntimeError("BotApiStandIn is already running")
        ready = threading.Event()
        errors: list[BaseException] = []
        self._closing = False
        self._thread = threading.Thread(target=self._serve, args=(ready, errors), name="BotApiStandIn", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=15):
            raise RuntimeError("BotApiStandIn did not start within 15 s")
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        """Ends pending long polls, stops the server and joins its thread. Records stay readable."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(self._begin_closing)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        self._thread = None
        self._loop = None

    def _serve(self, ready: threading.Event, errors: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_server())
        except BaseException as exc:
            errors.append(exc)
            ready.set()
            loop.close()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._stop_server())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _start_server(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("GET", "/bot{token}/{method}", self._handle)
        app.router.add_route("POST", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # handler_cancellation: a long poll whose client went away (PTB stopping) ends at once.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        await web.SockSite(runner, sock).start()
        self._runner = runner
        self.port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        self.base_url = f"{self.url}/bot"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self._delivery = asyncio.create_task(self._deliver_to_webhook())

    def _begin_closing(self) -> None:
        self._closing = True
        self._wake()

    async def _stop_server(self) -> None:
        self._closing = True
        self._wake()
        if self._delivery is not None:
            self._delivery.cancel()
            await asyncio.gather(self._delivery, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self._delivery = self._runner = self._session = None

    def _wake(self) -> None:
        """Lets long polls and the webhook delivery look at the queue again (on the server loop)."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _wake_threadsafe(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.current_thread() is self._thread:
            self._wake()
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing is waiting any more
            loop.call_soon_threadsafe(self._wake)

    async def _wait_for_change(self, timeout: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        finally:
            self._waiters.discard(waiter)

    def _submit(self, coroutine: Any) -> Future[Any]:
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise RuntimeError("BotApiStandIn is not running")
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("blocking BotApiStandIn call from its own event loop")
        return asyncio.run_coroutine_threadsafe(coroutine, loop)

    # ----------------------------------------------------------------------------------------------------------
    # HTTP
    # ----------------------------------------------------------------------------------------------------------

    async def _not_found(self, request: web.Request) -> web.Response:
        return self._json(_ApiError(404, "Not Found").body(), 404)

    @staticmethod
    def _json(body: Json, status: int = 200) -> web.Response:
        return web.Response(text=json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")

    async def _handle(self, request: web.Request) -> web.Response:
        method = _METHODS.get(request.match_info["method"].lower())
        entry: Json = {
            "method": method or request.match_info["method"],
            "params": {},
            "status": None,
            "time": time.monotonic(),
        }
        with self._lock:
            self.calls.append(entry)
        try:
            params, uploads = await self._read_params(request)
            entry["params"] = {
                **params,
                **{
                    name: {"file_name": up.filename, "mime_type": up.content_type, "file_size": len(up.data)}
                    for name, up in uploads.items()
                },
            }
            if request.match_info["token"] != self.token:
                raise _ApiError(401, "Unauthorized")
            if method is None:
                raise _ApiError(404, "Not Found")
            self._take_failure(method)
            result = await getattr(self, _handler_name(method))(params, uploads)
        except _ApiError as error:
            entry["status"] = error.code
            return self._json(error.body(), error.code)
        except Exception as error:  # a bug in the stand-in: say so in the Bot API's shape (PTB: NetworkError)
            entry["status"] = 500
            return self._json(_ApiError(500, f"Internal Server Error: stand-in failed: {error!r}").body(), 500)
        entry["status"] = 200
        if isinstance(result, _Described):
            return self._json({"ok": True, "result": result.result, "description": result.description})
        return self._json({"ok": True, "result": result})

    async def _read_params(self, request: web.Request) -> tuple[Json, dict[str, _Upload]]:
        """Query string plus a urlencoded, multipart or JSON body; form values decoded as JSON when they parse."""
        params: Json = {name: _decode_value(name, value) for name, value in request.query.items()}
        uploads: dict[str, _Upload] = {}
        if request.method != "POST" or not request.can_read_body:
            return params, uploads
        if request.content_type == "application/json":
            try:
                body = json.loads(await request.text())
            except ValueError:
                raise _bad("can't parse JSON object") from None
            if not isinstance(body, dict):
                raise _bad("JSON object expected")
            params.update({name: _decode_value(name, value) for name, value in body.items()})
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    with value.file:
                        data = value.file.read()
                    content_type = value.content_type or "application/octet-stream"
                    uploads[name] = _Upload(value.filename or name, content_type, data)
                else:
                    params[name] = _decode_value(name, value)
        return params, uploads

    def _take_failure(self, method: str) -> None:
        with self._lock:
            pending = self._failures.get(method.lower())
            if not pending:
                return
            retry_after = pending.pop(0)
        raise _ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})

    # ----------------------------------------------------------------------------------------------------------
    # Bot API methods (run on the server loop; each takes the decoded parameters and the uploaded files)
    # ----------------------------------------------------------------------------------------------------------

    async def _api_get_me(self, params: Json, uploads: dict[str, _Upload]) -> Json:
        return dict(self.bot_user)

    async def _api_get_updates(self, params: Json, uploads: dict[str, _Upload]) -> list[Json]:
        offset = _int_param(params, "offset", 0) or 0
        limit = min(max(_int_param(params, "limit", 100) or 100, 1), 100)
        timeout_value = params.get("timeout") or 0
        if isinstance(timeout_value, bool) or not isinstance(timeout_value, int | float):
            raise _bad("wrong parameter timeout specified")
        timeout = min(max(float(timeout_value), 0.0), MAX_POLL_TIMEOUT)
        with self._lock:
            if self.webhook["url"]:
                raise _ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            self._set_allowed_updates(params)
            self._poll_generation += 1
            generation = self._poll_generation
            self._confirm(offset)
        self._wake()  # an earlier long poll learns that it was superseded
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._closing:
                    return []
                if self.webhook["url"]:
                    raise _ApiError(409, "Conflict: terminated by setWebhook request")
                if self._poll_generation != generation:
                    raise _ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                batch = self._deliverable()[:limit]
                if batch:
                    for queued in batch:
                        queued.delivered = True
                    return [copy.deepcopy(queued.update) for queued in batch]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await self._wait_for_change(remaining)

    def _confirm(self, offset: int) -> None:
        """What an offset does (under the lock).

        A negative offset keeps only the last -offset updates. A positive one forgets the updates already
        delivered whose update_id < offset: for ids the stand-in assigns this is exactly Telegram's rule, and an
        update pushed later with an old update_id is still delivered once (tests use that to repeat an update).
        """
        if offset < 0:
            del self._updates[: max(len(self._updates) + offset, 0)]
        elif offset > 0:
            self._updates = [q for q in self._updates if not (q.delivered and q.update["update_id"] < offset)]

    def _deliverable(self) -> list[_Queued]:
        """The queue, after forgetting updates of types that allowed_updates excludes (under the lock)."""
        if self._allowed_updates:
            self._updates = [q for q in self._updates if q.kind in self._allowed_updates]
        return self._updates

    def _set_allowed_updates(self, params: Json) -> None:
        allowed = params.get("allowed_updates")
        if allowed is None or allowed == "":
            return
        if not isinstance(allowed, list) or not all(isinstance(kind, str) for kind in allowed):
            raise _bad("can't parse allowed updates")
        self._allowed_updates = list(allowed) or None

    async def _api_send_message(self, params: Json, uploads: dict[str, _Upload]) -> Json:
        chat_id = self._chat_id(params)
        text = params.get("text")
        text = "" if text is None else str(text)
        plain, entities = self._format(text, params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise _bad("message text is empty")
        if len(plain) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        markup = self._reply_markup(params)
        content: Json = {"text": plain}
        if entities:
            content["entities"] = entities
        with self._lock:  # message_id order = order in sent
            message = self._bot_message(chat_id, content, markup)
            self._record_sent(
                "sendMessage", chat_id, message, text=text, parse_mode=params.get("parse_mode"), reply_markup=markup
            )
        return message

    async def _api_send_photo(self, params: Json, uploads: dict[str, _Upload]) -> Json:
        chat_id = self._chat_id(params)
        photo = self._input_file(params, uploads, "photo")
        caption_content = self._caption(params)
        markup = self._reply_markup(params)
        if isinstance(photo, _Upload):
            if not photo.data:
                raise _bad("file must be non-empty")
            sizes = self._register_photo(len(photo.data), 800, 800)
            recorded: bytes | str = photo.data
        else:
            sizes = self._known_file(photo, "photo")["sizes"] if not _is_url(photo) else self._register_photo(0, 0, 0)
            recorded = photo
        with self._lock:
            message = self._bot_message(chat_id, {"photo": sizes, **caption_content}, markup)
            self._record_sent(
                "sendPhoto",
                chat_id,
                message,
                photo=recorded,
                filename=photo.filename if isinstance(photo, _Upload) else None,
                caption=params.get("caption"),
                parse_mode=params.get("parse_mode"),
                reply_markup=markup,
            )
        return message

    async def _api_send_document(self, params: Json, uploads: dict[str, _Upload]) -> Json:
        chat_id = self._chat_id(params)
        document = self._input_file(params, uploads, "document")
        caption_content = self._caption(params)
        markup = self._reply_markup(params)
        if isinstance(document, _Upload):
            if not document.data:
                raise _bad("file must be non-empty")
            mime_type = document.content_type
            if mime_type == "application/octet-stream":
                mime_type = mimetypes.guess_type(document.filename)[0] or mime_type
            meta = self._register_document(document.filename, mime_type, len(document.data))
            recorded: bytes | str = document.data
            filename: str | None = document.filename
        elif _is_url(document):
            name = urlsplit(document).path.rsplit("/", 1)[-1] or "file"
            meta = self._register_document(name, mimetypes.guess_type(name)[0] or "application/octet-stream", 0)
            recorded, filename = document, name
        else:
            meta = self._known_file(document, "document")["document"]
            recorded, filename = document, meta.get("file_name")
        with self._lock:
            message = self._bot_message(chat_id, {"document": meta, **caption_content}, markup)
            self._record_sent(
                "sendDocument",
                chat_id,
                message,
                document=recorded,
                filename=filename,
                caption=params.get("caption"),
                parse_mode=params.get("parse_mode"),
                reply_markup=markup,
            )
        return message

    async def _api_send_chat_action(self, params: Json, uploads: dict[str, _Upload]) -> bool:
        self._chat_id(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    async def _api_answer_callback_query(self, params: Json, uploads: dict[str, _Upload]) -> bool:
        query_id = params.get("callback_query_id")
        with self._lock:
            known = query_id is not None and str(query_id) in self._callback_queries
        if not known:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        return True

    async def _api_edit_message_reply_markup(self, params: Json, uploads: dict[str, _Upload]) -> Json | bool:
        if params.get("inline_message_id"):
            return True
        chat_id, message = self._message_to_edit(params)
        markup = self._reply_markup(params, inline_only=True)
        with self._lock:
            if markup == message.get("reply_markup"):
                raise _bad(_NOT_MODIFIED)
            self._set_markup(message, markup)
            message["edit_date"] = int(time.time())
            result = copy.deepcopy(message)
            self._record_sent("editMessageReplyMarkup", chat_id, result, reply_markup=markup)
        return result

    async def _api_edit_message_text(self, params: Json, uploads: dict[str, _Upload]) -> Json | bool:
        text = params.get("text")
        text = "" if text is None else str(text)
        plain, entities = self._format(text, params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise _bad("message text is empty")
        if len(plain) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        if params.get("inline_message_id"):
            return True
        chat_id, message = self._message_to_edit(params)
        markup = self._reply_markup(params, inline_only=True)
        with self._lock:
            if "text" not in message:
                raise _bad("there is no text in the message to edit")
            if (plain, entities, markup) == (message["text"], message.get("entities", []), message.get("reply_markup")):
                raise _bad(_NOT_MODIFIED)
            message["text"] = plain
            message.pop("entities", None)
            if entities:
                message["entities"] = entities
            self._set_markup(message, markup)
            message["edit_date"] = int(time.time())
            result = copy.deepcopy(message)
            self._record_sent(
                "editMessageText", chat_id, result, text=text, parse_mode=params.get("parse_mode"), reply_markup=markup
            )
        return result

    async def _api_set_webhook(self, params: Json, uploads: dict[str, _Upload]) -> _Described:
        url = params.get("url") or ""
        if not isinstance(url, str):
            raise _bad("bad webhook: URL must be a string")
        if not url:
            return self._remove_webhook(_truthy(params.get("drop_pending_updates")))
        # Telegram requires HTTPS on ports 443, 80, 88 or 8443; a local stand-in has to accept plain HTTP too.
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not (isinstance(secret, str) and _SECRET_RE.fullmatch(secret)):
            raise _bad("secret token contains unallowed characters")
        max_connections = _int_param(params, "max_connections", 40) or 40
        if not 1 <= max_connections <= 100:
            raise _bad("bad webhook: max_connections must be between 1 and 100")
        with self._lock:
            self._set_allowed_updates(params)
            already = self.webhook["url"] == url and self.webhook["secret_token"] == secret
            if self.webhook["url"] != url:
                self.webhook = _no_webhook()
            self.webhook["url"] = url
            self.webhook["secret_token"] = secret
            self.webhook["max_connections"] = max_connections
            self.webhook["allowed_updates"] = list(self._allowed_updates) if self._allowed_updates else None
            if _truthy(params.get("drop_pending_updates")):
                self._updates.clear()
        self._wake()
        return _Described(True, "Webhook is already set" if already else "Webhook was set")

    async def _api_delete_webhook(self, params: Json, uploads: dict[str, _Upload]) -> _Described:
        return self._remove_webhook(_truthy(params.get("drop_pending_updates")))

    def _remove_webhook(self, drop_pending_updates: bool) -> _Described:
        with self._lock:
            was_set = bool(self.webhook["url"])
            self.webhook = _no_webhook()
            if drop_pending_updates:
                self._updates.clear()
        self._wake()
        return _Described(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    async def _api_get_webhook_info(self, params: Json, uploads: dict[str, _Upload]) -> Json:
        with self._lock:
            info: Json = {"url": self.webhook["url"], "has_custom_certificate": False}
            info["pending_update_count"] = len(self._updates)
            if not self.webhook["url"]:
                return info
            info["ip_address"] = "127.0.0.1"
            info["max_connections"] = self.webhook["max_connections"]
            if self.webhook["allowed_updates"]:
                info["allowed_updates"] = list(self.webhook["allowed_updates"])
            if self.webhook["last_error_date"] is not None:
                info["last_error_date"] = self.webhook["last_error_date"]
                info["last_error_message"] = self.webhook["last_error_message"]
            return info

    async def _api_set_my_commands(self, params: Json, uploads: dict[str, _Upload]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_RE.fullmatch(str(command.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        with self._lock:
            self._commands[self._commands_key(params)] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
        return True

    async def _api_delete_my_commands(self, params: Json, uploads: dict[str, _Upload]) -> bool:
        with self._lock:
            self._commands.pop(self._commands_key(params), None)
        return True

    async def _api_get_my_commands(self, params: Json, uploads: dict[str, _Upload]) -> list[Json]:
        with self._lock:
            return copy.deepcopy(self._commands.get(self._commands_key(params), []))

    @staticmethod
    def _commands_key(params: Json) -> str:
        return json.dumps([params.get("scope") or {"type": "default"}, params.get("language_code") or ""])

    async def _api_close(self, params: Json, uploads: dict[str, _Upload]) -> bool:
        return True

    async def _api_log_out(self, params: Json, uploads: dict[str, _Upload]) -> bool:
        return True

    # ----------------------------------------------------------------------------------------------------------
    # Validation and message building
    # ----------------------------------------------------------------------------------------------------------

    @staticmethod
    def _chat_id(params: Json) -> int:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        if isinstance(chat_id, bool) or not isinstance(chat_id, int):
            raise _bad("chat not found")  # e.g. "@channel": the stand-in knows no public chats
        return chat_id

    @staticmethod
    def _format(text: str, parse_mode: Any, entities: Any) -> tuple[str, list[Json]]:
        """The plain text and entities Telegram makes of a text or caption."""
        mode = parse_mode.lower() if isinstance(parse_mode, str) else ""
        if mode == "html":
            try:
                return parse_html(text)
            except EntityParseError as error:
                raise _bad(f"can't parse entities: {error}") from None
        if mode in ("", "markdown", "markdownv2"):  # Markdown is passed through unparsed
            return text, list(entities) if mode == "" and isinstance(entities, list) else []
        raise _bad("unsupported parse_mode")

    def _caption(self, params: Json) -> Json:
        caption = params.get("caption")
        if caption is None or caption == "":
            return {}
        plain, entities = self._format(str(caption), params.get("parse_mode"), params.get("caption_entities"))
        if len(plain) > MAX_CAPTION_LENGTH:
            raise _bad("message caption is too long")
        content: Json = {"caption": plain}
        if entities:
            content["caption_entities"] = entities
        return content

    def _reply_markup(self, params: Json, *, inline_only: bool = False) -> Json | None:
        """The parsed reply_markup, validated as Telegram does."""
        markup = params.get("reply_markup")
        if markup is None or markup == "":
            return None
        if isinstance(markup, str):
            try:
                markup = json.loads(markup)
            except ValueError:
                raise _bad("can't parse reply keyboard markup JSON object") from None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            self._check_inline_keyboard(markup["inline_keyboard"])
        elif inline_only:
            raise _bad("inline keyboard expected")
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad("can't parse reply keyboard markup JSON object")
            for button in itertools.chain.from_iterable(rows):
                text = button if isinstance(button, str) else button.get("text") if isinstance(button, dict) else None
                if not isinstance(text, str) or not text.strip():
                    raise _bad('can\'t parse keyboard button: Field "text" must be of type String')
        elif not (markup.get("remove_keyboard") is True or markup.get("force_reply") is True):
            raise _bad("can't parse reply keyboard markup JSON object")
        return markup

    @staticmethod
    def _check_inline_keyboard(rows: Any) -> None:
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad("can't parse reply keyboard markup JSON object")
        buttons = list(itertools.chain.from_iterable(rows))
        if len(buttons) > MAX_INLINE_BUTTONS:
            raise _bad("reply markup is too long")
        for button in buttons:
            if not isinstance(button, dict):
                raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            text = button.get("text")
            if not isinstance(text, str):
                raise _bad('can\'t parse inline keyboard button: Field "text" must be of type String')
            if not text.strip():
                raise _bad("can't parse inline keyboard button: Text must be non-empty")
            if not any(key in button for key in _INLINE_BUTTON_ACTIONS):
                raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                    raise _bad("BUTTON_DATA_INVALID")
            if "url" in button:
                url = button["url"]
                if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https", "tg"):
                    raise _bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")

    @staticmethod
    def _set_markup(message: Json, markup: Json | None) -> None:
        """Messages carry only inline keyboards, as in the Bot API."""
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = copy.deepcopy(markup)
        else:
            message.pop("reply_markup", None)

    @staticmethod
    def _input_file(params: Json, uploads: dict[str, _Upload], name: str) -> _Upload | str:
        value = params.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = uploads.get(value.removeprefix("attach://"))
            if upload is None:
                raise _bad(f"there is no {name} in the request")
            return upload
        if name in uploads:
            return uploads[name]
        if not isinstance(value, str) or not value:
            raise _bad(f"there is no {name} in the request")
        return value

    def _known_file(self, file_id: str, kind: str) -> Json:
        with self._lock:
            known = self._files.get(file_id)
        if known is None:
            raise _bad(_WRONG_FILE)
        if known["kind"] != kind:
            raise _bad(f"can't use file of type {known['kind'].capitalize()} as {kind.capitalize()}")
        return known

    def _file_ids(self, prefix: str) -> tuple[str, str]:
        number = next(self._file_numbers)
        return f"{prefix}AxkBAAI{number:06d}StandIn{number * 7919 % 100000:05d}", f"AQAD{number:06d}"

    def _register_photo(self, file_size: int, width: int, height: int) -> list[Json]:
        """PhotoSize dicts for one photo (thumbnails plus the original), registered as known file_ids."""
        dimensions = [(90, 90), (320, 320), (width or 800, height or 800)]
        if width and height:
            scale = max(width, height)
            dimensions = [(round(width * side / scale), round(height * side / scale)) for side in (90, 320)]
            dimensions.append((width, height))
        sizes = []
        for index, (w, h) in enumerate(dimensions):
            file_id, unique_id = self._file_ids("AgACAgUA")
            size: Json = {"file_id": file_id, "file_unique_id": unique_id, "width": w, "height": h}
            if file_size:
                size["file_size"] = file_size if index == len(dimensions) - 1 else max(file_size // (8 >> index), 1)
            sizes.append(size)
        with self._lock:
            for size in sizes:
                self._files[size["file_id"]] = {"kind": "photo", "sizes": sizes}
        return copy.deepcopy(sizes)

    def _register_document(self, file_name: str, mime_type: str, file_size: int) -> Json:
        file_id, unique_id = self._file_ids("BQACAgUA")
        document: Json = {
            "file_name": file_name,
            "mime_type": mime_type,
            "file_id": file_id,
            "file_unique_id": unique_id,
        }
        if file_size:
            document["file_size"] = file_size
        with self._lock:
            self._files[file_id] = {"kind": "document", "document": document}
        return dict(document)

    def _chat_dict(self, chat_id: int) -> Json:
        if chat_id < 0:
            kind = "supergroup" if str(chat_id).startswith("-100") else "group"
            return {"id": chat_id, "title": "测试群", "type": kind}
        user = self._users.get(chat_id, {"first_name": DEFAULT_FIRST_NAME})
        chat: Json = {"id": chat_id, "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        chat["type"] = "private"
        return chat

    def _new_message(self, chat_id: int, sender: Json, content: Json) -> Json:
        """Stores a message in its chat with the chat's next message_id; returns a copy."""
        with self._lock:
            chat = self._chats.setdefault(chat_id, _Chat())
            message: Json = {
                "message_id": chat.next_message_id,
                "from": dict(sender),
                "chat": self._chat_dict(chat_id),
                "date": int(time.time()),
                **copy.deepcopy(content),
            }
            chat.next_message_id += 1
            chat.messages[message["message_id"]] = message
            return copy.deepcopy(message)

    def _bot_message(self, chat_id: int, content: Json, markup: Json | None) -> Json:
        sender = {key: self.bot_user[key] for key in ("id", "is_bot", "first_name", "username")}
        if markup is not None and "inline_keyboard" in markup:
            content = {**content, "reply_markup": markup}
        return self._new_message(chat_id, sender, content)

    def _message_to_edit(self, params: Json) -> tuple[int, Json]:
        """The stored (live) message that chat_id + message_id name."""
        if params.get("message_id") in (None, ""):
            raise _bad("message identifier is not specified")
        chat_id = self._chat_id(params)
        message_id = _int_param(params, "message_id")
        with self._lock:
            chat = self._chats.get(chat_id)
            message = chat.messages.get(message_id or 0) if chat else None
        if message is None:
            raise _bad("message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise _bad("message can't be edited")
        return chat_id, message

    def _record_sent(self, method: str, chat_id: int, message: Json, **fields: Any) -> None:
        entry: Json = {
            "method": method,
            "chat_id": chat_id,
            "text": None,
            "parse_mode": None,
            "reply_markup": None,
            "photo": None,
            "document": None,
            "filename": None,
            "caption": None,
            "message_id": message["message_id"],
            "time": time.monotonic(),
        }
        entry.update(fields)
        with self._lock:
            self.sent.append(entry)

    # ----------------------------------------------------------------------------------------------------------
    # Webhook delivery
    # ----------------------------------------------------------------------------------------------------------

    async def _deliver_to_webhook(self) -> None:
        """Posts queued updates to the webhook one at a time, in order, retrying on non-2xx."""
        while True:
            with self._lock:
                url, secret = self.webhook["url"], self.webhook["secret_token"]
                queue = self._deliverable() if url else []
                queued = queue[0] if queue else None
            if queued is None:
                await self._wait_for_change(None)
                continue
            done = False
            for delay in (0.0, *self.webhook_retry_delays):
                if delay:
                    await asyncio.sleep(delay)
                with self._lock:
                    if self.webhook["url"] != url:
                        break  # the webhook changed: leave the update queued
                status, error = await self._post(url, secret, queued.update)
                if 200 <= status < 300:
                    done = True
                    break
                with self._lock:
                    self.webhook["last_error_date"] = int(time.time())
                    self.webhook["last_error_message"] = error
            else:
                done = True  # gave up after the retries, as Telegram eventually does
            if done:
                with self._lock:
                    if queued in self._updates:
                        self._updates.remove(queued)

    async def _post(self, url: str, secret: str | None, update: Json) -> tuple[int, str | None]:
        """One delivery attempt: (status, error message for getWebhookInfo); status 0 when unreachable."""
        try:
            record = await self._post_raw(url, secret, update)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            return 0, "Connection refused" if isinstance(error, aiohttp.ClientConnectorError) else repr(error)
        return record["status"], record["error"]

    async def _post_raw(self, url: str, secret: str | None, update: Json) -> Json:
        """POSTs an update as Telegram does and returns its ``webhook_posts`` record; raises when unreachable."""
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        record: Json = {
            "url": url,
            "update_id": update.get("update_id"),
            "secret_token": secret,
            "status": 0,
            "error": None,
            "time": time.monotonic(),
        }
        with self._lock:
            self.webhook_posts.append(record)
        body = json.dumps(update, ensure_ascii=False).encode("utf-8")
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            record["error"] = "Connection refused" if isinstance(error, aiohttp.ClientConnectorError) else repr(error)
            raise
        record["status"] = response.status
        if not 200 <= response.status < 300:
            record["error"] = f"Wrong response from the webhook: {response.status} {response.reason}"
        return record

    async def _post_once(self, update: Json, secret: str | None | Secret, url: str | None) -> int:
        with self._lock:
            target: str = url or self.webhook["url"]
            header: str | None = self.webhook["secret_token"] if secret is Secret.REGISTERED else secret
        if not target:
            raise RuntimeError("no webhook is set and no url was given")
        record = await self._post_raw(target, header, update)
        return int(record["status"])

    # ----------------------------------------------------------------------------------------------------------
    # Test side: fault injection and the users' side
    # ----------------------------------------------------------------------------------------------------------

    def fail_next(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` (any case) answer 429 Too Many Requests, retry after N."""
        with self._lock:
            self._failures.setdefault(method.lower(), []).extend([retry_after] * times)

    def next_update_id(self) -> int:
        """Takes the next update_id, as for a :meth:`push`."""
        with self._lock:
            update_id = self._next_update_id
            self._next_update_id += 1
            return update_id

    def push(self, update: Json) -> None:
        """Queues a raw update as is (it must have an int update_id; it may repeat an earlier one)."""
        if not isinstance(update.get("update_id"), int):
            raise ValueError("an update needs an int update_id")
        with self._lock:
            self._next_update_id = max(self._next_update_id, update["update_id"] + 1)
            self._enqueue(copy.deepcopy(update))

    def _enqueue(self, update: Json) -> None:
        with self._lock:
            self._updates.append(_Queued(update))
            query = update.get("callback_query")
            if isinstance(query, dict) and "id" in query:
                self._callback_queries.add(str(query["id"]))
        self._wake_threadsafe()

    def _queue(self, body: Json) -> Json:
        with self._lock:
            update = {"update_id": self.next_update_id(), **body}
            self._enqueue(update)
            return copy.deepcopy(update)

    def _user(self, user_id: int, *, username: str | None = None, first_name: str | None = None) -> Json:
        """The user's profile; send_text sets it, other senders keep the known one or make a default."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None or first_name is not None:
                user = {"id": user_id, "is_bot": False, "first_name": first_name or DEFAULT_FIRST_NAME}
                if username:
                    user["username"] = username
                user["language_code"] = "zh-hans"
                self._users[user_id] = user
            return dict(user)

    def _user_message(self, user_id: int, content: Json) -> Json:
        message = self._new_message(user_id, self._user(user_id), content)
        return self._queue({"message": message})

    def send_text(self, user_id: int, text: str, *, username: str | None = None, first_name: str = "村民") -> Json:
        """A private-chat text message from the user; a leading /command gets a bot_command entity."""
        self._user(user_id, username=username, first_name=first_name)
        content: Json = {"text": text}
        command = _BOT_COMMAND_RE.match(text)
        if command and (command.end() == len(text) or not text[command.end()].isalnum()):
            content["entities"] = [{"offset": 0, "length": command.end(), "type": "bot_command"}]
        return self._user_message(user_id, content)

    def send_photo(self, user_id: int, *, caption: str | None = None) -> Json:
        """A photo (four sizes, like a phone picture) from the user."""
        content: Json = {"photo": self._register_photo(187_000, 1280, 960)}
        if caption:
            content["caption"] = caption
        return self._user_message(user_id, content)

    def send_document(
        self,
        user_id: int,
        *,
        file_name: str = "申请材料.pdf",
        mime_type: str = "application/pdf",
        file_size: int = 24_576,
        caption: str | None = None,
    ) -> Json:
        """A document from the user."""
        content: Json = {"document": self._register_document(file_name, mime_type, file_size)}
        if caption:
            content["caption"] = caption
        return self._user_message(user_id, content)

    def send_sticker(self, user_id: int, *, emoji: str = "👍") -> Json:
        """A (static) sticker from the user."""
        file_id, unique_id = self._file_ids("CAACAgIA")
        sticker = {
            "width": 512,
            "height": 512,
            "emoji": emoji,
            "set_name": "HelplineTestStickers",
            "is_animated": False,
            "is_video": False,
            "type": "regular",
            "file_id": file_id,
            "file_unique_id": unique_id,
            "file_size": 23_114,
        }
        with self._lock:
            self._files[file_id] = {"kind": "sticker", "sticker": sticker}
        return self._user_message(user_id, {"sticker": sticker})

    def send_voice(self, user_id: int, *, duration: int = 3) -> Json:
        """A voice message from the user."""
        file_id, unique_id = self._file_ids("AwACAgUA")
        voice = {
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_id": file_id,
            "file_unique_id": unique_id,
            "file_size": 4_000 * duration,
        }
        with self._lock:
            self._files[file_id] = {"kind": "voice", "voice": voice}
        return self._user_message(user_id, {"voice": voice})

    def send_location(self, user_id: int, *, latitude: float = 34.810488, longitude: float = 117.323725) -> Json:
        """A location from the user (default: 枣庄市中区)."""
        return self._user_message(user_id, {"location": {"latitude": latitude, "longitude": longitude}})

    def press_button(self, user_id: int, callback_data: str, message_id: int | None = None) -> Json:
        """The user presses an inline button: a callback_query update carrying the message it belongs to.

        Without ``message_id`` the message is the bot's last one in the chat whose current inline keyboard has a
        button with this callback_data (LookupError if none has); with it, that message, whatever its buttons.
        """
        user = self._user(user_id)
        with self._lock:
            chat = self._chats.get(user_id, _Chat())
            if message_id is not None:
                message = chat.messages.get(message_id)
                if message is None:
                    raise LookupError(f"chat {user_id} has no message {message_id}")
            else:
                message = next(
                    (
                        m
                        for m in reversed(chat.messages.values())
                        if m["from"]["id"] == self.bot_user["id"]
                        and callback_data in (data for _, data in self.buttons_of(m))
                    ),
                    None,
                )
                if message is None:
                    raise LookupError(
                        f"no message from the bot to chat {user_id} has a button with callback_data "
                        f"{callback_data!r}; its buttons: {self._all_buttons(user_id)}"
                    )
            query = {
                "id": str(4_000_000_000_000_000_000 + next(self._callback_numbers)),
                "from": user,
                "message": copy.deepcopy(message),
                "chat_instance": str(-(8_000_000_000_000_000_000 + abs(user_id))),
                "data": callback_data,
            }
        return self._queue({"callback_query": query})

    def _all_buttons(self, chat_id: int) -> list[tuple[str, str | None]]:
        with self._lock:
            chat = self._chats.get(chat_id, _Chat())
            return [button for message in chat.messages.values() for button in self.buttons_of(message)]

    def post_to_webhook(
        self,
        update: Json,
        secret: str | None | Secret = Secret.REGISTERED,
        *,
        url: str | None = None,
        timeout: float = 30.0,
    ) -> int:
        """POSTs ``update`` once to the webhook (or ``url``) and returns the HTTP status (blocking).

        ``secret``: the X-Telegram-Bot-Api-Secret-Token header; by default the registered one, None for none.
        Raises aiohttp.ClientError when the receiver cannot be reached. Not for the loop the receiver runs in:
        there use :meth:`post_to_webhook_async`.
        """
        return int(self._submit(self._post_once(update, secret, url)).result(timeout))

    async def post_to_webhook_async(
        self, update: Json, secret: str | None | Secret = Secret.REGISTERED, *, url: str | None = None
    ) -> int:
        """:meth:`post_to_webhook` for async code."""
        return int(await asyncio.wrap_future(self._submit(self._post_once(update, secret, url))))

    # ----------------------------------------------------------------------------------------------------------
    # Assertions
    # ----------------------------------------------------------------------------------------------------------

    def sent_to(self, chat_id: int) -> list[Json]:
        """The ``sent`` entries for one chat, oldest first."""
        with self._lock:
            return [entry for entry in self.sent if entry["chat_id"] == chat_id]

    def texts_to(self, chat_id: int) -> list[str]:
        """The texts the bot sent (sendMessage) or edited into (editMessageText) to a chat, as sent."""
        return [entry["text"] for entry in self.sent_to(chat_id) if entry["text"] is not None]

    @staticmethod
    def buttons_of(entry: Json) -> list[tuple[str, str | None]]:
        """(title, callback_data) of every button of a ``sent`` entry or a message, row by row.

        Inline buttons without callback_data (URL buttons) and reply-keyboard buttons have None.
        """
        markup = entry.get("reply_markup") or {}
        if "inline_keyboard" in markup:
            return [(b.get("text", ""), b.get("callback_data")) for row in markup["inline_keyboard"] for b in row]
        return [
            (b if isinstance(b, str) else b.get("text", ""), None) for row in markup.get("keyboard", []) for b in row
        ]

    def wait_for(self, predicate: Callable[[], T], timeout: float = 30.0, *, interval: float = 0.05) -> T:
        """Polls ``predicate()`` until it is truthy and returns its value; AssertionError with a dump otherwise.

        A LookupError (IndexError, KeyError) raised by the predicate counts as not yet. Blocks the calling
        thread: from a coroutine running on the bot's event loop use :meth:`wait_for_async`.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = self._try(predicate)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(self._timed_out(predicate, timeout))
            time.sleep(interval)

    async def wait_for_async(self, predicate: Callable[[], T], timeout: float = 30.0, *, interval: float = 0.05) -> T:
        """:meth:`wait_for` that sleeps with asyncio, letting the calling event loop run."""
        deadline = time.monotonic() + timeout
        while True:
            value = self._try(predicate)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(self._timed_out(predicate, timeout))
            await asyncio.sleep(interval)

    @staticmethod
    def _try(predicate: Callable[[], T]) -> T | None:
        try:
            return predicate()
        except LookupError:
            return None

    def _timed_out(self, predicate: Callable[[], Any], timeout: float) -> str:
        name = getattr(predicate, "__qualname__", repr(predicate))
        return f"{name} still false after {timeout} s\n{self.describe()}"

    def describe(self, last: int = 15) -> str:
        """A readable dump of the state: webhook, queued updates, the last calls and sent messages."""

        def dump(value: Any) -> str:
            return json.dumps(_abbreviate(value), ensure_ascii=False, default=repr)

        with self._lock:
            lines = [f"webhook: {dump(self.webhook)}", f"queued updates ({len(self._updates)}):"]
            lines += [f"  {dump(q.update)}{' (delivered)' if q.delivered else ''}" for q in self._updates[-last:]]
            lines.append(f"last calls (of {len(self.calls)}):")
            lines += [f"  {c['status']} {c['method']} {dump(c['params'])}" for c in self.calls[-last:]]
            lines.append(f"last sent (of {len(self.sent)}):")
            lines += [f"  {dump({k: v for k, v in s.items() if v is not None})}" for s in self.sent[-last:]]
        return "\n".join(lines)


def _is_url(value: str) -> bool:
    return urlsplit(value).scheme in ("http", "https")
