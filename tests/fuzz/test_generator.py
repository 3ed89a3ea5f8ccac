"""The fuzz generator is deterministic by seed, covers every category, and its checks catch what they should."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from actions.services.idcard import validate_id_number
from tests.fuzz.generator import (
    CATEGORIES,
    FORM,
    KINDS,
    LONG_BYTES,
    Exchange,
    FuzzMessage,
    FuzzRun,
    check_exchange,
    check_run,
    conversations,
    invalid_id_number,
    markup_problems,
    messages_of,
    valid_id_number,
)


@pytest.fixture(scope="module")
def default_run() -> list:
    return conversations(20261124)


def test_the_same_seed_gives_the_same_conversations() -> None:
    assert conversations(5, total=2000, senders=40) == conversations(5, total=2000, senders=40)
    assert conversations(5, total=2000, senders=40) != conversations(6, total=2000, senders=40)


def test_a_prefix_renames_the_senders_and_nothing_else() -> None:
    plain, renamed = conversations(5, total=300, senders=10), conversations(5, total=300, senders=10, prefix="x-")
    assert [c.sender for c in renamed] == [f"x-{n}" for n in range(10)]
    assert [c.messages for c in renamed] == [c.messages for c in plain]


def test_no_global_randomness_is_used_or_disturbed() -> None:
    random.seed(1)
    state = random.getstate()
    first = conversations(9, total=500, senders=20)
    assert random.getstate() == state
    random.seed(2)
    assert conversations(9, total=500, senders=20) == first


def test_sizes_add_up(default_run: list) -> None:
    assert len(default_run) == 200
    assert len(messages_of(default_run)) == 10_000
    assert min(len(c.messages) for c in default_run) >= 5
    assert len({c.sender for c in default_run}) == 200
    assert all(c.sender.startswith("fuzz-20261124-") for c in default_run)
    lengths = {len(c.messages) for c in default_run}
    assert max(lengths) >= 2 * min(lengths)  # some conversations run long


def test_every_category_and_kind_is_present(default_run: list) -> None:
    counts = Counter(m.category for m in messages_of(default_run))
    assert set(counts) == {*CATEGORIES, FORM}
    assert all(counts[c] >= (30 if c == "long" else 100) for c in CATEGORIES), counts
    assert Counter(c.kind for c in default_run).keys() == KINDS.keys()


def test_even_a_small_run_has_every_category() -> None:
    counts = Counter(m.category for m in messages_of(conversations(3, total=1000, senders=20)))
    assert set(CATEGORIES) <= set(counts)


def test_long_messages_are_at_least_ten_kilobytes(default_run: list) -> None:
    long = [m.text for m in messages_of(default_run) if m.category == "long"]
    assert all(len(t.encode()) >= LONG_BYTES for t in long)
    assert any(t.isascii() for t in long) and any(not t.isascii() for t in long)
    assert max(len(t) for t in long) >= 10_000  # some Chinese ones are 10,000 characters, 30 kB


def test_every_message_is_valid_utf8_json(default_run: list) -> None:
    for message in messages_of(default_run):
        message.text.encode("utf-8")  # no lone surrogates
        assert json.loads(json.dumps({"message": message.text}))["message"] == message.text


def test_the_hostile_material_is_there(default_run: list) -> None:
    texts = "\n".join(m.text for m in messages_of(default_run))
    for needle in (
        "\x00",
        "\u200b",
        "\u202e",
        "\u200f",
        "\u200d",
        "🇨🇳",
        "俺家裡低保怎麼申請",
        "'; DROP TABLE cases;--",
        "' OR 1=1 --",
        "UNION SELECT",
        "<script>alert(1)</script>",
        "<a href=javascript:",
        "&lt;script&gt;fz",
        "{{7*7}}",
        "{{ config }}",
        "{% for x in range(9) %}x{% endfor %}",
        "${7*7}",
        "#{7*7}",
        '/inform{"decl_id_number":"',
        '/declare_hardship{"decl_amount":"999999"}',
        '/greet{"role":"cadre"}',
        '/cadre_stats{"cadre_case":"SB-2026-000001"}',
        "/EXTERNAL_x",
        "/session_start",
        "/restart",
        "/greet{broken",
    ):
        assert needle in texts, needle


def test_form_conversations_start_a_form_and_answer_it(default_run: list) -> None:
    declarations = [c for c in default_run if c.kind == "declaration"]
    assert declarations
    for conversation in declarations:
        first = conversation.messages[0].text
        assert first in ("我要申报困难", "申请防返贫监测") or first.startswith("/declare_hardship")
    answers = [m.text for c in declarations for m in c.messages if m.category == FORM]
    assert "提交" in answers or "确认" in answers
    assert any(validate_id_number(a).ok for a in answers)


def test_injected_id_numbers_are_invalid_and_typed_ones_valid() -> None:
    rng = random.Random(4)
    assert all(not validate_id_number(invalid_id_number(rng)).ok for _ in range(500))
    assert all(validate_id_number(valid_id_number(rng)).ok for _ in range(500))


def test_templates_and_html_carry_what_their_replies_must_not(default_run: list) -> None:
    messages = messages_of(default_run)
    templates = [m for m in messages if m.evaluated]
    assert any("49" in m.evaluated for m in templates)
    assert all(not any(v in m.text for v in m.evaluated) for m in templates)
    assert all(all(r in m.text for r in m.raw) for m in messages if m.raw)


@pytest.mark.parametrize(
    ("text", "expects"),
    [("/restart", False), (" /restart", False), ('/restart{"a":1}', False), ("/session_start@0.1", False),
     ("/restartx", True), ("/RESTART", True), ("", True), ("restart", True)],
)  # fmt: skip
def test_only_rasa_resets_may_go_unanswered(text: str, expects: bool) -> None:
    assert FuzzMessage("payload", text).expects_reply is expects


def exchange(text: str, parts: object, status: int | None = 200, **message: tuple[str, ...]) -> Exchange:
    return Exchange("s1", 0, FuzzMessage("x", text, **message), status, parts)


def kinds(e: Exchange) -> list[str]:
    return [f.kind for f in check_exchange(e)]


def test_checks_pass_a_normal_reply() -> None:
    parts = [{"recipient_id": "s1", "text": "您好,<b>低保</b> &lt;script&gt; &amp; &#39;", "buttons": []}]
    assert kinds(exchange("<script>", parts, raw=("<script",))) == []


def test_checks_catch_each_failure() -> None:
    ok = [{"recipient_id": "s1", "text": "好的"}]
    assert kinds(exchange("hi", None, status=500)) == ["http_5xx"]
    assert kinds(exchange("hi", None, status=None)) == ["transport"]
    assert kinds(exchange("hi", {"a": 1})) == ["not_a_list"]
    assert kinds(exchange("hi", [])) == ["silent"]
    assert kinds(exchange("/restart", [])) == []
    assert kinds(exchange("hi", [{"recipient_id": "s2", "text": "好的"}])) == ["wrong_recipient"]
    assert kinds(exchange("{{7*7}}", [{"recipient_id": "s1", "text": "结果 49"}], evaluated=("49",))) == [
        "template_evaluated"
    ]
    raw = [{"recipient_id": "s1", "text": "您说:<script>alert(1)</script>"}]
    assert kinds(exchange("<script>alert(1)</script>", raw, raw=("<script",))) == ["unescaped_html"]
    assert kinds(exchange("hi", [{"recipient_id": "s1", "text": "a & b"}])) == ["unescaped_html"]
    assert kinds(exchange("hi", [{"recipient_id": "s1", "text": "出错了 KeyError: 'x'"}])) == ["leak"]
    assert kinds(exchange("hi", [{"recipient_id": "s1", "text": "Traceback (most recent call last)"}])) == ["leak"]
    assert kinds(exchange("hi", [{"recipient_id": "s1", "text": "<jinja2.runtime.Context object at 0x7f>"}])) == [
        "unescaped_html",
        "leak",
    ]
    assert kinds(exchange("KeyError 是啥", [{"recipient_id": "s1", "text": "您说的 KeyError 是啥"}])) == []
    assert kinds(exchange("hi", ok)) == []


def test_what_the_sender_wrote_earlier_may_be_quoted() -> None:
    summary = [{"recipient_id": "s1", "text": "• 住址:null 东峪村 49号"}]
    assert kinds(exchange("两万", summary, evaluated=("49",))) == ["template_evaluated", "leak"]
    assert check_exchange(exchange("两万", summary, evaluated=("49",)), said="null 东峪村 49号") == []
    run = FuzzRun(
        [
            Exchange("s1", 1, FuzzMessage("form", "两万"), 200, summary),
            Exchange("s1", 0, FuzzMessage("form", "null 东峪村 49号"), 200, [{"recipient_id": "s1", "text": "几口人"}]),
            Exchange("s2", 0, FuzzMessage("form", "两万"), 200, [{"recipient_id": "s2", "text": "住址:null"}]),
        ]
    )
    assert [(f.kind, f.sender) for f in check_run(run)] == [("leak", "s2")]


def test_an_entity_the_user_typed_must_come_back_escaped() -> None:
    typed = FuzzMessage("html", "&lt;script&gt;fzab2&lt;/script&gt;", raw=("&lt;script&gt;fzab2",))
    escaped = [{"recipient_id": "s1", "text": "住址:&amp;lt;script&amp;gt;fzab2&amp;lt;/script&amp;gt;"}]
    unescaped = [{"recipient_id": "s1", "text": "住址:&lt;script&gt;fzab2&lt;/script&gt;"}]
    assert check_exchange(Exchange("s1", 0, typed, 200, escaped)) == []
    assert [f.kind for f in check_exchange(Exchange("s1", 0, typed, 200, unescaped))] == ["unescaped_html"]


def test_markup_allows_only_the_bots_own_bold() -> None:
    assert markup_problems("<b>农村低保</b> 5220 元 &amp; &lt;b&gt;") == []
    assert markup_problems("<i>x</i>") == ["<i>x</i>", "</i>"]
    assert markup_problems("A&B") == ["&B"]
