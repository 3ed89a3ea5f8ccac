"""Self-tests of the Bot API stand-in, driven by python-telegram-bot's own Bot."""

from __future__ import annotations

import asyncio
import datetime as dtm
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, Conflict, InvalidToken, RetryAfter
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from tests.bot.botapi import BOT_USER, TEST_TOKEN, BotApiStandIn, EntityParseError, parse_html

# The smallest valid PNG: a 1x1 transparent pixel.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
KEYBOARD = InlineKeyboardMarkup(
    [[InlineKeyboardButton("办理低保", callback_data="/apply"), InlineKeyboardButton("找人工", callback_data="/human")]]
)


@pytest.fixture
def api() -> Iterator[BotApiStandIn]:
    with BotApiStandIn(TEST_TOKEN, webhook_retry_delays=(0.05, 0.05)) as standin:
        yield standin


@pytest.fixture
async def bot(api: BotApiStandIn) -> AsyncIterator[Bot]:
    async with Bot(TEST_TOKEN, base_url=api.base_url) as ptb_bot:
        yield ptb_bot


def seconds(retry_after: int | dtm.timedelta) -> float:
    """RetryAfter.retry_after is an int, or a timedelta with PTB_TIMEDELTA set."""
    return retry_after.total_seconds() if isinstance(retry_after, dtm.timedelta) else float(retry_after)


async def test_get_me_returns_the_bot_user(api: BotApiStandIn, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.first_name, me.username) == (1000, True, "乡村振兴热线", "helpline_test_bot")
    assert me.can_join_groups is False
    assert api.calls[-1]["method"] == "getMe"
    assert api.calls[-1]["status"] == 200


async def test_raw_http_answers_have_telegram_shapes(api: BotApiStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{api.base_url}{TEST_TOKEN}/GETME") as response:  # method names ignore case
            assert response.status == 200
            assert await response.json() == {"ok": True, "result": BOT_USER}
        async with session.post(f"{api.base_url}1000:wrong/getMe") as response:
            assert response.status == 401
            assert await response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with session.post(f"{api.base_url}{TEST_TOKEN}/sendPigeon") as response:
            assert response.status == 404
            assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        # Query string and JSON bodies work too; JSON values keep their types.
        async with session.get(f"{api.base_url}{TEST_TOKEN}/sendMessage", params={"chat_id": "3", "text": "1"}) as r:
            assert (await r.json())["result"]["text"] == "1"
        async with session.post(f"{api.base_url}{TEST_TOKEN}/sendMessage", json={"chat_id": 3, "text": "2"}) as r:
            assert (await r.json())["result"]["message_id"] == 2
    assert api.texts_to(3) == ["1", "2"]


async def test_wrong_token_raises_invalid_token(api: BotApiStandIn) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("1000:AAnotTheRightToken", base_url=api.base_url):
            pass
    assert api.calls[-1]["status"] == 401


async def test_send_message_with_inline_keyboard_is_recorded_and_returned(api: BotApiStandIn, bot: Bot) -> None:
    message = await bot.send_message(42, "<b>您好</b>，请选择：", parse_mode="HTML", reply_markup=KEYBOARD)
    assert isinstance(message, Message)
    assert message.text == "您好，请选择："
    assert message.entities == (MessageEntity(MessageEntity.BOLD, 0, 2),)
    assert message.chat.id == 42
    assert message.from_user is not None and message.from_user.id == 1000
    assert message.reply_markup == KEYBOARD
    second = await bot.send_message(42, "第二条")
    assert second.message_id == message.message_id + 1

    entry = api.sent_to(42)[0]
    assert entry["method"] == "sendMessage"
    assert entry["text"] == "<b>您好</b>，请选择："
    assert entry["parse_mode"] == "HTML"
    assert entry["message_id"] == message.message_id
    assert entry["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "办理低保", "callback_data": "/apply"}, {"text": "找人工", "callback_data": "/human"}]
        ]
    }
    assert api.buttons_of(entry) == [("办理低保", "/apply"), ("找人工", "/human")]
    assert api.texts_to(42) == ["<b>您好</b>，请选择：", "第二条"]
    assert api.texts_to(43) == []


@pytest.mark.parametrize("text", ["123", "1e3", "true", "null", '["a"]'])
async def test_string_parameters_are_not_json_decoded(api: BotApiStandIn, bot: Bot, text: str) -> None:
    message = await bot.send_message(7, text)  # PTB sends chat_id and text both as plain form fields
    assert message.text == text
    assert message.chat.id == 7
    assert api.sent[-1]["text"] == text
    assert api.calls[-1]["params"] == {"chat_id": 7, "text": text}


async def test_get_updates_returns_a_queued_text_and_the_offset_forgets_it(api: BotApiStandIn, bot: Bot) -> None:
    queued = api.send_text(7, "/start 你好", username="zhang_san", first_name="张三")
    (update,) = await bot.get_updates()
    assert update.update_id == queued["update_id"]
    assert update.message is not None and update.message.text == "/start 你好"
    assert update.message.from_user is not None
    assert (update.message.from_user.id, update.message.from_user.username) == (7, "zhang_san")
    assert update.message.chat.id == 7
    assert update.message.chat.first_name == "张三"
    assert update.message.entities == (MessageEntity(MessageEntity.BOT_COMMAND, 0, 6),)

    assert len(await bot.get_updates()) == 1  # not confirmed yet: delivered again
    assert await bot.get_updates(offset=update.update_id + 1) == ()
    assert await bot.get_updates() == ()


async def test_pushed_update_can_repeat_an_update_id(api: BotApiStandIn, bot: Bot) -> None:
    queued = api.send_text(8, "你好")
    (first,) = await bot.get_updates()
    assert await bot.get_updates(offset=first.update_id + 1) == ()
    api.push(queued)
    (again,) = await bot.get_updates(offset=first.update_id + 1)
    assert again.update_id == first.update_id
    assert api.next_update_id() == first.update_id + 1


async def test_long_polling_returns_as_soon_as_an_update_is_queued(api: BotApiStandIn, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.3)
    assert not poll.done()
    started = time.monotonic()
    await asyncio.to_thread(api.send_text, 9, "在吗")
    updates = await asyncio.wait_for(poll, timeout=5)
    assert time.monotonic() - started < 1.0
    assert [u.message.text for u in updates if u.message] == ["在吗"]


async def test_long_polling_waits_for_its_timeout(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 3


async def test_a_second_bot_instance_polling_terminates_the_first(api: BotApiStandIn, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    async with Bot(TEST_TOKEN, base_url=api.base_url) as second_instance:
        assert await second_instance.get_updates() == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, timeout=5)


async def test_fail_next_answers_429_and_ptb_raises_retry_after(api: BotApiStandIn, bot: Bot) -> None:
    api.fail_next("sendmessage", times=2, retry_after=3)
    for _ in range(2):
        with pytest.raises(RetryAfter) as error:
            await bot.send_message(1, "你好")
        assert seconds(error.value.retry_after) == 3
    await bot.send_message(1, "你好")
    assert [call["status"] for call in api.calls if call["method"] == "sendMessage"] == [429, 429, 200]
    assert len(api.sent) == 1


@pytest.mark.parametrize(
    ("callback_data", "accepted"),
    [("办" * 21, True), ("a" * 64, True), ("办" * 22, False), ("a" * 65, False), ("", False)],
)
async def test_callback_data_must_be_1_to_64_bytes(
    api: BotApiStandIn, bot: Bot, callback_data: str, accepted: bool
) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("选", callback_data=callback_data)]])
    if accepted:
        await bot.send_message(1, "请选择", reply_markup=markup)
        assert api.buttons_of(api.sent[-1]) == [("选", callback_data)]
    else:
        with pytest.raises(BadRequest, match="(?i)button_data_invalid|text buttons are unallowed"):
            await bot.send_message(1, "请选择", reply_markup=markup)
        assert api.sent == []


async def test_button_without_text_is_refused(bot: Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("", callback_data="/x")]])
    with pytest.raises(BadRequest, match="(?i)inline keyboard button"):
        await bot.send_message(1, "请选择", reply_markup=markup)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<b>低保", 'end tag corresponding to start tag "b"'),
        ("<b>低保</i>", 'unmatched end tag at byte offset 9, expected "</b>", found "</i>"'),
        ("低保</b>", "unexpected end tag"),
        ("第一行<br>第二行", 'unsupported start tag "br" at byte offset 9'),
        ("收入 < 3000 元", "empty tag name"),
        ("张三 & 李四", 'character "&" must be escaped'),
        ("张三&nbsp;李四", "unsupported html entity"),
        ('<span class="x">秘密</span>', 'tag "span" must have class "tg-spoiler"'),
        ("<b", "unclosed start tag"),
    ],
)
async def test_html_that_telegram_refuses_raises_bad_request(
    api: BotApiStandIn, bot: Bot, text: str, problem: str
) -> None:
    with pytest.raises(BadRequest) as error:
        await bot.send_message(1, text, parse_mode="HTML")
    assert "can't parse entities" in error.value.message.lower()
    assert problem.lower() in error.value.message.lower()
    assert api.sent == []
    await bot.send_message(1, text)  # the same text without parse_mode is fine


async def test_text_is_validated_after_entity_parsing(bot: Bot) -> None:
    with pytest.raises(BadRequest, match="(?i)message text is empty"):
        await bot.send_message(1, "<b> </b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(1, "字" * 4097)
    message = await bot.send_message(1, "<b>" + "字" * 4096 + "</b>", parse_mode="HTML")
    assert message.text is not None and len(message.text) == 4096


def test_parse_html_gives_utf16_entities_and_decodes_entities() -> None:
    text, entities = parse_html(
        '😀 <b>粗<i>斜</i></b> &lt;&amp;&#39;&#x41; <a href="https://x.cn/?a=1&amp;b=2">链</a>'
        '<pre><code class="language-python">x</code></pre><tg-spoiler>s</tg-spoiler>'
    )
    assert text == "😀 粗斜 <&'A 链xs"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 2},
        {"type": "italic", "offset": 4, "length": 1},
        {"type": "text_link", "offset": 11, "length": 1, "url": "https://x.cn/?a=1&b=2"},
        {"type": "pre", "offset": 12, "length": 1, "language": "python"},
        {"type": "spoiler", "offset": 13, "length": 1},
    ]
    with pytest.raises(EntityParseError):
        parse_html("<u>")


async def test_send_photo_and_document_record_their_bytes(api: BotApiStandIn, bot: Bot) -> None:
    photo = await bot.send_photo(5, photo=PNG, caption="<b>证件照</b>", parse_mode="HTML")
    assert photo.photo and photo.photo[-1].file_size == len(PNG)
    assert photo.caption == "证件照"
    document = await bot.send_document(5, document=b"PK\x03\x04 xlsx", filename="申请表.xlsx", caption="请填写")
    assert document.document is not None
    assert document.document.file_name == "申请表.xlsx"
    assert document.document.mime_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert document.document.file_size == 9

    photo_entry, document_entry = api.sent_to(5)
    assert (photo_entry["method"], photo_entry["photo"], photo_entry["caption"]) == ("sendPhoto", PNG, "<b>证件照</b>")
    assert (document_entry["method"], document_entry["document"]) == ("sendDocument", b"PK\x03\x04 xlsx")
    assert (document_entry["filename"], document_entry["caption"]) == ("申请表.xlsx", "请填写")
    assert api.calls[-1]["params"]["document"] == {
        "file_name": "申请表.xlsx",
        "mime_type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "file_size": 9,
    }

    # A file_id the stand-in gave out can be sent again; an unknown one cannot.
    again = await bot.send_photo(6, photo=photo.photo[-1].file_id)
    assert api.sent[-1]["photo"] == photo.photo[-1].file_id
    assert again.photo[-1].file_unique_id == photo.photo[-1].file_unique_id
    with pytest.raises(BadRequest, match="(?i)wrong file identifier"):
        await bot.send_photo(6, photo="AgACAgUAAxkBAAInotknown")
    with pytest.raises(BadRequest, match="(?i)caption is too long"):
        await bot.send_photo(6, photo=PNG, caption="字" * 1025)
    assert len(api.sent) == 3


async def test_press_button_sends_a_callback_query_ptb_parses(api: BotApiStandIn, bot: Bot) -> None:
    api.send_text(11, "你好")
    old_menu = await bot.send_message(11, "请选择", reply_markup=KEYBOARD)
    menu = await bot.send_message(11, "请再选择", reply_markup=KEYBOARD)
    await bot.send_message(11, "没有按钮的消息")
    queued = api.press_button(11, "/human")
    updates = await bot.get_updates()
    query = updates[-1].callback_query
    assert query is not None and query.id == queued["callback_query"]["id"]
    assert query.data == "/human"
    assert query.from_user.id == 11
    assert query.message is not None and query.message.message_id == menu.message_id
    assert await query.answer("收到") is True
    with pytest.raises(BadRequest, match="(?i)query id is invalid"):
        await bot.answer_callback_query("12345")
    with pytest.raises(LookupError, match="/nothing"):
        api.press_button(11, "/nothing")

    # Once a keyboard is edited away, its buttons cannot be pressed; the same edit again is "not modified".
    edited = await bot.edit_message_reply_markup(11, menu.message_id, reply_markup=None)
    assert isinstance(edited, Message) and edited.reply_markup is None
    assert api.sent[-1]["method"] == "editMessageReplyMarkup"
    assert api.press_button(11, "/human")["callback_query"]["message"]["message_id"] == old_menu.message_id
    await bot.edit_message_reply_markup(11, old_menu.message_id, reply_markup=None)
    with pytest.raises(LookupError):
        api.press_button(11, "/human")
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_reply_markup(11, menu.message_id, reply_markup=None)
    stale = api.press_button(11, "/human", message_id=menu.message_id)  # a client showing the old keyboard
    assert stale["callback_query"]["message"]["message_id"] == menu.message_id


async def test_minor_methods_answer_like_telegram(api: BotApiStandIn, bot: Bot) -> None:
    assert await bot.set_my_commands([BotCommand("help", "帮助"), BotCommand("cancel", "取消")]) is True
    assert [c.command for c in await bot.get_my_commands()] == ["help", "cancel"]
    with pytest.raises(BadRequest, match="(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("帮助", "帮助")])
    assert await bot.send_chat_action(3, ChatAction.TYPING) is True
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == ("", 0)

    message = await bot.send_message(3, "正在查询……", reply_markup=KEYBOARD)
    edited = await bot.edit_message_text("查到了", 3, message.message_id)
    assert isinstance(edited, Message) and edited.text == "查到了" and edited.reply_markup is None
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text("查到了", 3, message.message_id)
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("查到了", 3, 999)
    assert api.texts_to(3) == ["正在查询……", "查到了"]
    assert [entry["message_id"] for entry in api.sent_to(3)] == [message.message_id] * 2


async def test_user_media_updates_parse_in_ptb(api: BotApiStandIn, bot: Bot) -> None:
    api.send_photo(12, caption="房屋照片")
    api.send_sticker(12)
    api.send_voice(12, duration=5)
    api.send_location(12)
    api.send_document(12, file_name="户口本.pdf")
    messages = [u.message for u in await bot.get_updates()]
    assert all(m is not None for m in messages)
    photo, sticker, voice, location, document = messages
    assert photo and photo.photo[-1].width == 1280 and photo.caption == "房屋照片"
    assert sticker and sticker.sticker and sticker.sticker.emoji == "👍"
    assert voice and voice.voice and voice.voice.mime_type == "audio/ogg"
    assert location and location.location and round(location.location.latitude) == 35
    assert document and document.document and document.document.file_name == "户口本.pdf"
    assert [m.message_id for m in messages if m] == [1, 2, 3, 4, 5]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny webhook on 127.0.0.1: 403 without the secret "s3cret", 500 for update 99, else 200."""
    received: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != "s3cret":
            return web.Response(status=403)
        update = await request.json()
        received.append(update)
        return web.Response(status=500 if update["update_id"] == 99 else 200)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook", received
    await runner.cleanup()


async def test_post_to_webhook_returns_the_receivers_status(
    api: BotApiStandIn, bot: Bot, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    assert await bot.set_webhook(url, secret_token="s3cret") is True
    assert (api.webhook["url"], api.webhook["secret_token"]) == (url, "s3cret")
    update = {"update_id": 500, "message": {"message_id": 1}}
    # post_to_webhook blocks, and the receiver runs on this loop: call it from another thread.
    assert await asyncio.to_thread(api.post_to_webhook, update) == 200
    assert await asyncio.to_thread(api.post_to_webhook, update, "wrong") == 403
    assert await asyncio.to_thread(api.post_to_webhook, update, None) == 403
    assert await api.post_to_webhook_async(update, "s3cret") == 200
    assert [u["update_id"] for u in received] == [500, 500]
    assert [post["status"] for post in api.webhook_posts] == [200, 403, 403, 200]


async def test_webhook_mode_delivers_queued_updates_and_retries(
    api: BotApiStandIn, bot: Bot, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    api.send_text(13, "早到的消息")
    await bot.set_webhook(url, secret_token="s3cret")
    info = await bot.get_webhook_info()
    assert info.url == url
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()

    api.send_text(13, "你好")
    api.push({"update_id": 99, "message": {"message_id": 9, "date": 0, "chat": {"id": 13, "type": "private"}}})
    await api.wait_for_async(lambda: len(api.webhook_posts) >= 5, timeout=5)
    assert [u["update_id"] for u in received] == [1, 2, 99, 99, 99]  # 99 answered 500: tried three times
    assert [p["status"] for p in api.webhook_posts] == [200, 200, 500, 500, 500]
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"

    assert await bot.delete_webhook() is True
    assert api.webhook["url"] == ""
    api.send_text(13, "又来了")
    (update,) = await bot.get_updates()
    assert update.message is not None and update.message.text == "又来了"


async def test_ptb_application_polls_and_answers(api: BotApiStandIn) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_html("<b>欢迎</b>使用乡村振兴热线", reply_markup=KEYBOARD)

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        await update.callback_query.answer()
        await context.bot.send_message(update.callback_query.from_user.id, f"您选了 {update.callback_query.data}")

    application = Application.builder().token(TEST_TOKEN).base_url(api.base_url).build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(button))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=1)
        api.send_text(21, "/start")
        await api.wait_for_async(lambda: api.texts_to(21))
        api.press_button(21, "/apply")
        await api.wait_for_async(lambda: len(api.texts_to(21)) == 2)
        await application.updater.stop()
        await application.stop()
    assert api.texts_to(21) == ["<b>欢迎</b>使用乡村振兴热线", "您选了 /apply"]
    assert any(call["method"] == "answerCallbackQuery" and call["status"] == 200 for call in api.calls)


def test_wait_for_returns_the_value_or_fails_with_a_dump(api: BotApiStandIn) -> None:
    api.send_text(30, "在吗")
    assert api.wait_for(lambda: [1], timeout=1) == [1]
    started = time.monotonic()
    with pytest.raises(AssertionError) as error:
        api.wait_for(lambda: api.texts_to(30)[0], timeout=0.2)
    assert time.monotonic() - started < 1
    assert "still false after 0.2 s" in str(error.value)
    assert "在吗" in str(error.value)  # the queued update is in the dump
