from __future__ import annotations

import io
import urllib.error
from collections.abc import Iterator
from typing import Any

from bot.console import chat, render_reply, to_plain


def feeder(lines: list[str]) -> Any:
    it: Iterator[str] = iter(lines)

    def read(_prompt: str) -> str:
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None

    return read


def test_html_reply_is_shown_as_plain_text() -> None:
    assert to_plain("<b>张三</b> &amp; 李四 &lt;3") == "张三 & 李四 <3"


def test_buttons_are_numbered_and_returned_in_order() -> None:
    out = io.StringIO()
    parts = [
        {"text": "您好", "buttons": [{"title": "我能问什么", "payload": "/help"}]},
        {"buttons": [{"title": "找人", "payload": "/human_handoff"}]},
    ]
    buttons = render_reply(parts, out)
    assert [b["payload"] for b in buttons] == ["/help", "/human_handoff"]
    assert "[1] 我能问什么" in out.getvalue()
    assert "[2] 找人" in out.getvalue()


def test_typing_a_button_number_sends_its_payload() -> None:
    sent: list[tuple[str, str]] = []

    def send(sender: str, text: str) -> list[dict[str, Any]]:
        sent.append((sender, text))
        return [{"text": "好", "buttons": [{"title": "帮助", "payload": "/help"}]}]

    chat(send, sender="s1", read=feeder(["你好", "1", "7", "/stop", "never sent"]), out=io.StringIO())
    assert sent == [("s1", "你好"), ("s1", "/help"), ("s1", "7")]


def test_unreachable_server_is_reported_and_the_chat_goes_on() -> None:
    calls = []

    def send(sender: str, text: str) -> list[dict[str, Any]]:
        calls.append(text)
        if len(calls) == 1:
            raise urllib.error.URLError("refused")
        return []

    out = io.StringIO()
    chat(send, sender="s1", read=feeder(["a", "b"]), out=out)
    assert calls == ["a", "b"]
    assert "连不上热线服务" in out.getvalue()
    assert "热线没有回复" in out.getvalue()
