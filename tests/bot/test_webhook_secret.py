"""The webhook endpoint of bot/app.py and its secret (issue 9, item 5).

- An update is taken only with the X-Telegram-Bot-Api-Secret-Token that was given to setWebhook: none, a wrong one,
  a prefix of it or the same in another case is refused (403) and nothing reaches the update queue.
- With no secret configured the endpoint takes nothing, not even a request without the header.
- Webhook mode does not start without a valid secret (`python -m bot` exits 2 and names the variable, not the token).
- Running, the bot registers its secret with setWebhook; a forged update posted to it is not handled.
- Neither the secret nor what a caller sent as one reaches the log.

tests/bot/test_frontend_parts.py checks the settings themselves; tests/integration/test_telegram.py the same with
Rasa running.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker
from telegram import Update
from telegram.ext import Application

import bot.app
from actions.db.models import TelegramUpdate
from bot.app import Helpline, serve, webhook_app
from bot.rasa import RasaClient
from bot.settings import BotSettings
from tests.bot.botapi import TEST_TOKEN, BotApiStandIn

SECRET = "hook-Secret_1"
PATH = "/tg/hook"


def settings(secret: str | None = SECRET, url: str = f"https://bot.example.org{PATH}", **more: Any) -> BotSettings:
    """Built directly, not from the environment: so the endpoint itself is tested, whatever from_env allows."""
    return BotSettings(token=TEST_TOKEN, webhook_url=url, webhook_secret=secret, **more)


def update(update_id: int = 501, chat: int = 4242) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1, "date": int(time.time()), "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "冒充"}, "text": "查一下SB-2026-000001",
        },
    }  # fmt: skip


@pytest.fixture
def application() -> Application:
    return Application.builder().token(TEST_TOKEN).updater(None).build()


async def client_for(application: Application, bot_settings: BotSettings) -> TestClient:
    client = TestClient(TestServer(webhook_app(application, bot_settings)))
    await client.start_server()
    return client


@pytest.fixture
async def client(application: Application) -> AsyncIterator[TestClient]:
    client = await client_for(application, settings())
    yield client
    await client.close()


@pytest.mark.parametrize(
    "header",
    [None, "", "wrong-secret", SECRET[:-1], SECRET + "x", SECRET.upper(), f"{SECRET[:4]} {SECRET[4:]}", TEST_TOKEN],
    ids=["none", "empty", "wrong", "prefix", "longer", "other case", "a space inside", "the bot token"],
)
async def test_an_update_without_the_secret_is_refused(
    client: TestClient, application: Application, caplog: pytest.LogCaptureFixture, header: str | None
) -> None:
    headers = {} if header is None else {"X-Telegram-Bot-Api-Secret-Token": header}
    with caplog.at_level(logging.INFO):
        response = await client.post(PATH, json=update(), headers=headers)
    assert response.status == 403
    assert application.update_queue.empty()
    assert "refused" in caplog.text and SECRET not in caplog.text
    assert not header or header.strip() not in caplog.text


async def test_an_update_with_the_secret_is_queued(client: TestClient, application: Application) -> None:
    response = await client.post(PATH, json=update(777), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert response.status == 200
    queued = application.update_queue.get_nowait()
    assert (
        isinstance(queued, Update)
        and queued.update_id == 777
        and queued.effective_chat is not None
        and queued.effective_chat.id == 4242
    )
    assert application.update_queue.empty()


async def test_the_secret_does_not_let_a_malformed_body_through(client: TestClient, application: Application) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert (await client.post(PATH, data=b"not json", headers=headers)).status == 400
    assert application.update_queue.empty()


async def test_only_posts_to_the_path_are_taken(client: TestClient, application: Application) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert (await client.get(PATH, headers=headers)).status == 405
    assert (await client.post("/telegram", json=update(), headers=headers)).status == 404
    health = await client.get("/healthz")
    assert health.status == 200 and await health.json() == {"status": "ok"}
    assert application.update_queue.empty()


@pytest.mark.parametrize("secret", [None, ""])
async def test_without_a_configured_secret_the_endpoint_takes_nothing(application: Application, secret: str) -> None:
    client = await client_for(application, settings(secret))
    try:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": ""}, {"X-Telegram-Bot-Api-Secret-Token": "x"}):
            assert (await client.post(PATH, json=update(), headers=headers)).status == 403
    finally:
        await client.close()
    assert application.update_queue.empty()


@pytest.mark.parametrize(
    "secret",
    [None, "", "   ", "有空格 不行", "a" * 257, "semi;colon"],
    ids=["unset", "empty", "blank", "not ascii", "too long", "punctuation"],
)
def test_webhook_mode_does_not_start_without_a_valid_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], secret: str | None
) -> None:
    token = "7000002:AAH-never-printed-token_abcdefghijklmnop"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.example.org/tg/hook")
    monkeypatch.delenv("TELEGRAM_API_URL", raising=False)
    if secret is None:
        monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET", raising=False)
    else:
        monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", secret)

    def must_not_serve(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the bot started without a webhook secret")

    monkeypatch.setattr(bot.app, "serve", must_not_serve)
    monkeypatch.setattr(bot.app, "make_helpline", must_not_serve)
    assert bot.app.main() == 2
    out = capsys.readouterr()
    assert "TELEGRAM_WEBHOOK_SECRET" in out.out
    assert token not in out.out + out.err and token.split(":")[1] not in out.out + out.err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def api() -> Iterator[BotApiStandIn]:
    with BotApiStandIn(TEST_TOKEN) as standin:
        yield standin


async def test_the_running_bot_registers_its_secret_and_refuses_forged_updates(
    api: BotApiStandIn, sessions: sessionmaker, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    running_settings = settings(
        url=f"http://127.0.0.1:{port}{PATH}", api_url=api.base_url, webhook_listen="127.0.0.1", webhook_port=port,
        rasa_url="http://127.0.0.1:9", action_url="http://127.0.0.1:9",  # never asked: nothing gets through
    )  # fmt: skip
    helpline = Helpline(running_settings, sessions, RasaClient(running_settings.rasa_url, running_settings.action_url))
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO):
        running = asyncio.create_task(serve(helpline, stop))
        try:
            deadline = time.monotonic() + 20
            while api.webhook.get("url") != running_settings.webhook_url:
                assert time.monotonic() < deadline, "setWebhook was not called"
                assert not running.done(), running.exception()
                await asyncio.sleep(0.05)
            assert api.webhook.get("secret_token") == SECRET
            for forged in (None, "wrong-secret", SECRET.lower()):
                assert await api.post_to_webhook_async(update(api.next_update_id()), forged) == 403
            await asyncio.sleep(0.3)
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
    assert api.sent_to(4242) == []
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(TelegramUpdate)).scalar_one() == 0
    assert SECRET not in caplog.text and TEST_TOKEN not in caplog.text
