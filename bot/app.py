"""The Telegram front end: a python-telegram-bot Application that carries each message and button press to Rasa
and Rasa's reply back, and delivers the notification outbox.

- Updates of one chat are handled one after another in arrival order; different chats concurrently
  (`ChatOrderedProcessor`).
- Every update is recorded in the inbox before it is handled: a repeated update_id is ignored, and an update
  whose handling did not finish (Rasa down when the bot stopped) is replayed at the next start.
- While Rasa or the action server is down, the user is told once and the message is retried until it is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import signal
import traceback
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from sqlalchemy.orm import sessionmaker
from telegram import Bot, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, BaseUpdateProcessor, ContextTypes, TypeHandler

from actions.db.session import make_engine, make_sessionmaker
from actions.settings import PROJECT_ROOT, Settings
from bot import logsafe
from bot.delivery import Delivery, Undeliverable
from bot.rasa import RasaClient, RasaUnavailable
from bot.ratelimit import RateLimiter
from bot.settings import BotSettings, SettingsError
from bot.store import CHANNEL, Buttons, Inbox, Outbox

logger = logging.getLogger(__name__)

MESSAGES_FILE = Path(__file__).with_name("messages.yml")
INVITE_CODE = re.compile(r"^[A-Za-z0-9-]{6,20}$")  # a deep-link start parameter that may be an invitation code
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
COMMANDS = {"/help": "/help", "/cancel": "取消"}  # 取消 ends a form (its validators) and works outside one


def load_messages() -> dict[str, str]:
    return {k: str(v) for k, v in yaml.safe_load(MESSAGES_FILE.read_text(encoding="utf-8")).items()}


def load_menu(domain_file: Path = PROJECT_ROOT / "domain.yml") -> list[dict[str, Any]]:
    """The main menu: the buttons of utter_help in domain.yml, so the menu is defined once."""
    domain = yaml.safe_load(domain_file.read_text(encoding="utf-8"))
    return list(domain["responses"]["utter_help"][0].get("buttons", []))


def chat_key(update: object) -> int:
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return 0


class ChatOrderedProcessor(BaseUpdateProcessor):
    """One chat's updates in arrival order, different chats at the same time.

    PTB starts one task per update in the order updates arrive; each task waits for its chat's lock, and
    asyncio locks are granted first come, first served.
    """

    def __init__(self, max_concurrent_updates: int = 512) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = chat_key(update)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._locks[key]

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


class Postponed(Exception):
    """The bot is stopping before Rasa could answer: the update stays in the inbox and is handled at the next start."""


@dataclass
class Helpline:
    """What the bot does with an update, and the outbox delivery."""

    settings: BotSettings
    sessions: sessionmaker
    rasa: RasaClient
    messages: dict[str, str] = field(default_factory=load_messages)
    menu: list[dict[str, Any]] = field(default_factory=load_menu)
    retry_first: float = 2.0  # seconds before Rasa is tried again, doubling up to retry_max
    retry_max: float = 60.0

    def __post_init__(self) -> None:
        self.stopping = asyncio.Event()  # set at shutdown: unanswered updates stay in the inbox for the next start
        self.inbox = Inbox(self.sessions)
        self.buttons = Buttons(self.sessions)
        self.outbox = Outbox(self.sessions)

    def delivery(self, bot: Bot) -> Delivery:
        return Delivery(bot, lambda payload: asyncio.to_thread(self.buttons.data_for, payload), self.messages["choose"])

    # --- updates -------------------------------------------------------------------------------------------------

    async def handle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if not await asyncio.to_thread(self.inbox.claim, update.update_id, chat.id if chat else None, update.to_dict()):
            logger.info("update %s was seen before; ignored", update.update_id)
            return
        try:
            await self.answer(update, context.bot)
        except Postponed:
            logger.info("update %s left for the next start", update.update_id)
            return
        except asyncio.CancelledError:
            raise  # not answered: the inbox keeps it
        except Exception:
            # Rasa may have seen the message already; handling it again could repeat it there.
            await asyncio.to_thread(self.inbox.done, update.update_id)
            raise
        await asyncio.to_thread(self.inbox.done, update.update_id)

    async def answer(self, update: Update, bot: Bot) -> None:
        delivery = self.delivery(bot)
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None:
            return  # an update kind the bot did not ask for
        if chat.type != ChatType.PRIVATE:
            if update.message is not None:
                await delivery.text(chat.id, self.messages["group_only_private"])
            return
        query = update.callback_query
        if query is not None:
            text = await self.pressed(query, bot, delivery)
        elif update.message is not None:
            text = await self.typed(update, delivery)
        else:
            return
        if text is None:
            return
        start = update.message is not None and (update.message.text or "").split(maxsplit=1)[:1] == ["/start"]
        parts = await self.ask_rasa(update, text, delivery)
        if start and text == "/greet":
            parts = [*parts, {"text": self.messages["privacy_line"]}]
        if not parts:
            await delivery.text(chat.id, self.messages["failed"], self.menu)
            return
        try:
            await delivery.parts(chat.id, parts)
        except Undeliverable as exc:
            logger.warning("reply to update %s not delivered: %s", update.update_id, exc.reason)

    async def pressed(self, query: Any, bot: Bot, delivery: Delivery) -> str | None:
        try:
            await query.answer()
        except TelegramError as exc:  # an old query; the press still counts
            logger.info("answerCallbackQuery failed: %s", type(exc).__name__)
        payload = await asyncio.to_thread(self.buttons.payload_of, query.data or "")
        if query.message is not None:
            with contextlib.suppress(BadRequest):  # a pressed keyboard goes away, so 提交 cannot be pressed twice
                await bot.edit_message_reply_markup(query.message.chat.id, query.message.message_id, reply_markup=None)
        if not payload:
            await delivery.text(query.from_user.id, self.messages["button_expired"], self.menu)
            return None
        return payload

    async def typed(self, update: Update, delivery: Delivery) -> str | None:
        message = update.message
        assert message is not None
        if message.text is None:
            await delivery.text(message.chat.id, self.messages["unsupported"], self.menu)
            return None
        text = message.text.strip()
        if not text.startswith("/"):
            return text
        command, _, argument = text.partition(" ")
        command = command.split("@", 1)[0].lower()  # /start@helpline_bot in a menu
        if command == "/start":
            argument = argument.strip()
            if argument and INVITE_CODE.match(argument):  # t.me/<bot>?start=<invitation code>
                return f'/cadre_register{{"invite_code":"{argument}"}}'
            return "/greet"
        if command == "/privacy":
            await delivery.text(message.chat.id, self.messages["privacy"], self.menu)
            return None
        return COMMANDS.get(command, text)

    async def ask_rasa(self, update: Update, text: str, delivery: Delivery) -> list[dict[str, Any]]:
        """Rasa's reply; while Rasa is down the user is told once, and the message is tried again until answered."""
        chat, user = update.effective_chat, update.effective_user
        assert chat is not None and user is not None
        metadata = {"channel": CHANNEL, "chat_id": chat.id, "username": user.username, "update_id": update.update_id}
        delay, told = self.retry_first, False
        while True:
            if self.stopping.is_set():  # this chat's later messages wait too, so the order holds after a restart
                raise Postponed
            try:
                return await self.rasa.send(str(user.id), text, metadata)
            except RasaUnavailable as exc:
                logger.warning("Rasa unavailable (%s); update %s tried again in %.0f s", exc, update.update_id, delay)
                if not told:
                    told = True
                    with contextlib.suppress(Undeliverable):
                        await delivery.text(chat.id, self.messages["outage"])
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
                delay = min(delay * 2, self.retry_max)

    async def replay(self, application: Application) -> int:
        """Queue the updates received earlier but never answered; returns how many."""
        bodies = await asyncio.to_thread(self.inbox.unhandled)
        for body in bodies:
            update = Update.de_json(body, application.bot)
            if update is not None:
                await application.update_queue.put(update)
        if bodies:
            logger.info("replaying %d unanswered update(s)", len(bodies))
        return len(bodies)

    # --- notifications -------------------------------------------------------------------------------------------

    async def deliver_outbox(self, bot: Bot) -> int:
        """Send the due notifications once; returns how many were delivered."""
        delivery, delivered = self.delivery(bot), 0
        for item in await asyncio.to_thread(self.outbox.due):
            try:
                await delivery.text(item.chat_id, item.text, item.buttons)
            except Undeliverable as exc:
                final = await asyncio.to_thread(self.outbox.failed, item.id, exc.reason, permanent=exc.permanent)
                logger.warning("notification %s not delivered (%s)%s", item.id, exc.reason, "; gave up" * final)
                continue
            except TelegramError as exc:
                final = await asyncio.to_thread(self.outbox.failed, item.id, type(exc).__name__, permanent=False)
                logger.warning("notification %s not delivered (%s)%s", item.id, type(exc).__name__, "; gave up" * final)
                continue
            await asyncio.to_thread(self.outbox.sent, item.id)
            delivered += 1
        return delivered

    async def outbox_loop(self, bot: Bot) -> None:
        while True:
            try:
                await self.deliver_outbox(bot)
            except Exception:  # a database hiccup must not end deliveries for good
                logger.exception("outbox delivery failed")
            await asyncio.sleep(self.settings.outbox_interval)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one place errors are logged: the error's type and the update id, never the user's words."""
    update_id = update.update_id if isinstance(update, Update) else None
    error = context.error
    # Where it happened (frames), not the exception's message: that may quote what the user wrote.
    where = "".join(traceback.format_tb(error.__traceback__)) if error is not None else ""
    logger.error("error handling update %s: %s\n%s", update_id, type(error).__name__, where.rstrip())


def build_application(helpline: Helpline) -> Application:
    settings = helpline.settings
    builder = (
        Application.builder()
        .token(settings.token)
        .base_url(settings.api_url)
        .base_file_url(settings.api_url.replace("/bot", "/file/bot"))
        .rate_limiter(RateLimiter(settings.overall_per_second, settings.per_chat_interval))
        .concurrent_updates(ChatOrderedProcessor())
    )
    if settings.webhook_url:
        builder = builder.updater(None)  # updates arrive at our own endpoint (webhook_app)
    application = builder.build()
    application.add_handler(TypeHandler(Update, helpline.handle))
    application.add_error_handler(on_error)
    return application


def webhook_app(application: Application, settings: BotSettings) -> web.Application:
    """The webhook endpoint: updates whose X-Telegram-Bot-Api-Secret-Token is not ours are refused (403)."""
    secret = (settings.webhook_secret or "").encode()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
        if not secret or not hmac.compare_digest(given, secret):
            logger.warning("webhook request without the right secret token refused")
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), application.bot)
        except Exception:  # not JSON, or not an update
            return web.Response(status=400)
        if update is not None:
            await application.update_queue.put(update)
        return web.Response(status=200)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post(settings.webhook_path, receive)
    app.router.add_get("/healthz", health)
    return app


async def serve(helpline: Helpline, stop: asyncio.Event) -> None:
    """Run until `stop` is set: long polling, or the webhook when TELEGRAM_WEBHOOK_URL is set."""
    settings = helpline.settings
    application = build_application(helpline)
    runner: web.AppRunner | None = None
    async with application:
        if settings.webhook_url:
            runner = web.AppRunner(webhook_app(application, settings))
            await runner.setup()
            await web.TCPSite(runner, settings.webhook_listen, settings.webhook_port).start()
            await application.bot.set_webhook(
                settings.webhook_url, secret_token=settings.webhook_secret, allowed_updates=ALLOWED_UPDATES
            )
            logger.info("webhook mode: listening on port %d", settings.webhook_port)
        else:
            assert application.updater is not None
            await application.bot.delete_webhook()
            await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES, poll_interval=0.0, timeout=30)
            logger.info("long polling started")
        await application.start()
        await helpline.replay(application)
        outbox = asyncio.create_task(helpline.outbox_loop(application.bot))
        try:
            await stop.wait()
        finally:
            helpline.stopping.set()  # updates waiting for Rasa give up now (they stay in the inbox)
            outbox.cancel()
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            await application.stop()
            if runner is not None:
                await runner.cleanup()
            await helpline.rasa.close()


def make_helpline(settings: BotSettings, database_url: str) -> Helpline:
    sessions = make_sessionmaker(make_engine(database_url))
    return Helpline(settings, sessions, RasaClient(settings.rasa_url, settings.action_url))


def main() -> int:
    try:
        settings = BotSettings.from_env()
    except SettingsError as exc:
        logsafe.install("", level="INFO")
        print(f"Telegram 前端没有启动:{exc}", flush=True)
        return 2
    app_settings = Settings.from_env()
    logsafe.install(settings.token, settings.webhook_secret or "", level=app_settings.log_level)
    helpline = make_helpline(settings, app_settings.database_url)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(helpline, stop)

    try:
        asyncio.run(run())
    except InvalidToken:
        print("Telegram 不认这个 TELEGRAM_BOT_TOKEN:请到 @BotFather 核对。", flush=True)
        return 2
    except NetworkError as exc:
        print(f"连不上 Telegram 的 Bot API 服务器({type(exc).__name__}):检查网络或 TELEGRAM_API_URL。", flush=True)
        return 3
    return 0
