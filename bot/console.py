"""A console chat against the REST channel, like `rasa shell`: buttons are numbered, type the number."""

from __future__ import annotations

import html
import re
import sys
import urllib.error
import uuid
from collections.abc import Callable
from typing import Any, TextIO

_TAG = re.compile(r"<[^>]+>")


def to_plain(text: str) -> str:
    """Telegram HTML → terminal text."""
    return html.unescape(_TAG.sub("", text))


def render_reply(parts: list[dict[str, Any]], out: TextIO) -> list[dict[str, Any]]:
    """Print every part of Rasa's reply; returns the buttons offered, in order."""
    buttons: list[dict[str, Any]] = []
    for part in parts:
        if part.get("text"):
            out.write(to_plain(str(part["text"])) + "\n")
        if part.get("image"):
            out.write(f"[图片] {part['image']}\n")
        for button in part.get("buttons") or []:
            buttons.append(button)
            out.write(f"  [{len(buttons)}] {button.get('title', '')}\n")
    if not parts:
        out.write("(热线没有回复)\n")
    return buttons


def chat(
    send: Callable[[str, str], list[dict[str, Any]]],
    sender: str | None = None,
    read: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
) -> None:
    """The read–send–print loop; /stop, Ctrl-D or Ctrl-C ends it."""
    sender = sender or f"console-{uuid.uuid4().hex[:8]}"
    out.write("乡村振兴热线(控制台)。输入 /stop 或按 Ctrl-D 退出;回复里的按钮输入编号即可。\n")
    buttons: list[dict[str, Any]] = []
    while True:
        try:
            line = read("您:").strip()
        except (EOFError, KeyboardInterrupt):
            out.write("\n")
            return
        if not line:
            continue
        if line == "/stop":
            return
        if line.isdigit() and 1 <= int(line) <= len(buttons):
            line = str(buttons[int(line) - 1].get("payload", ""))
        try:
            parts = send(sender, line)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            out.write("(连不上热线服务,请稍后再试)\n")
            continue
        buttons = render_reply(parts, out)
