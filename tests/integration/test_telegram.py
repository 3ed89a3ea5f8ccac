"""The Telegram front end end to end: the real python-telegram-bot library against a local stand-in of the Bot API
(tests/bot/botapi.py), the real Rasa and action servers behind it, and the case database they share.

Each test starts the front end (`bot.app.serve`) in its own event loop and stops it at the end; every test uses its
own Telegram user ids, so the conversations do not meet.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientSession, web
from sqlalchemy import select

from actions.db.models import HardshipCase, Notification, Region
from actions.db.session import make_engine, make_sessionmaker
from actions.services.identities import add_cadre
from actions.services.invites import create_invite
from actions.services.workspace import Officer
from bot import logsafe
from bot.app import Helpline, serve
from bot.rasa import RasaClient
from bot.settings import BotSettings
from tests.bot.botapi import BotApiStandIn
from tests.conftest import make_id_number
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

TOKEN = "7000001:AAH-end-to-end-secret-token_xyz"
CASE_NO = re.compile(r"SB-\d{4}-\d{6}")


class SwitchableRasa:
    """A reverse proxy in front of Rasa that can be taken down: while down, nothing listens on its port."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner: web.AppRunner | None = None

    async def _forward(self, request: web.Request) -> web.Response:
        async with (
            ClientSession() as session,
            session.post(
                self.target + request.path, data=await request.read(), headers={"Content-Type": "application/json"}
            ) as answer,
        ):
            return web.Response(body=await answer.read(), status=answer.status, content_type="application/json")

    async def _up(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", self._forward)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _down(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def up(self) -> None:
        asyncio.run_coroutine_threadsafe(self._up(), self.loop).result(10)

    def down(self) -> None:
        asyncio.run_coroutine_threadsafe(self._down(), self.loop).result(10)

    def close(self) -> None:
        self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def api() -> Iterator[BotApiStandIn]:
    with BotApiStandIn(TOKEN) as standin:
        yield standin


@pytest.fixture(scope="module")
def proxy(rasa_url: str) -> Iterator[SwitchableRasa]:
    switchable = SwitchableRasa(rasa_url)
    switchable.up()
    yield switchable
    switchable.close()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything the front end logs, at DEBUG, through the production set-up (bot.logsafe.install)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    logsafe.install(TOKEN, "hook-secret_1")
    old_level = root.level
    root.setLevel(logging.DEBUG)
    yield stream
    root.setLevel(old_level)
    root.removeHandler(handler)


@dataclass
class Frontend:
    api: BotApiStandIn

    async def said(self, chat: int, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait (without blocking the bot's loop) until the chat has received `count` messages; returns them all."""
        deadline = time.monotonic() + timeout
        while len(self.api.sent_to(chat)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"chat {chat} got {self.api.texts_to(chat)}, expected {count} messages")
            await asyncio.sleep(0.05)
        return self.api.sent_to(chat)

    async def reply(self, chat: int, text: str, timeout: float = 60.0) -> str:
        """Send a text as the user; returns the text of everything the bot sent back to it."""
        before = len(self.api.sent_to(chat))
        self.api.send_text(chat, text)
        return await self.answer_after(chat, before, timeout)

    async def press(self, chat: int, data: str, timeout: float = 60.0) -> str:
        before = len(self.api.sent_to(chat))
        self.api.press_button(chat, data)
        return await self.answer_after(chat, before, timeout)

    async def answer_after(self, chat: int, before: int, timeout: float) -> str:
        await self.said(chat, before + 1, timeout)
        await self.quiet(chat)
        return "\n".join(str(m.get("text") or "") for m in self.api.sent_to(chat)[before:])

    async def quiet(self, chat: int, for_seconds: float = 0.6) -> None:
        """Wait until nothing more arrives for a moment (a reply may come in several messages)."""
        count = -1
        while count != len(self.api.sent_to(chat)):
            count = len(self.api.sent_to(chat))
            await asyncio.sleep(for_seconds)


def settings_for(api: BotApiStandIn, rasa: str, action_url: str, **more: Any) -> BotSettings:
    return BotSettings(
        token=TOKEN, rasa_url=rasa, action_url=action_url, api_url=api.base_url, per_chat_interval=0.05,
        outbox_interval=0.3, **more,
    )  # fmt: skip


def start(
    api: BotApiStandIn, proxy: SwitchableRasa, action_url: str, server_db: str
) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """The front end running in this event loop until the returned event is set."""
    settings = settings_for(api, proxy.url, action_url)
    helpline = Helpline(settings, make_sessionmaker(make_engine(server_db)), RasaClient(proxy.url, action_url))
    helpline.retry_first, helpline.retry_max = 0.5, 1.0
    stop = asyncio.Event()
    return stop, asyncio.create_task(serve(helpline, stop))


@pytest.fixture
async def frontend(
    api: BotApiStandIn, proxy: SwitchableRasa, action_url: str, server_db: str, logs: io.StringIO
) -> AsyncIterator[Frontend]:
    stop, running = start(api, proxy, action_url, server_db)
    yield Frontend(api)
    stop.set()
    await asyncio.wait_for(running, 30)
    written = logs.getvalue()
    assert TOKEN not in written and TOKEN.split(":")[1] not in written


def keyboard_of(message: dict[str, Any]) -> list[tuple[str, str]]:
    return BotApiStandIn.buttons_of(message)


async def test_start_a_policy_question_and_a_button(frontend: Frontend, logs: io.StringIO) -> None:
    chat = 4101
    welcome = await frontend.reply(chat, "/start")
    first = frontend.api.sent_to(chat)[0]
    assert "乡村振兴热线" in welcome and "/privacy" in welcome
    assert "问政策" in [title for title, _ in keyboard_of(first)]

    answer = await frontend.reply(chat, "俺们村低保一个月给多少钱")
    assert "低保" in answer
    sent = frontend.api.sent_to(chat)
    assert all(m.get("parse_mode") == "HTML" for m in sent if m["method"] == "sendMessage")
    offered = [b for m in sent for b in keyboard_of(m)]
    assert offered, "the policy answer offers buttons"
    assert all(len(data.encode()) <= 64 for _, data in offered)
    title, data = offered[-1]
    pressed = await frontend.press(chat, data)
    assert pressed.strip(), f"pressing {title} got an answer"
    calls = [c["method"] for c in frontend.api.calls]
    assert "answerCallbackQuery" in calls and "editMessageReplyMarkup" in calls

    privacy = await frontend.reply(chat, "/privacy")
    assert "隐私" in privacy and "1234" in privacy
    assert "姓名" in await frontend.reply(chat, "俺想报个齐惠保")
    assert "不办了" in await frontend.reply(chat, "/cancel")  # /cancel ends the form it is in
    assert "现在可以帮您" in await frontend.reply(chat, "/help")
    assert "俺们村低保一个月给多少钱" not in "\n".join(
        line for line in logs.getvalue().splitlines() if not line.startswith("DEBUG")
    )  # message text is not logged at INFO and above


async def test_a_complete_declaration_reaches_the_cadre_of_the_village(frontend: Frontend, server_db: str) -> None:
    villager, cadre = 4201, 5201
    engine = make_engine(server_db)
    try:
        with make_sessionmaker(engine).begin() as session:
            add_cadre(session, name="电报·王书记", region_path="淄博市/淄川区/太河镇", chat_id=str(cadre),
                      channel="telegram", admin=False, create_region=False)  # fmt: skip
    finally:
        engine.dispose()
    id_number = make_id_number("19660302", 423)

    opening = await frontend.reply(villager, "俺娘住院做手术花了四万多 家里实在困难")
    assert "申报人叫啥名字" in opening or "名字" in opening
    assert "身份证号" in await frontend.reply(villager, "张秀兰")
    asked_phone = await frontend.reply(villager, id_number)
    assert "手机号" in asked_phone and id_number not in asked_phone
    assert "住哪" in await frontend.reply(villager, "13900004231")
    assert "几口人" in await frontend.reply(villager, "太河镇东峪村")
    assert "收入" in await frontend.reply(villager, "三口人")
    summary = await frontend.reply(villager, "两万")
    last = frontend.api.sent_to(villager)[-1]
    assert id_number not in summary and "139****4231" in summary
    submit = dict(keyboard_of(last))["提交"]
    done = await frontend.press(villager, submit)
    found = CASE_NO.search(done)
    assert found is not None, done

    # The cadre of 太河镇 is told, with a button that opens the case.
    told = await frontend.said(cadre, 1, timeout=30)
    assert found.group() in str(told[0]["text"]) and id_number not in str(told[0]["text"])
    opened = await frontend.press(cadre, dict(keyboard_of(told[0]))["打开这件"])
    assert found.group() in opened and "张秀兰" in opened and id_number not in opened

    # The cadre starts verifying (a button whose payload is over 64 bytes, so it travels as a key) and gives the
    # reason; the villager is told the outcome in plain words.
    steps = dict(b for m in frontend.api.sent_to(cadre) for b in keyboard_of(m))
    assert steps["改为核实中"].startswith("k:")
    before = len(frontend.api.sent_to(villager))
    assert "原因" in await frontend.press(cadre, steps["改为核实中"])
    assert "核实中" in await frontend.reply(cadre, "已电话联系 明天入户")
    outcome = await frontend.said(villager, before + 1, timeout=30)
    assert found.group() in str(outcome[-1]["text"]) and "核实" in str(outcome[-1]["text"])
    assert "看申报进度" in [t for t, _ in keyboard_of(outcome[-1])]
    engine = make_engine(server_db)
    try:
        with make_sessionmaker(engine)() as session:
            case = session.execute(select(HardshipCase).where(HardshipCase.case_no == found.group())).scalar_one()
            row = session.execute(
                select(Notification).where(Notification.case_id == case.id, Notification.channel_user_id == str(cadre))
            ).scalar_one()
            assert row.sent_at is not None and row.attempts == 1
    finally:
        engine.dispose()


async def test_a_repeated_update_is_answered_once(frontend: Frontend) -> None:
    chat = 4301
    update = frontend.api.send_text(chat, "你好")
    await frontend.said(chat, 1)
    await frontend.quiet(chat)
    count = len(frontend.api.sent_to(chat))
    frontend.api.push(update)  # Telegram delivers the same update_id again
    frontend.api.send_text(chat, "谢谢")
    await frontend.said(chat, count + 1)
    await frontend.quiet(chat)
    texts = frontend.api.texts_to(chat)[count:]
    assert len(texts) == 1 and "不客气" in texts[0]


async def test_an_outage_is_announced_and_the_messages_answered_in_order_after_it(
    frontend: Frontend, proxy: SwitchableRasa, logs: io.StringIO
) -> None:
    chat = 4401
    proxy.down()
    try:
        frontend.api.send_text(chat, "低保咋申请")
        frontend.api.send_text(chat, "谢谢")
        told = await frontend.said(chat, 1, timeout=20)
        assert "恢复后马上回复" in str(told[0]["text"])
        await asyncio.sleep(2.0)  # Rasa stays down a while; the bot keeps trying
        assert len(frontend.api.sent_to(chat)) == 1
    finally:
        proxy.up()
    await frontend.said(chat, 3, timeout=60)
    await frontend.quiet(chat)
    texts = frontend.api.texts_to(chat)
    policy = next(i for i, t in enumerate(texts) if "低保" in t and i > 0)
    thanks = next(i for i, t in enumerate(texts) if "不客气" in t)
    assert policy < thanks  # answered in the order they were written
    assert texts.count(told[0]["text"]) == 1  # told once, not once per message or per retry
    assert "Rasa unavailable" in logs.getvalue()


async def test_photos_voice_stickers_locations_and_files_get_a_clear_reply(frontend: Frontend) -> None:
    chat = 4501
    for send in (
        frontend.api.send_photo, frontend.api.send_voice, frontend.api.send_sticker,
        frontend.api.send_location, frontend.api.send_document,
    ):  # fmt: skip
        before = len(frontend.api.sent_to(chat))
        send(chat)
        reply = await frontend.answer_after(chat, before, 30)
        assert "文字" in reply
        assert "问政策" in [t for t, _ in keyboard_of(frontend.api.sent_to(chat)[-1])]


async def test_a_429_is_waited_out(frontend: Frontend) -> None:
    chat = 4601
    frontend.api.fail_next("sendMessage", times=1, retry_after=1)
    started = time.monotonic()
    reply = await frontend.reply(chat, "谢谢")
    assert "不客气" in reply and time.monotonic() - started >= 1.0


async def test_webhook_mode_refuses_requests_without_the_secret(
    api: BotApiStandIn, proxy: SwitchableRasa, action_url: str, server_db: str, logs: io.StringIO
) -> None:
    port = free_port()
    settings = settings_for(
        api, proxy.url, action_url, webhook_url=f"http://127.0.0.1:{port}/tg/hook", webhook_secret="hook-secret_1",
        webhook_listen="127.0.0.1", webhook_port=port,
    )  # fmt: skip
    helpline = Helpline(settings, make_sessionmaker(make_engine(server_db)), RasaClient(proxy.url, action_url))
    stop = asyncio.Event()
    running = asyncio.create_task(serve(helpline, stop))
    frontend = Frontend(api)
    chat = 4701
    try:
        deadline = time.monotonic() + 20
        while api.webhook.get("url") != settings.webhook_url:
            assert time.monotonic() < deadline, "setWebhook was not called"
            await asyncio.sleep(0.05)
        assert api.webhook.get("secret_token") == "hook-secret_1"
        forged = {"update_id": api.next_update_id(), "message": {
            "message_id": 1, "date": int(time.time()), "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "冒充"}, "text": "你好"}}  # fmt: skip
        assert await asyncio.to_thread(api.post_to_webhook, forged, None) == 403
        assert await asyncio.to_thread(api.post_to_webhook, forged, "wrong-secret") == 403
        await asyncio.sleep(1.0)
        assert api.sent_to(chat) == []  # nothing was handled
        reply = await frontend.reply(chat, "谢谢")  # the stand-in posts it with the registered secret
        assert "不客气" in reply
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
    assert TOKEN not in logs.getvalue() and "hook-secret_1" not in logs.getvalue()


async def test_a_start_link_with_an_invitation_code_registers_the_cadre(frontend: Frontend, server_db: str) -> None:
    chat = 4801
    engine = make_engine(server_db)
    try:
        with make_sessionmaker(engine).begin() as session:
            officer = Officer.operator(session, "淄博市/淄川区/太河镇")
            place = session.execute(select(Region).where(Region.path == officer.jurisdiction)).scalar_one()
            code = create_invite(session, officer, "电报·孙委员", place).code
    finally:
        engine.dispose()
    joined = await frontend.reply(chat, f"/start {code}")  # what t.me/<bot>?start=<code> sends
    assert "登记好了" in joined and "太河镇" in joined


async def test_a_message_waiting_for_rasa_when_the_bot_stops_is_answered_after_the_restart(
    api: BotApiStandIn, proxy: SwitchableRasa, action_url: str, server_db: str, logs: io.StringIO
) -> None:
    chat, frontend = 4901, Frontend(api)
    proxy.down()
    try:
        stop, running = start(api, proxy, action_url, server_db)
        api.send_text(chat, "谢谢")
        told = await frontend.said(chat, 1, timeout=20)
        assert "恢复后马上回复" in str(told[0]["text"])
        stop.set()
        await asyncio.wait_for(running, 15)  # stopping does not wait for Rasa
    finally:
        proxy.up()
    stop, running = start(api, proxy, action_url, server_db)
    try:
        answered = await frontend.said(chat, 2, timeout=60)
        assert "不客气" in str(answered[1]["text"])
        await frontend.quiet(chat)
        assert len(api.sent_to(chat)) == 2  # answered once, after the restart
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
    assert TOKEN not in logs.getvalue()
