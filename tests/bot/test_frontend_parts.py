"""The Telegram front end's parts, without a network: texts, keyboards, the inbox, the outbox, ordering, limits."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import itertools
import logging
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from telegram import Chat, Message, Update, User
from telegram.error import RetryAfter

from actions.db.models import Notification, TelegramButton
from bot import logsafe
from bot.app import ChatOrderedProcessor, load_menu, load_messages
from bot.delivery import decode_data_url, keyboard
from bot.ratelimit import RateLimiter
from bot.settings import BotSettings, SettingsError
from bot.store import Buttons, Inbox, Outbox


def test_data_urls_decode_and_anything_else_does_not() -> None:
    png = b"\x89PNG\r\n"
    assert decode_data_url("data:image/png;base64," + base64.b64encode(png).decode()) == png
    assert decode_data_url("data:image/png;base64,%%%") is None
    assert decode_data_url("https://example.org/a.png") is None


def test_keyboards_map_long_payloads_and_drop_empty_buttons(sessions: sessionmaker) -> None:
    buttons = Buttons(sessions)
    long_payload = '/cadre_cases{"case_no":"SB-2026-000123","target_status":"即时帮扶"}'
    assert len(long_payload.encode()) > 64
    markup = keyboard(
        [
            {"title": "提交", "payload": "提交"},
            {"title": "改为即时帮扶", "payload": long_payload},
            {"title": "", "payload": "x"},
        ],
        buttons.data_for,
    )
    assert markup is not None
    flat = [b for row in markup.inline_keyboard for b in row]
    assert [b.text for b in flat] == ["提交", "改为即时帮扶"]
    assert flat[0].callback_data == "提交"
    key = str(flat[1].callback_data)
    assert len(key.encode()) <= 64 and key.startswith("k:")
    assert buttons.payload_of(key) == long_payload
    assert buttons.data_for(long_payload) == key  # the same payload, the same key, one row
    with sessions() as session:
        assert len(session.execute(select(TelegramButton)).all()) == 1
    assert buttons.payload_of("k:unknown") is None
    assert buttons.data_for("k:looks-like-a-key") != "k:looks-like-a-key"  # a payload never passes for a key


def test_two_chats_storing_the_same_long_payload_at_once_both_get_the_key(
    sessions: sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = '/ask_policy{"policy":"残疾人两项补贴","aspect":"how_to_apply","region":"枣庄"}'
    first = Buttons(sessions).data_for(payload)
    # The second chat looked before the first one's row was committed: its insert then collides.
    monkeypatch.setattr(Session, "get", lambda self, *args, **kwargs: None)
    assert Buttons(sessions).data_for(payload) == first
    monkeypatch.undo()
    assert Buttons(sessions).payload_of(first) == payload


def test_short_titles_go_two_to_a_row_long_ones_alone(sessions: sessionmaker) -> None:
    short = keyboard([{"title": t, "payload": t} for t in ("提交", "修改", "取消")], Buttons(sessions).data_for)
    assert short is not None and [len(r) for r in short.inline_keyboard] == [2, 1]
    long = keyboard([{"title": "医疗保障怎么报销比例", "payload": "a"}, {"title": "b", "payload": "b"}], str)
    assert long is not None and [len(r) for r in long.inline_keyboard] == [1, 1]


def test_the_inbox_takes_an_update_once_and_replays_unhandled_ones(sessions: sessionmaker) -> None:
    inbox = Inbox(sessions)
    assert inbox.claim(10, 7, {"update_id": 10, "message": {"text": "低保咋申请"}})
    assert inbox.claim(11, 7, {"update_id": 11})
    assert inbox.unhandled() == [{"update_id": 10, "message": {"text": "低保咋申请"}}, {"update_id": 11}]
    assert inbox.claim(10, 7, {"update_id": 10})  # recorded, never answered: may run again (a replay)
    inbox.done(10)
    assert not inbox.claim(10, 7, {"update_id": 10})  # answered: a repeat is ignored
    assert inbox.unhandled() == [{"update_id": 11}]


def _notification(sessions: sessionmaker, **fields: Any) -> int:
    with sessions.begin() as session:
        row = Notification(channel="telegram", channel_user_id="5001", text="有新的申报", **fields)
        session.add(row)
        session.flush()
        return int(row.id)


def test_the_outbox_retries_later_and_records_what_cannot_be_delivered(sessions: sessionmaker) -> None:
    outbox = Outbox(sessions)
    first = _notification(sessions, buttons='[{"title": "打开这件", "payload": "/cadre_cases"}]')
    second = _notification(sessions)
    _notification(sessions, sent_at=dt.datetime(2026, 1, 1))
    due = outbox.due()
    assert [p.id for p in due] == [first, second] and due[0].buttons[0]["title"] == "打开这件"

    assert outbox.failed(first, "NetworkError", permanent=False) is False
    assert [p.id for p in outbox.due()] == [second]  # waits before the next try
    assert outbox.failed(second, "Forbidden: bot was blocked by the user", permanent=True) is True
    with sessions() as session:
        one, two = session.get(Notification, first), session.get(Notification, second)
        assert one.attempts == 1 and one.next_attempt_at is not None and one.failed_at is None
        assert two.failed_at is not None and two.last_error.startswith("Forbidden")
    for _ in range(10):
        if outbox.failed(first, "TimedOut", permanent=False):
            break
    with sessions() as session:
        one = session.get(Notification, first)
        assert one.failed_at is not None and one.attempts == 8  # recorded as given up, not dropped
    third = _notification(sessions)
    outbox.sent(third)
    with sessions() as session:
        assert session.get(Notification, third).sent_at is not None


def test_settings_need_a_token_and_a_secret_for_webhooks() -> None:
    with pytest.raises(SettingsError, match="TELEGRAM_BOT_TOKEN"):
        BotSettings.from_env({})
    assert BotSettings.from_env({"TELEGRAM_BOT_TOKEN": "1:abc"}).webhook_url is None
    hook = {"TELEGRAM_BOT_TOKEN": "1:abc", "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/tg/hook"}
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_SECRET") as raised:
        BotSettings.from_env(hook)
    assert "1:abc" not in str(raised.value)
    with pytest.raises(SettingsError):
        BotSettings.from_env({**hook, "TELEGRAM_WEBHOOK_SECRET": "有空格 不行"})
    settings = BotSettings.from_env({**hook, "TELEGRAM_WEBHOOK_SECRET": "s3cret_-x"})
    assert settings.webhook_path == "/tg/hook" and settings.api_url == "https://api.telegram.org/bot"
    with pytest.raises(SettingsError, match="https"):
        BotSettings.from_env({**hook, "TELEGRAM_WEBHOOK_URL": "http://bot.example.org/hook",
                              "TELEGRAM_WEBHOOK_SECRET": "s"})  # fmt: skip


def test_the_token_is_redacted_from_messages_and_tracebacks() -> None:
    token = "123456:AAH-secret-token"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logsafe.RedactToken(token))
    log = logging.getLogger("test.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("POST https://api.telegram.org/bot%s/getMe failed", token)
        try:
            raise ConnectionError(f"cannot reach https://api.telegram.org/bot{token}/getUpdates")
        except ConnectionError:
            log.exception("polling failed")
    finally:
        log.removeHandler(handler)
    written = stream.getvalue()
    assert token not in written and written.count("<token>") == 2


def test_bot_texts_and_the_menu_load() -> None:
    messages = load_messages()
    assert {"privacy", "privacy_line", "unsupported", "outage", "failed", "button_expired"} <= set(messages)
    assert "1234" in messages["privacy"]  # shows how numbers are masked
    assert [b["payload"] for b in load_menu()][:1] == ["/ask_policy"]


def _update(update_id: int, chat_id: int) -> Update:
    user = User(chat_id, "村民", False)
    chat = Chat(chat_id, "private")
    return Update(update_id, message=Message(update_id, dt.datetime.now(dt.timezone.utc), chat, from_user=user))


async def test_one_chat_in_order_different_chats_at_once() -> None:
    processor = ChatOrderedProcessor()
    done: list[tuple[int, int]] = []

    async def work(chat: int, n: int, pause: float) -> None:
        await asyncio.sleep(pause)
        done.append((chat, n))

    started = time.monotonic()
    async with processor:
        await asyncio.gather(
            processor.process_update(_update(1, 100), work(100, 1, 0.3)),
            processor.process_update(_update(2, 100), work(100, 2, 0.0)),
            processor.process_update(_update(3, 200), work(200, 1, 0.3)),
            processor.process_update(_update(4, 100), work(100, 3, 0.0)),
        )
    assert [n for chat, n in done if chat == 100] == [1, 2, 3]
    assert time.monotonic() - started < 0.55  # chat 200 did not wait for chat 100


async def test_sends_to_one_chat_are_spaced_and_a_429_is_waited_out() -> None:
    limiter = RateLimiter(overall_per_second=1000, per_chat_interval=0.2)
    await limiter.initialize()
    times: list[float] = []
    failures = [RetryAfter(1)]

    async def send() -> bool:
        times.append(time.monotonic())
        if failures:
            raise failures.pop()
        return True

    started = time.monotonic()
    for _ in range(3):
        assert await limiter.process_request(send, (), {}, "sendMessage", {"chat_id": 5}, None) is True
    assert times[1] - times[0] >= 1.0  # retry_after honoured
    assert all(b - a >= 0.19 for a, b in itertools.pairwise(times[1:]))
    # Another chat is not held back by this one's spacing (only by the 429 pause, which has passed).
    other = time.monotonic()
    await limiter.process_request(send, (), {}, "sendMessage", {"chat_id": 6}, None)
    assert time.monotonic() - other < 0.1 and time.monotonic() - started < 2.0
