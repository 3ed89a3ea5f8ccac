"""A seeded fuzz of the REST channel (issue 9, item 4): hostile messages by category, conversations by sender, the
run against a Rasa server, and the checks every reply must pass.

`conversations(seed, total, senders)` is a pure function of its arguments: one `random.Random(seed)` draws every
choice, so a seed names a run and a finding can be replayed. Four kinds of sender share the messages:

- `free`: messages of every category at random (a message such as 我要申报困难 may start a form of its own);
- `injection`: mostly Rasa payloads aimed at slots, roles and Rasa's own intents (/inform{"decl_id_number": …},
  /greet{"role":"cadre"}, /restart, /EXTERNAL_x, nested and broken JSON);
- `declaration` and `enrollment`: fill in the 困难自主申报 or the 齐惠保 form with plausible answers, and put hostile
  messages between the answers (an invalid 身份证号 as a payload, HTML, templates, control characters), so the fuzz
  reaches the form's validation and the summaries that quote what people typed. They end with 提交 / 确认.

Lone surrogates are left out: they are not UTF-8, so no JSON a real client sends carries them (the integration test
sends one on its own). `run_fuzz` sends each sender's messages in order, one at a time, with at most `concurrency`
requests in flight; `check_exchange` says what is wrong with one reply. The integration test
(tests/integration/test_fuzz.py) and the command line (scripts/fuzz_rest.py) run the same code.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from actions.services.idcard import check_digit

CATEGORIES = (
    "empty",
    "long",
    "control",
    "emoji",
    "traditional",
    "mixed_english",
    "typo",
    "sql",
    "html",
    "template",
    "json",
    "payload",
)
FORM = "form"  # a plausible answer of a form conversation (its start, a name, a 身份证号, 提交)
WEIGHTS = {  # relative frequencies; a 10 kB message costs the server about ten ordinary ones
    "empty": 18,
    "long": 2,
    "control": 27,
    "emoji": 27,
    "traditional": 24,
    "mixed_english": 24,
    "typo": 36,
    "sql": 27,
    "html": 27,
    "template": 27,
    "json": 21,
    "payload": 33,
}
KINDS = {"free": 0.55, "injection": 0.15, "declaration": 0.18, "enrollment": 0.12}
LONG_BYTES = 10_000  # a "10 kB" message: at least this many bytes of UTF-8
# Rasa's own intents that reset the conversation: action_restart and action_session_start say nothing, and the
# domain has no utter_restart, so Rasa answers these with an empty list.
RESETS = re.compile(r"^\s*/(?:restart|session_start)(?![A-Za-z0-9_])")
# The only markup the bot's templates and responses use (Telegram HTML); any other "<" in a reply is raw input.
OWN_TAGS = re.compile(r"</?b>")
ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
# What a reply must never show unless the sender wrote it (a summary quotes their answers): a stack trace, an
# exception's name, a Python or Jinja repr, an internal module, a None. Matched on every text, button title and payload.
LEAKS = re.compile(
    r"Traceback|File \"[^\"]+\", line \d+|(?<![A-Za-z])[A-Z][A-Za-z]*(?:Error|Exception)(?![A-Za-z])|object at 0x"
    r"|<Config|jinja2|<Template|<class '|<function |<bound method|sqlalchemy|sqlite3|rasa_sdk"
    r"|(?<![A-Za-z])(?:None|nan|NaN|undefined|null)(?![A-Za-z])"
)
CASE_NO = re.compile(r"SB-\d{4}-\d{6}")
REFERENCE = re.compile(r"QH\d{4}-[0-9A-Z]+")


@dataclass(frozen=True)
class FuzzMessage:
    """One message and what its reply must not contain."""

    category: str
    text: str
    # Values a template in the text evaluates to (49 for {{7*7}}): never in the reply. None is in the text itself.
    evaluated: tuple[str, ...] = ()
    # HTML the text carries (<script>, <b>fz…</b>): never raw in a reply's text, only escaped.
    raw: tuple[str, ...] = ()

    @property
    def expects_reply(self) -> bool:
        """Every message gets at least one reply part, except Rasa's reset intents (see RESETS)."""
        return not RESETS.match(self.text)


@dataclass(frozen=True)
class Conversation:
    sender: str
    kind: str
    messages: tuple[FuzzMessage, ...]


# ---------------------------------------------------------------------------------------------------------------
# Message material

VILLAGER = (
    "低保怎么申请",
    "齐惠保一年交多少钱",
    "俺家娃上学有补贴没",
    "我的申报到哪一步了",
    "特困供养标准是多少",
    "你好",
    "谢谢",
    "转人工",
    "雨露计划资助谁",
    "残疾人补贴咋领",
    "我的齐惠保办好了吗",
    "能干啥",
    "危房改造给多少钱",
    "好的",
    "再见",
    "你是机器人吗",
    "俺是贫困户交几块",
    "医保报完自己还要出5万,齐惠保能报多少?",
    "淄川有没有低保",
    "在吗",
    "家里老人住院花了好几万",
    "我要申报困难",
    "我要参保",
    "取消",
)
TRADITIONAL = (
    "俺家裡低保怎麼申請",
    "齊惠保一年交多少錢",
    "農村低保標準是多少",
    "特困供養怎麼辦理",
    "家裡老人住院花了好幾萬",
    "我要申報困難",
    "我的申報到哪一步了",
    "殘疾人補貼咋領",
    "雨露計劃資助誰",
    "危房改造給多少錢",
    "你們是機器人嗎",
    "謝謝,再見",
    "轉人工服務",
    "俺家孩子上學沒錢交學費",
    "臨時救助找誰辦",
)
ENGLISH = (
    "hello",
    "How do I apply for 低保?",
    "dibao 怎么 apply",
    "齐惠保 price 多少",
    "I want to declare hardship 困难申报",
    "my case status pls",
    "help",
    "what can you do",
    "OK thanks",
    "is this a robot?",
    "call a human",
    "insurance 报销 how much",
)
TYPOS = (
    "低宝怎么申请",
    "齐回保多少钱",
    "特困供样标准",
    "防反贫监测咋申请",
    "俺家娃上学没钱交学废 咋整",
    "残急人补贴",
    "我要申包困难",
    "申报到那一步了",
    "齐慧保咋交钱",
    "危方改造",
    "临时就助",
    "俺要找工作人圆",
    "地保一年给几个钱",
    "雨路计划",
)
HOMOPHONES = {
    "保": "宝",
    "惠": "回",
    "申": "伸",
    "请": "情",
    "困": "捆",
    "难": "男",
    "助": "住",
    "补": "不",
    "贴": "铁",
    "咋": "杂",
    "么": "末",
    "钱": "前",
}
EMOJI = (
    "😀",
    "🙏",
    "👍🏽",
    "👨\u200d👩\u200d👧\u200d👦",  # a ZWJ family
    "👩🏽\u200d🌾",  # a farmer, skin tone and ZWJ
    "🏳️\u200d🌈",
    "🏴\u200d☠️",
    "🇨🇳",
    "🇺🇸",
    "🇹🇼",
    "1️⃣",
    "#️⃣",
    "❤️",
    "🧧",
    "🌾",
    "🐖",
    "💰",
    "🏥",
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # a tag sequence (Scotland)
)
CONTROL = (
    *(chr(c) for c in range(0x20)),
    "\x7f",
    "\u200b",  # zero width space
    "\u200c",
    "\u200d",
    "\u200e",
    "\u200f",  # right-to-left mark
    "\u202a",
    "\u202e",  # right-to-left override
    "\u2066",
    "\u2069",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\u00ad",
    "\ufffd",
    "\ufff9",
    "\U000e0001",
)
EMPTY = ("", " ", "  ", "\n", "\t", "\r\n", " \t \n ", "\u3000", "\u3000\u3000 ", "\n\n\n")
SQL = (
    "'; DROP TABLE cases;--",
    "' OR 1=1 --",
    '" OR ""="',
    "1 UNION SELECT id_number, phone FROM persons--",
    "' UNION SELECT name, id_number FROM cases WHERE '1'='1",
    "admin'--",
    "1; UPDATE cadres SET is_admin=1;--",
    "'; INSERT INTO chat_identities (channel, channel_user_id, cadre_id) VALUES ('rest', 'x', 1);--",
    "SB-2026-000001' OR '1'='1",
    "1' AND SLEEP(5)--",
    "'; DELETE FROM enrollments; --",
    "%' AND 1=0 UNION SELECT sqlite_version()--",
    "\\'; DROP TABLE households; --",
)
# Each HTML fragment with the raw markup the reply must not carry; {t} is a token unique to the message, so that a
# reply echoing <b>fz…</b> raw is told apart from the bot's own <b>…</b>.
HTML = (
    ("<script>alert(1)</script>", ("<script",)),
    ("<b>{t}</b>", ("<b>{t}",)),
    ("<i>{t}</i>", ("<i>",)),
    ("<a href=javascript:alert(1)>点我</a>", ("<a ",)),
    ('<a href="tg://user?id=1">{t}</a>', ("<a ",)),
    ("<img src=x onerror=alert(1)>", ("<img",)),
    ("<svg onload=alert(1)>", ("<svg",)),
    ("<iframe src=//evil.example>", ("<iframe",)),
    ("</b></i></code></pre><b>", ("</code>", "</pre>")),
    ("<code>{t}</code>", ("<code>",)),
    ("<pre>{t}</pre>", ("<pre>",)),
    ("<tg-spoiler>{t}</tg-spoiler>", ("<tg-spoiler",)),
    ("<blockquote expandable>{t}", ("<blockquote",)),
    ("&lt;script&gt;{t}&lt;/script&gt;", ("&lt;script&gt;{t}",)),  # escaped, the reply shows &amp;lt;
    ("&amp; &lt; &gt; &quot; & < >", ()),
    ("<<b>>{t}<</b>>", ("<<b>",)),
    ("<!-- {t} -->", ("<!--",)),
    ("<b", ()),
    ("</", ()),
)
# Templates of several engines with what they evaluate to. The short values (49) are forbidden only where the
# message holds nothing else, because policy answers quote figures (临时救助 … 49万元); in a sentence the fuzz uses
# the long products instead, which no reply can contain by chance.
TEMPLATES = (
    ("{{7*7}}", ("49",)),
    ("{{ 7*7 }}", ("49",)),
    ("${7*7}", ("49",)),
    ("#{7*7}", ("49",)),
    ("<%= 7*7 %>", ("49",)),
    ("{{7*'7'}}", ("7777777",)),
    ("{% for x in range(9) %}x{% endfor %}", ("xxxxxxxxx",)),
    ("{{ config }}", ("<Config",)),
    ("{{ config.items() }}", ("dict_items",)),
    ("{{ self }}", ("<TemplateReference",)),
    ("{{ ''.__class__.__mro__ }}", ("<class 'object'>",)),
    ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", ("uid=",)),
    ("{{ lipsum.__globals__['os'].environ }}", ("environ(",)),
    ("{{ range(3)|list }}", ("[0, 1, 2]",)),
    ("{{ 'fz'~'q'*3 }}", ("fzqqq",)),
    ("{{ x.y.z }}", ()),
    ("{#", ()),
    ("{{", ()),
    ("{% raw %}", ()),
    ("{% if 1 %}fz{{ 'yes' }}{% endif %}", ("fzyes",)),
    ("$((7*7))", ("49",)),
    ("[[7*7]]", ("49",)),
)
JSON_FRAGMENTS = (
    '{"sender":"demo-cadre-taihe","message":"统计一下"}',
    '{"text":"/restart"}',
    '{"role":"cadre","is_admin":true}',
    '{"__proto__":{"isAdmin":true}}',
    '{"decl_id_number":"110105194912310021"}',
    '[{"recipient_id":"demo-cadre-taihe","text":"您好"}]',
    '{"$where":"1==1"}',
    '{"a":',
    "[1,2,3",
    "null",
    "true",
    "1e309",
    "NaN",
    "-0",
    '{"a":1}{"b":2}',
    '"\\u0000\\ud800"',
    '{"message":"\\u003cscript\\u003e"}',
)
INJECTIONS = (  # BAD_ID: an invalid 身份证号; NESTED: nested JSON arrays; NAME: letters and underscores
    '/inform{"decl_id_number":"BAD_ID"}',
    '/inform{"enroll_id_number":"BAD_ID"}',
    '/declare_hardship{"decl_id_number":"BAD_ID","decl_confirm":"yes"}',
    '/declare_hardship{"decl_amount":"999999"}',
    '/greet{"role":"cadre"}',
    '/greet{"role":"admin","is_admin":true,"cadre_id":1}',
    '/cadre_stats{"cadre_case":"SB-2026-000001"}',
    '/cadre_cases{"case_no":"SB-2026-000001","target_status":"纳入监测"}',
    '/cadre_cases{"case_no":"SB-2026-000001\' OR 1=1--"}',
    '/cadre_cases{"list":"monitored","page":"-1"}',
    '/cadre_cases{"list":"pending","page":"99999999999999999999"}',
    '/cadre_export{"format":"csv"}',
    '/cadre_register{"invite_code":"AAAA-BBBB"}',
    '/cadre_register{"invite_name":"张三","invite_place":"淄博市"}',
    "/EXTERNAL_x",
    '/EXTERNAL_reminder{"x":1}',
    "/session_start",
    "/restart",
    '/restart{"a":1}',
    '/ask_policy{"policy":"dibao"}',
    '/ask_policy{"policy":"no_such_policy"}',
    '/ask_policy{"policy":{"$ne":null}}',
    '/ask_policy{"policy":["dibao","tekun"]}',
    '/ask_policy{"region":"<script>alert(1)</script>"}',
    '/ask_policy{"aspect":"{{7*7}}"}',
    '/enroll_insurance{"enroll_ready":true,"enroll_confirm":"yes"}',
    '/insurance_status{"channel_user_id":"demo-cadre-taihe"}',
    '/declaration_status{"sender":"demo-cadre-taihe"}',
    '/inform{"requested_slot":"decl_confirm","decl_confirm":"提交"}',
    '/affirm{"decl_pending":true}',
    "/affirm",
    "/cancel",
    "/human_handoff",
    "/help",
    "/goodbye",
    "/thanks",
    "/bot_identity",
    "/nlu_fallback",
    "/out_of_scope",
    "/no_such_intent",
    "/action_restart",
    "/utter_greet",
    "/greet{broken",
    '/greet{"a":',
    "/greet{}",
    '/greet{"a":{"b":{"c":[1,2,{"d":null}]}}}',
    "/greet@0.1",
    "/greet@abc",
    '/greet@1.5{"x":1}',
    "//greet",
    "/ greet",
    "/greet/greet",
    "/",
    '/greet{"a":NESTED}',
    "/NAME",
)


def valid_id_number(rng: random.Random) -> str:
    """A valid 身份证号 in 370399, a region code no real county has; no "49", a template's value, in it."""
    while True:
        birth = f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        first17 = f"370399{birth}{rng.randint(1, 999):03d}"
        number = first17 + check_digit(first17)
        if "49" not in number:
            return number


def invalid_id_number(rng: random.Random) -> str:
    """An 身份证号 that fails GB 11643: a wrong check digit, length, birth date, characters or region."""
    good = valid_id_number(rng)
    wrong_check = next(c for c in "0123456789X" if c != good[-1] and c != check_digit(good[:17]))
    return rng.choice(
        (
            good[:17] + wrong_check,
            good[:-1],
            good + "0",
            good[:6] + "20991301" + good[14:],
            good[:6] + "19000230" + good[14:],
            good[:10] + "AB" + good[12:],
            "000000000000000000",
            "123",
            "37039919800101001",
            "99" + good[2:],
        )
    )


def phone_number(rng: random.Random) -> str:
    while True:
        number = f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"
        if "49" not in number:
            return number


def person_name(rng: random.Random) -> str:
    return rng.choice("王李张刘陈杨赵黄周吴孙马") + rng.choice(
        ("桂英", "志强", "春花", "建国", "秀兰", "德胜", "玉梅", "小燕", "国庆", "红霞", "长顺", "凤芝")
    )


def token(rng: random.Random) -> str:
    """A marker such as fzq8k2: unique enough that a reply showing it can only be echoing the message."""
    return "fz" + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(5))


def insert_at_random(rng: random.Random, text: str, piece: str) -> str:
    at = rng.randint(0, len(text))
    return text[:at] + piece + text[at:]


def embed(rng: random.Random, piece: str) -> str:
    """The piece alone, or before, after or inside something a villager asks."""
    where = rng.random()
    base = rng.choice(VILLAGER)
    if where < 0.4:
        return piece
    if where < 0.6:
        return f"{base} {piece}"
    if where < 0.8:
        return f"{piece}{base}"
    return insert_at_random(rng, base, piece)


def typo(rng: random.Random, text: str) -> str:
    """A villager's slip: a homophone, a dropped, doubled or swapped character, pinyin, trailing filler."""
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        if not chars:
            break
        at = rng.randrange(len(chars))
        move = rng.random()
        if move < 0.35 and chars[at] in HOMOPHONES:
            chars[at] = HOMOPHONES[chars[at]]
        elif move < 0.5 and len(chars) > 2:
            del chars[at]
        elif move < 0.65:
            chars.insert(at, chars[at])
        elif move < 0.8 and at + 1 < len(chars):
            chars[at], chars[at + 1] = chars[at + 1], chars[at]
        else:
            chars.append(rng.choice(("。。。", "??", "啊", "哈", " ", "!!!", "呢", "…")))
    text = "".join(chars)
    if rng.random() < 0.1:
        text = text.replace("低保", "dibao").replace("齐惠保", "qihuibao")
    return text


# ---------------------------------------------------------------------------------------------------------------
# One message per category


def make_empty(rng: random.Random) -> FuzzMessage:
    return FuzzMessage("empty", rng.choice(EMPTY) * rng.randint(1, 3))


def make_long(rng: random.Random) -> FuzzMessage:
    """At least 10 kB of UTF-8: Chinese (3,334 to 10,000 characters) or ASCII."""
    if rng.random() < 0.5:
        target = rng.choice((LONG_BYTES, LONG_BYTES, 30_000))
        parts: list[str] = []
        size = 0
        while size < target:
            piece = rng.choice((*VILLAGER, *TYPOS, "俺家的事说来话长,", "。", ",", "\n"))
            parts.append(piece)
            size += len(piece.encode())
        return FuzzMessage("long", "".join(parts))
    words = ("help", "please", "dibao", "money", "the", "village", "insurance", "A" * 40, "1234567890", "\n")
    parts = []
    size = 0
    while size < LONG_BYTES + 240:
        piece = rng.choice(words) + " "
        parts.append(piece)
        size += len(piece)
    return FuzzMessage("long", "".join(parts))


def make_control(rng: random.Random) -> FuzzMessage:
    if rng.random() < 0.25:
        return FuzzMessage("control", "".join(rng.choice(CONTROL) for _ in range(rng.randint(1, 12))))
    text = rng.choice(VILLAGER)
    for _ in range(rng.randint(1, 5)):
        text = insert_at_random(rng, text, rng.choice(CONTROL))
    return FuzzMessage("control", text)


def make_emoji(rng: random.Random) -> FuzzMessage:
    emoji = "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 8)))
    if rng.random() < 0.4:
        return FuzzMessage("emoji", emoji)
    return FuzzMessage("emoji", insert_at_random(rng, rng.choice(VILLAGER), emoji))


def make_traditional(rng: random.Random) -> FuzzMessage:
    text = rng.choice(TRADITIONAL)
    return FuzzMessage("traditional", typo(rng, text) if rng.random() < 0.2 else text)


def make_mixed_english(rng: random.Random) -> FuzzMessage:
    text = rng.choice(ENGLISH)
    if rng.random() < 0.4:
        text = f"{text} {rng.choice(VILLAGER)}"
    return FuzzMessage("mixed_english", text.upper() if rng.random() < 0.1 else text)


def make_typo(rng: random.Random) -> FuzzMessage:
    text = rng.choice(TYPOS) if rng.random() < 0.4 else typo(rng, rng.choice(VILLAGER))
    return FuzzMessage("typo", text)


def make_sql(rng: random.Random) -> FuzzMessage:
    return FuzzMessage("sql", embed(rng, rng.choice(SQL)))


def html_piece(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    fragment, raw = rng.choice(HTML)
    t = token(rng)
    return fragment.format(t=t), tuple(r.format(t=t) for r in raw)


def make_html(rng: random.Random) -> FuzzMessage:
    piece, raw = html_piece(rng)
    if rng.random() < 0.3:
        second, more = html_piece(rng)
        piece, raw = piece + second, raw + more
    return FuzzMessage("html", embed(rng, piece), raw=raw)


def template_piece(rng: random.Random, alone: bool) -> tuple[str, tuple[str, ...]]:
    """A template and its values; in a sentence, 7*7 becomes a product of two 3-digit numbers."""
    text, values = rng.choice(TEMPLATES)
    if not alone and any(len(v) < 4 for v in values):
        a, b = rng.randint(101, 999), rng.randint(101, 999)
        text, values = text.replace("7*7", f"{a}*{b}"), (str(a * b),)
    return text, values


def make_template(rng: random.Random, alone: bool | None = None) -> FuzzMessage:
    alone = rng.random() < 0.5 if alone is None else alone
    piece, values = template_piece(rng, alone)
    text = piece if alone else embed(rng, piece)
    return FuzzMessage("template", text, evaluated=tuple(v for v in values if v not in text))


def make_json(rng: random.Random) -> FuzzMessage:
    if rng.random() < 0.15:
        depth = rng.randint(10, 400)
        return FuzzMessage("json", "[" * depth + "]" * depth)
    if rng.random() < 0.15:
        data = {"sender": token(rng), "message": rng.choice(VILLAGER), "metadata": {"channel": "telegram"}}
        return FuzzMessage("json", json.dumps(data, ensure_ascii=rng.random() < 0.5))
    return FuzzMessage("json", embed(rng, rng.choice(JSON_FRAGMENTS)))


def make_payload(rng: random.Random) -> FuzzMessage:
    depth = rng.randint(1, 200)  # Rasa's own json.loads gives up near 1000 levels: the test probes that apart
    name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(1, 20)))
    text = (
        rng.choice(INJECTIONS)
        .replace("BAD_ID", invalid_id_number(rng))
        .replace("NESTED", "[" * depth + "]" * depth)
        .replace("NAME", name)
    )
    return FuzzMessage("payload", text, evaluated=("49",) if "{{7*7}}" in text else ())


MAKERS: dict[str, Callable[[random.Random], FuzzMessage]] = {
    "empty": make_empty,
    "long": make_long,
    "control": make_control,
    "emoji": make_emoji,
    "traditional": make_traditional,
    "mixed_english": make_mixed_english,
    "typo": make_typo,
    "sql": make_sql,
    "html": make_html,
    "template": make_template,
    "json": make_json,
    "payload": make_payload,
}


def fuzz_message(rng: random.Random, weights: dict[str, int] = WEIGHTS) -> FuzzMessage:
    category = rng.choices(list(weights), weights=list(weights.values()))[0]
    return MAKERS[category](rng)


# ---------------------------------------------------------------------------------------------------------------
# Form conversations


def hostile_free_text(rng: random.Random, plain: str) -> FuzzMessage:
    """A free-text answer (a description, an address) that carries HTML, a template, SQL, control characters or
    emoji around enough Chinese to be accepted, so the summary that quotes it is checked too."""
    kind = rng.choices(("html", "template", "sql", "control", "emoji"), weights=(4, 3, 1, 1, 1))[0]
    if kind == "html":
        piece, raw = html_piece(rng)
        return FuzzMessage("html", insert_at_random(rng, plain, piece), raw=raw)
    if kind == "template":
        piece, values = template_piece(rng, alone=False)
        text = insert_at_random(rng, plain, piece)
        return FuzzMessage("template", text, evaluated=tuple(v for v in values if v not in text))
    if kind == "sql":
        return FuzzMessage("sql", insert_at_random(rng, plain, rng.choice(SQL)))
    if kind == "control":
        text = plain
        for _ in range(rng.randint(1, 3)):
            text = insert_at_random(rng, text, rng.choice(CONTROL))
        return FuzzMessage("control", text)
    return FuzzMessage("emoji", insert_at_random(rng, plain, rng.choice(EMOJI)))


def answer(text: str) -> FuzzMessage:
    return FuzzMessage(FORM, text)


FORM_FUZZ = {**WEIGHTS, "long": 1, "payload": 54, "html": 36, "template": 36}


def fuzz_between(rng: random.Random) -> list[FuzzMessage]:
    """None, one or two hostile messages before a form's next answer."""
    return [fuzz_message(rng, FORM_FUZZ) for _ in range(rng.choices((0, 1, 2), weights=(5, 4, 2))[0])]


def bad_id_attempts(rng: random.Random, slot: str) -> list[FuzzMessage]:
    """Before the 身份证号: sometimes an invalid one, typed or injected as a payload aimed at the slot."""
    attempts = []
    for _ in range(rng.choices((0, 1, 2), weights=(4, 4, 2))[0]):
        bad = invalid_id_number(rng)
        if rng.random() < 0.5:
            attempts.append(FuzzMessage("payload", f'/inform{{"{slot}":"{bad}"}}'))
        else:
            attempts.append(FuzzMessage(FORM, bad))
    return attempts


def declaration_block(rng: random.Random) -> list[FuzzMessage]:
    """困难自主申报 from its start to 提交, each answer preceded by fuzz."""
    start = rng.choice(
        ("我要申报困难", "申请防返贫监测", "/declare_hardship", '/declare_hardship{"decl_amount":"999999"}')
    )
    plain_description = rng.choice(
        ("日子过不下去了 想让村里帮帮", "今年家里太难了 想报个困难", "家里遇上难处了 手头紧", "家里出了点事 想申请帮扶")
    )
    plain_address = rng.choice(("太河镇东峪村", "淄川区太河镇东峪村", "淄博市淄川区太河镇", "东峪村"))
    steps: list[list[FuzzMessage]] = [
        [hostile_free_text(rng, plain_description) if rng.random() < 0.8 else answer(plain_description)],
        [answer(rng.choice(("因病", "因灾", "因学", "其他", "因意外事故")))],
        [answer(rng.choice(("三万", "5000", "说不准", "两万块", "1.5万")))],
        [answer(person_name(rng))],
        [*bad_id_attempts(rng, "decl_id_number"), answer(valid_id_number(rng))],
        [answer(phone_number(rng))],
        [hostile_free_text(rng, plain_address) if rng.random() < 0.7 else answer(plain_address)],
        [answer(rng.choice(("四口人", "3", "两口人", "五口")))],
        [answer(rng.choice(("两万", "30000", "一万五", "八千")))],
        [answer(rng.choice(("提交", "提交", "确认", "/affirm")))],
    ]
    messages = [answer(start) if not start.startswith("/") else FuzzMessage("payload", start)]
    for step in steps:
        messages += fuzz_between(rng) + step
    if rng.random() < 0.5:
        messages.append(answer("我的申报到哪一步了"))
    return messages


def enrollment_block(rng: random.Random) -> list[FuzzMessage]:
    """齐惠保 enrollment from its start to 确认, each answer preceded by fuzz."""
    messages = [answer(rng.choice(("我要参保", "给俺娘报个齐惠保", "我要参加齐惠保")))]
    for step in (
        [answer(person_name(rng))],
        [*bad_id_attempts(rng, "enroll_id_number"), answer(valid_id_number(rng))],
        [answer(phone_number(rng))],
        [answer(rng.choice(("确认", "确认", "对", "/affirm")))],
    ):
        messages += fuzz_between(rng) + step
    if rng.random() < 0.5:
        messages.append(answer("我的齐惠保办好了吗"))
    return messages


def conversation_messages(rng: random.Random, kind: str, size: int) -> list[FuzzMessage]:
    messages: list[FuzzMessage] = []
    while len(messages) < size:
        if kind == "declaration":
            messages += declaration_block(rng)
        elif kind == "enrollment":
            messages += enrollment_block(rng)
        elif kind == "injection":
            messages.append(make_payload(rng) if rng.random() < 0.7 else fuzz_message(rng))
        else:
            messages.append(fuzz_message(rng))
    return messages[:size]


def sizes(rng: random.Random, total: int, senders: int, minimum: int) -> list[int]:
    """`senders` conversation lengths of at least `minimum` that add up to `total`, some long, some short."""
    if senders * minimum > total:
        raise ValueError(f"{total} messages cannot give {senders} senders {minimum} each")
    weights = [rng.uniform(0.2, 2.0) for _ in range(senders)]
    counts = Counter(rng.choices(range(senders), weights=weights, k=total - senders * minimum))
    return [minimum + counts[n] for n in range(senders)]


def conversations(
    seed: int, total: int = 10_000, senders: int = 200, minimum: int = 5, prefix: str | None = None
) -> list[Conversation]:
    """`total` messages over `senders` conversations, all drawn from `random.Random(seed)`.

    The senders are `fuzz-<seed>-<n>` unless `prefix` says otherwise (a second run against the same servers needs
    new conversation ids: Rasa would continue the old conversations, and the audit would find the old cases).
    """
    rng = random.Random(seed)
    kinds = list(KINDS)
    plan = [kinds[n % len(kinds)] for n in range(len(kinds))]  # every kind at least once
    plan += rng.choices(kinds, weights=list(KINDS.values()), k=senders - len(plan))
    rng.shuffle(plan)
    lengths = sizes(rng, total, senders, minimum)
    return [
        Conversation(f"{prefix or f'fuzz-{seed}-'}{n}", kind, tuple(conversation_messages(rng, kind, lengths[n])))
        for n, kind in enumerate(plan[:senders])
    ]


def messages_of(convs: Iterable[Conversation]) -> list[FuzzMessage]:
    return [m for c in convs for m in c.messages]


# ---------------------------------------------------------------------------------------------------------------
# The run


@dataclass
class Exchange:
    """One message and what came back: the status and reply parts, or the transport error."""

    sender: str
    index: int
    message: FuzzMessage
    status: int | None = None
    parts: Any = None
    error: str | None = None
    seconds: float = 0.0


@dataclass
class FuzzRun:
    exchanges: list[Exchange] = field(default_factory=list)
    seconds: float = 0.0
    finished: bool = True  # False when the deadline stopped the run
    # Messages sent but not answered when the deadline stopped the run: the server may still have handled them.
    unanswered: list[tuple[str, int]] = field(default_factory=list)


async def post(client: httpx.AsyncClient, rasa_url: str, sender: str, text: str) -> tuple[int | None, Any, str | None]:
    """One round trip; a transport failure or a body that is not JSON is returned as an error, never raised."""
    try:
        response = await client.post(f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text})
    except httpx.HTTPError as exc:
        return None, None, f"{type(exc).__name__}: {exc}"
    try:
        return response.status_code, response.json(), None
    except ValueError:
        return response.status_code, None, f"not JSON: {response.text[:200]!r}"


async def run_fuzz(
    rasa_url: str,
    convs: Sequence[Conversation],
    *,
    concurrency: int = 16,
    request_timeout: float = 30.0,
    deadline: float = 600.0,
    progress: Callable[[int], None] | None = None,
) -> FuzzRun:
    """Send every conversation, each in order, at most `concurrency` at a time; stop at `deadline` seconds."""
    run = FuzzRun()
    queue: asyncio.Queue[Conversation] = asyncio.Queue()
    for conversation in convs:
        queue.put_nowait(conversation)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(request_timeout, connect=10.0)
    started = time.monotonic()
    in_flight: dict[str, int] = {}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            conversation = queue.get_nowait()
            for index, message in enumerate(conversation.messages):
                sent = time.monotonic()
                in_flight[conversation.sender] = index
                status, parts, error = await post(client, rasa_url, conversation.sender, message.text)
                del in_flight[conversation.sender]
                run.exchanges.append(
                    Exchange(conversation.sender, index, message, status, parts, error, time.monotonic() - sent)
                )
                if progress is not None:
                    progress(len(run.exchanges))

    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        done, pending = await asyncio.wait(workers, timeout=deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()  # a bug in the driver itself surfaces here
    run.finished = not pending
    run.unanswered = sorted(in_flight.items())
    run.seconds = time.monotonic() - started
    return run


# ---------------------------------------------------------------------------------------------------------------
# The checks


@dataclass(frozen=True)
class Finding:
    kind: str
    sender: str
    index: int
    category: str
    message: str
    reply: str

    def describe(self) -> str:
        return f"{self.kind} [{self.category}] {self.sender}#{self.index}: {self.message!r} -> {self.reply!r}"


FINDING_KINDS = (
    "http_5xx",
    "http_other",
    "transport",
    "not_a_list",
    "wrong_recipient",
    "silent",
    "template_evaluated",
    "unescaped_html",
    "leak",
)


def reply_texts(parts: list[dict[str, Any]]) -> list[str]:
    return [str(p["text"]) for p in parts if isinstance(p, dict) and p.get("text") is not None]


def reply_strings(parts: list[dict[str, Any]]) -> list[str]:
    """Everything a user sees: the texts, and the titles and payloads of the buttons."""
    strings = reply_texts(parts)
    for part in parts:
        for button in (part.get("buttons") or []) if isinstance(part, dict) else []:
            strings += [str(button.get("title", "")), str(button.get("payload", ""))]
    return strings


def markup_problems(text: str) -> list[str]:
    """Telegram HTML the bot did not write: a "<" that does not open or close <b>, a "&" that is no entity."""
    problems = []
    for found in re.finditer("<", text):
        if not OWN_TAGS.match(text, found.start()):
            problems.append(text[found.start() : found.start() + 20])
    for found in re.finditer("&", text):
        if not ENTITY.match(text, found.start()):
            problems.append(text[found.start() : found.start() + 12])
    return problems


def check_exchange(exchange: Exchange, said: str = "") -> list[Finding]:
    """What is wrong with one reply; an empty list when nothing is.

    `said` is what the sender wrote before in the conversation: a reply may quote it (the form's summary quotes the
    address typed three messages earlier), so a leak or a template's value found there is not counted.
    """
    message = exchange.message
    said = f"{said}\n{message.text}"

    def finding(kind: str, reply: Any) -> Finding:
        return Finding(kind, exchange.sender, exchange.index, message.category, message.text[:300], str(reply)[:500])

    if exchange.status is None:
        return [finding("transport", exchange.error)]
    if exchange.status >= 500:
        return [finding("http_5xx", f"{exchange.status} {exchange.parts or exchange.error}")]
    if exchange.status != 200:
        return [finding("http_other", f"{exchange.status} {exchange.parts or exchange.error}")]
    parts = exchange.parts
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        return [finding("not_a_list", parts if exchange.error is None else exchange.error)]
    found: list[Finding] = []
    if any(p.get("recipient_id") != exchange.sender for p in parts):
        found.append(finding("wrong_recipient", [p.get("recipient_id") for p in parts]))
    if message.expects_reply and not parts:
        found.append(finding("silent", parts))
    strings = reply_strings(parts)
    everything = "\n".join(strings)
    for value in message.evaluated:
        if value in everything and value not in said:
            found.append(finding("template_evaluated", f"{value!r} in {everything[:400]}"))
    texts = "\n".join(reply_texts(parts))
    raw = [r for r in message.raw if r in texts]
    problems = markup_problems(texts)
    if raw or problems:
        found.append(finding("unescaped_html", f"{raw + problems} in {texts[:400]}"))
    leaks = sorted({m.group() for m in LEAKS.finditer(everything) if m.group() not in said})
    if leaks:
        found.append(finding("leak", f"{leaks} in {everything[:400]}"))
    return found


def check_run(run: FuzzRun) -> list[Finding]:
    findings: list[Finding] = []
    said: dict[str, list[str]] = {}
    for exchange in sorted(run.exchanges, key=lambda e: (e.sender, e.index)):
        earlier = said.setdefault(exchange.sender, [])
        findings += check_exchange(exchange, "\n".join(earlier))
        earlier.append(exchange.message.text)
    return findings


# Control and direction characters a reply quotes from the user (not the ZWJ inside an emoji sequence).
CONTROL_IN_REPLY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def summarize(run: FuzzRun, findings: Sequence[Finding], seed: int, concurrency: int) -> dict[str, Any]:
    """The figures of a run, for the console and var/test/fuzz-report.json."""
    exchanges = run.exchanges
    latencies = sorted(e.seconds for e in exchanges)
    ok = [e for e in exchanges if e.status == 200 and isinstance(e.parts, list)]
    kinds = Counter(f.kind for f in findings)
    by_category: dict[str, dict[str, int]] = {}
    seconds: dict[str, float] = {}
    for e in exchanges:
        row = by_category.setdefault(e.message.category, {"sent": 0, "empty_replies": 0, "findings": 0})
        row["sent"] += 1
        row["empty_replies"] += int(e.status == 200 and e.parts == [])
        seconds[e.message.category] = seconds.get(e.message.category, 0.0) + e.seconds
    for category, row in by_category.items():
        row["mean_latency_ms"] = round(seconds[category] * 1000 / row["sent"])
    for f in findings:
        by_category[f.category]["findings"] += 1
    echoes = [e for e in ok if any(CONTROL_IN_REPLY.search(t) for t in reply_texts(e.parts))]
    quantile = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else latencies * 99
    return {
        "seed": seed,
        "senders": len({e.sender for e in exchanges}),
        "messages": len(exchanges),
        "finished": run.finished,
        "unanswered_at_deadline": len(run.unanswered),
        "concurrency": concurrency,
        "elapsed_s": round(run.seconds, 1),
        "messages_per_s": round(len(exchanges) / run.seconds, 1) if run.seconds else 0.0,
        "latency_s": {
            "p50": round(quantile[49], 3) if quantile else None,
            "p95": round(quantile[94], 3) if quantile else None,
            "max": round(latencies[-1], 3) if latencies else None,
        },
        "http_status": dict(Counter(str(e.status) for e in exchanges)),
        "http_5xx": sum(1 for e in exchanges if e.status is not None and e.status >= 500),
        "transport_errors": sum(1 for e in exchanges if e.status is None),
        "empty_replies": sum(1 for e in ok if not e.parts),
        "empty_replies_expected": sum(1 for e in ok if not e.parts and not e.message.expects_reply),
        "reply_parts": sum(len(e.parts) for e in ok),
        "replies_quoting_escaped_markup": sum(1 for e in ok if any("&lt;" in t for t in reply_texts(e.parts))),
        "replies_quoting_templates": sum(
            1 for e in ok if any("{{" in t or "{%" in t or "${" in t for t in reply_texts(e.parts))
        ),
        "replies_echoing_control_characters": len(echoes),
        "control_character_echoes": [
            f"{e.sender}#{e.index}: {e.message.text[:80]!r} -> "
            f"{next(t for t in reply_texts(e.parts) if CONTROL_IN_REPLY.search(t))[:200]!r}"
            for e in echoes[:3]
        ],
        "findings": {kind: kinds.get(kind, 0) for kind in FINDING_KINDS},
        "by_category": dict(sorted(by_category.items())),
        "examples": [f.describe()[:600] for kind in FINDING_KINDS for f in [x for x in findings if x.kind == kind][:5]],
    }


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"fuzz seed {summary['seed']}: {summary['messages']} messages from {summary['senders']} senders in "
        f"{summary['elapsed_s']} s ({summary['messages_per_s']} msg/s, {summary['concurrency']} in flight"
        f"{'' if summary['finished'] else ', STOPPED AT THE DEADLINE'})",
        f"latency p50 {summary['latency_s']['p50']} s, p95 {summary['latency_s']['p95']} s, "
        f"max {summary['latency_s']['max']} s; HTTP {summary['http_status']}",
        f"5xx {summary['http_5xx']}, transport errors {summary['transport_errors']}, empty replies "
        f"{summary['empty_replies']} ({summary['empty_replies_expected']} to /restart or /session_start), "
        f"replies echoing control characters {summary['replies_echoing_control_characters']}; replies quoting "
        f"the user's markup escaped {summary['replies_quoting_escaped_markup']}, templates unevaluated "
        f"{summary['replies_quoting_templates']}",
        "findings: " + ", ".join(f"{k} {v}" for k, v in summary["findings"].items()),
        f"{'category':<15}{'sent':>7}{'empty':>7}{'findings':>10}{'mean ms':>9}",
    ]
    for category, row in summary["by_category"].items():
        lines.append(
            f"{category:<15}{row['sent']:>7}{row['empty_replies']:>7}{row['findings']:>10}{row['mean_latency_ms']:>9}"
        )
    lines += summary["examples"] + summary["control_character_echoes"]
    for key in ("probes", "database"):
        if key in summary:
            lines.append(f"{key}: {json.dumps(summary[key], ensure_ascii=False)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# The case database after the run

# The forms' own button words and answers to other steps, which are no one's name.
FORM_WORDS = frozenset(
    ("提交", "确认", "修改", "取消", "说不准", "因病", "因残", "因学", "因灾", "其他", "两万", "三万")
)
CASE_DONE = "您的申报编号是"  # actions/templates/decl_done.j2, the reply to 提交
ENROLL_DONE = "参保登记好了"  # actions/templates/enroll_done.j2, the reply to 确认


def privileged_state(database_url: str) -> dict[str, int]:
    """Counts of what only a cadre, an administrator or an operator can create: unchanged by any fuzz."""
    from sqlalchemy import func, select

    from actions.db.models import Cadre, CadreInvite, CaseEvent, ChatIdentity, HelpMeasure, HouseholdChange
    from actions.db.session import make_engine, make_sessionmaker

    queries = {
        "cadres": select(func.count()).select_from(Cadre),
        "admin_cadres": select(func.count()).select_from(Cadre).where(Cadre.is_admin.is_(True)),
        "cadre_chat_identities": select(func.count())
        .select_from(ChatIdentity)
        .where(ChatIdentity.cadre_id.isnot(None)),
        "cadre_invites": select(func.count()).select_from(CadreInvite),
        "used_cadre_invites": select(func.count()).select_from(CadreInvite).where(CadreInvite.used_at.isnot(None)),
        "case_events_by_cadres": select(func.count()).select_from(CaseEvent).where(CaseEvent.cadre_id.isnot(None)),
        "help_measures": select(func.count()).select_from(HelpMeasure),
        "household_changes": select(func.count()).select_from(HouseholdChange),
    }
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            return {name: int(session.execute(query).scalar_one()) for name, query in queries.items()}
    finally:
        engine.dispose()


def announced(run: FuzzRun, marker: str, pattern: re.Pattern[str]) -> dict[str, set[str]]:
    """Per sender, the case numbers (or references) the bot gave them in a reply that carries `marker`."""
    found: dict[str, set[str]] = {}
    for e in run.exchanges:
        if e.status == 200 and isinstance(e.parts, list):
            for text in reply_texts(e.parts):
                if marker in text:
                    found.setdefault(e.sender, set()).update(pattern.findall(text))
    return found


def said_by(convs: Iterable[Conversation]) -> dict[str, str]:
    """Everything each sender wrote, for checking what the bot later shows of it (to them or to a cadre)."""
    return {c.sender: "\n".join(m.text for m in c.messages) for c in convs}


def raw_markup_of(convs: Iterable[Conversation]) -> dict[str, tuple[str, ...]]:
    """The raw HTML each sender wrote: it must never come back raw, whoever is shown it."""
    return {c.sender: tuple(dict.fromkeys(r for m in c.messages for r in m.raw)) for c in convs}


def audit_database(database_url: str, convs: Sequence[Conversation], run: FuzzRun, prefix: str) -> dict[str, Any]:
    """What the fuzz senders (ids starting with `prefix`) left in the case database, and what is wrong with it.

    A case or enrollment of a fuzz sender must have come through a completed form: the bot announced its number
    to that sender in the form's last reply (unless the deadline cut the run while that reply was on its way), and
    its 身份证号 is one the sender typed as an answer (the fuzz never puts a valid one in a payload). No fuzz sender
    may be bound to a cadre, and every 身份证号 stored in cases and enrollments, the fuzz's or not, must pass
    GB 11643. The notifications their cases sent to cadres (Telegram HTML) quote what they typed: escaped, never raw.
    """
    from sqlalchemy import select

    from actions.db.models import ChatIdentity, Enrollment, HardshipCase, Notification
    from actions.db.session import make_engine, make_sessionmaker
    from actions.services.idcard import validate_id_number

    typed = {c.sender: {m.text for m in c.messages if m.category == FORM} for c in convs}
    cases_told = announced(run, CASE_DONE, CASE_NO)
    references_told = announced(run, ENROLL_DONE, REFERENCE)
    cut_off = {sender for sender, _ in run.unanswered}

    def through_form(told: dict[str, set[str]], number: str, sender: str, id_number: str | None) -> bool:
        return (number in told.get(sender, set()) or sender in cut_off) and id_number in typed.get(sender, set())

    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            identities = session.execute(
                select(ChatIdentity).where(ChatIdentity.channel_user_id.like(f"{prefix}%"))
            ).scalars().all()  # fmt: skip
            cases = session.execute(select(HardshipCase)).scalars().all()
            enrollments = session.execute(select(Enrollment)).scalars().all()
            fuzz_cases = [c for c in cases if (c.channel_user_id or "").startswith(prefix)]
            raw = raw_markup_of(convs)
            notices = session.execute(
                select(Notification.text, HardshipCase.channel_user_id)
                .join(HardshipCase, HardshipCase.id == Notification.case_id)
                .where(HardshipCase.channel_user_id.like(f"{prefix}%"))
            ).all()
            fuzz_enrollments = [e for e in enrollments if (e.channel_user_id or "").startswith(prefix)]
            return {
                "fuzz_cases": len(fuzz_cases),
                "fuzz_enrollments": len(fuzz_enrollments),
                "fuzz_chat_identities": len(identities),
                "cadre_identities": sorted(i.channel_user_id for i in identities if i.cadre_id is not None),
                "cases_not_through_form": sorted(
                    f"{c.case_no} of {c.channel_user_id}"
                    for c in fuzz_cases
                    if not through_form(cases_told, c.case_no, c.channel_user_id, c.id_number)
                ),
                "enrollments_not_through_form": sorted(
                    f"{e.reference} of {e.channel_user_id}"
                    for e in fuzz_enrollments
                    if not through_form(references_told, e.reference, e.channel_user_id, e.id_number)
                ),
                "invalid_id_numbers": sorted(
                    [f"case {c.case_no}" for c in cases if c.id_number and not validate_id_number(c.id_number).ok]
                    + [f"enrollment {e.reference}" for e in enrollments if not validate_id_number(e.id_number).ok]
                ),
                "ids_checked": sum(1 for c in cases if c.id_number) + len(enrollments),
                "names_that_are_form_words": sorted(
                    [f"case {c.case_no}: {c.name}" for c in fuzz_cases if c.name in FORM_WORDS]
                    + [f"enrollment {e.reference}: {e.name}" for e in fuzz_enrollments if e.name in FORM_WORDS]
                ),
                "notifications_checked": len(notices),
                "notifications_with_raw_markup": sorted(
                    f"{sender}: {text[:300]!r}"
                    for text, sender in notices
                    if markup_problems(text) or any(r in text for r in raw.get(sender, ()))
                ),
            }
    finally:
        engine.dispose()
