"""A seeded fuzz of 10,000 messages through the REST channel against the real servers (issue 9, item 4).

200 senders hold their own conversations (tests/fuzz/generator.py): hostile messages of twelve categories, Rasa
payloads aimed at slots and roles, and declarations and enrollments filled in with hostile messages between the
answers. The run happens once per module (the `fuzz` fixture); each test then checks one property of it, so a
failure names what broke. The figures are printed (`pytest -s`) and written to var/test/fuzz-report-<backend>.json.

FUZZ_SEED, FUZZ_MESSAGES and FUZZ_SENDERS change the run (a finding is replayed with its seed);
scripts/fuzz_rest.py runs the same fuzz against a bot that is already running.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from actions import crypto
from actions.launcher import post_message, running_servers
from tests.fuzz.generator import (
    CASE_DONE,
    CASE_NO,
    Conversation,
    Exchange,
    Finding,
    FuzzMessage,
    FuzzRun,
    announced,
    audit_database,
    check_exchange,
    check_run,
    conversations,
    format_summary,
    privileged_state,
    raw_markup_of,
    reply_texts,
    run_fuzz,
    said_by,
    summarize,
)
from tests.integration.conftest import (
    BACKEND,
    SERVER_DATA_KEY,
    TEST_DIR,
    environment_for,
    free_port,
    fresh_database,
)
from tests.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("FUZZ_SEED", "20261124"))
MESSAGES = int(os.environ.get("FUZZ_MESSAGES", "10000"))
SENDERS = int(os.environ.get("FUZZ_SENDERS", "200"))
CONCURRENCY = 16
# The run alone: 10,000 messages take about 5 minutes at the 30-40 msg/s of an idle machine, and 8 at the 20 msg/s
# measured with another engineer's test suite running beside it; the deadline is for a hung server, not a slow one.
DEADLINE_S = 600.0
REPORT = TEST_DIR / f"fuzz-report-{BACKEND}.json"  # one per backend: make test runs the fuzz on both
PREFIX = f"fuzz-{SEED}-"
REFUSAL = "只对登记过的干部开放"  # actions/templates/cadre_refused.j2
CADRE = "demo-cadre-taihe"  # the demo cadre of 淄博市/淄川区/太河镇, where the fuzz's declarations live
CADRE_QUESTIONS = ("本辖区统计", "待办案件", "/cadre_stats", '/cadre_cases{"case_no":"SB-2026-000001"}')


@dataclass
class Outcome:
    convs: list[Conversation]
    run: FuzzRun
    findings: list[Finding]
    summary: dict[str, Any]


@contextmanager
def server_cipher() -> Iterator[None]:
    """Read the servers' database with their data key (the 身份证号 columns are encrypted with it)."""
    previous = crypto.current()
    crypto.configure(crypto.DataCipher(crypto.decode_secret(SERVER_DATA_KEY)))
    try:
        yield
    finally:
        crypto.configure(previous)


async def post(client: httpx.AsyncClient, rasa_url: str, sender: str, text: str) -> list[dict[str, Any]]:
    """One probe; a failure comes back as a reply saying so, and the probe that expected an answer records it."""
    try:
        response = await client.post(f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text})
    except httpx.HTTPError as exc:
        return [{"recipient_id": sender, "text": f"(request failed: {type(exc).__name__})"}]
    if response.status_code != 200:
        return [{"recipient_id": sender, "text": f"(HTTP {response.status_code}: {response.text[:200]})"}]
    return list(response.json())


async def status_of(client: httpx.AsyncClient, url: str) -> int | None:
    try:
        return (await client.get(url)).status_code
    except httpx.HTTPError:
        return None


def text_of(parts: list[dict[str, Any]]) -> str:
    return "\n".join(reply_texts(parts))


async def cadre_views(client: httpx.AsyncClient, rasa_url: str, convs: list[Conversation], run: FuzzRun) -> dict:
    """The cadre of 太河镇 opens every case the fuzz declared: what the villagers typed (HTML, templates, control
    characters) is shown to the cadre escaped, unevaluated, and with no error text."""
    said, raw = said_by(convs), raw_markup_of(convs)
    shown, problems = 0, []
    await post(client, rasa_url, CADRE, "取消")
    for sender, numbers in sorted(announced(run, CASE_DONE, CASE_NO).items()):
        for index, case_no in enumerate(sorted(numbers)):
            parts = await post(client, rasa_url, CADRE, f"查一下{case_no}")
            shown += int(case_no in text_of(parts) and "申报人" in text_of(parts))
            view = Exchange(CADRE, index, FuzzMessage("cadre_view", f"查一下{case_no}", raw=raw[sender]), 200, parts)
            problems += [f.describe() for f in check_exchange(view, said=said[sender])]
    return {"cases_shown_to_cadre": shown, "cadre_view_findings": problems}


async def after_the_run(rasa_url: str, action_url: str, convs: list[Conversation], run: FuzzRun) -> dict[str, Any]:
    """Both servers still up; a normal question answered; every fuzz conversation answers again after 取消; the
    senders that injected payloads are refused the cadre workspace; a cadre sees the fuzz's cases escaped."""
    recovered: list[str] = []
    not_recovered: list[str] = []
    refused: list[str] = []
    not_refused: list[str] = []
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0)) as client:
        rasa_status = await status_of(client, f"{rasa_url}/")
        action_status = await status_of(client, f"{action_url}/health")
        fresh = text_of(await post(client, rasa_url, f"{PREFIX}after", "低保怎么申请"))

        async def probe(conversation: Conversation) -> None:
            sender = conversation.sender
            async with limit:
                await post(client, rasa_url, sender, "取消")
                answer = text_of(await post(client, rasa_url, sender, "低保怎么申请"))
                (recovered if "农村低保" in answer else not_recovered).append(f"{sender}: {answer[:200]!r}")
                if conversation.kind == "injection":
                    for question in CADRE_QUESTIONS:
                        reply = text_of(await post(client, rasa_url, sender, question))
                        (refused if REFUSAL in reply else not_refused).append(f"{sender} {question}: {reply[:200]!r}")

        await asyncio.wait_for(asyncio.gather(*(probe(c) for c in convs)), timeout=180)
        views = await asyncio.wait_for(cadre_views(client, rasa_url, convs, run), timeout=120)
    return {
        **views,
        "rasa_status": rasa_status,
        "action_server_status": action_status,
        "fresh_dibao": fresh[:200],
        "recovered": len(recovered),
        "not_recovered": sorted(not_recovered),
        "refused": len(refused),
        "not_refused": sorted(not_refused),
    }


# The fuzz leaves dozens of cases and enrollments behind: it runs against servers and a database of its own, so that
# the other integration tests' counts and pages stay theirs.


@pytest.fixture(scope="module")
def server_db(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None) -> str:
    return fresh_database(tmp_path_factory, postgres, "fuzz")


@pytest.fixture(scope="module")
def action_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def action_url(action_port: int) -> str:
    return f"http://localhost:{action_port}"


@pytest.fixture(scope="module")
def rasa_url(
    test_model: Path,
    server_db: str,
    postgres: PostgresServer | None,
    redis_server: RedisServer | None,
    action_port: int,
) -> Iterator[str]:
    env = environment_for(server_db, postgres, redis_server, "fuzz")
    log_dir = TEST_DIR / "logs" / f"{BACKEND}-fuzz"
    with running_servers(test_model, rasa_port=free_port(), action_port=action_port, env=env, log_dir=log_dir) as url:
        yield url


@pytest.fixture(scope="module")
def fuzz(rasa_url: str, action_url: str, server_db: str) -> Outcome:
    convs = conversations(SEED, MESSAGES, SENDERS)
    with server_cipher():
        before = privileged_state(server_db)
    run = asyncio.run(run_fuzz(rasa_url, convs, concurrency=CONCURRENCY, deadline=DEADLINE_S))
    findings = check_run(run)
    summary = summarize(run, findings, SEED, CONCURRENCY)
    summary["probes"] = asyncio.run(after_the_run(rasa_url, action_url, convs, run))
    with server_cipher():
        summary["database"] = audit_database(server_db, convs, run, PREFIX)
        summary["database"]["privileged_before"] = before
        summary["database"]["privileged_after"] = privileged_state(server_db)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    print("\n" + format_summary(summary))
    return Outcome(convs, run, findings, summary)


def of_kind(outcome: Outcome, *kinds: str) -> list[str]:
    return [f.describe() for f in outcome.findings if f.kind in kinds][:20]


def test_all_messages_were_sent_within_the_deadline(fuzz: Outcome) -> None:
    assert fuzz.run.finished, f"stopped after {len(fuzz.run.exchanges)} of {MESSAGES} messages"
    assert len(fuzz.run.exchanges) == MESSAGES
    assert len({e.sender for e in fuzz.run.exchanges}) == SENDERS


def test_no_server_error_no_transport_error_and_every_body_is_a_json_list(fuzz: Outcome) -> None:
    assert fuzz.summary["http_5xx"] == 0
    assert fuzz.summary["transport_errors"] == 0
    assert of_kind(fuzz, "http_5xx", "http_other", "transport", "not_a_list") == []


def test_every_message_gets_a_reply(fuzz: Outcome) -> None:
    """Empty, whitespace-only, control-character and garbage messages included (they get the clarification);
    only Rasa's /restart and /session_start answer with nothing, by design (no utter_restart in the domain)."""
    assert of_kind(fuzz, "silent") == []
    expected_empty = fuzz.summary["empty_replies_expected"]
    assert fuzz.summary["empty_replies"] == expected_empty
    assert fuzz.summary["by_category"]["empty"]["empty_replies"] == 0


def test_replies_go_to_their_own_sender(fuzz: Outcome) -> None:
    assert of_kind(fuzz, "wrong_recipient") == []


def test_no_template_is_evaluated(fuzz: Outcome) -> None:
    assert any(e.message.evaluated for e in fuzz.run.exchanges)
    assert of_kind(fuzz, "template_evaluated") == []


def test_user_markup_is_never_raw_in_a_reply(fuzz: Outcome) -> None:
    assert any(e.message.raw for e in fuzz.run.exchanges)
    assert of_kind(fuzz, "unescaped_html") == []


def test_no_stack_trace_exception_name_or_repr_in_any_reply(fuzz: Outcome) -> None:
    assert of_kind(fuzz, "leak") == []


def test_both_servers_survive_and_answer_a_normal_question(fuzz: Outcome) -> None:
    probes = fuzz.summary["probes"]
    assert probes["rasa_status"] == 200
    assert probes["action_server_status"] == 200
    assert "农村低保" in probes["fresh_dibao"]


def test_every_fuzzed_conversation_answers_normally_after_cancelling(fuzz: Outcome) -> None:
    probes = fuzz.summary["probes"]
    assert probes["not_recovered"] == []
    assert probes["recovered"] == SENDERS


def test_injected_payloads_make_nobody_a_cadre(fuzz: Outcome) -> None:
    database, probes = fuzz.summary["database"], fuzz.summary["probes"]
    assert database["cadre_identities"] == []
    assert database["privileged_after"] == database["privileged_before"]
    assert probes["not_refused"] == []
    assert probes["refused"] > 0


def test_cases_and_enrollments_come_only_from_completed_forms(fuzz: Outcome) -> None:
    database = fuzz.summary["database"]
    assert database["cases_not_through_form"] == []
    assert database["enrollments_not_through_form"] == []
    # The forms were reached through the fuzz, so the checks above are not vacuous.
    assert database["fuzz_cases"] > 0
    assert database["fuzz_enrollments"] > 0


def test_a_cadre_sees_what_villagers_typed_escaped(fuzz: Outcome) -> None:
    probes, database = fuzz.summary["probes"], fuzz.summary["database"]
    assert probes["cases_shown_to_cadre"] > 0
    assert probes["cadre_view_findings"] == []
    assert database["notifications_checked"] > 0
    assert database["notifications_with_raw_markup"] == []


def test_every_stored_id_number_is_valid(fuzz: Outcome) -> None:
    database = fuzz.summary["database"]
    assert database["ids_checked"] > 0
    assert database["invalid_id_numbers"] == []


# Requests a Telegram front end never makes, sent once each: they must get a 4xx or a reply, never a 5xx or silence.
# Each of the last six was a 500 when the fuzz found it (a lone surrogate reached OpenCC; Rasa's payload parser
# recursed 5,000 deep; a message that is not text, or metadata that is not an object, went on unchecked).

NESTED_PAYLOAD = '{"sender":"fuzz-raw-4","message":"/greet{\\"a\\":' + "[" * 5000 + "]" * 5000 + '}"}'
RAW_BODIES = [
    pytest.param(b'{"sender":"fuzz-raw-1","message":', id="truncated-json"),
    pytest.param(b'{"sender":"fuzz-raw-2","message":"\xff\xfe\xfa"}', id="not-utf8"),
    pytest.param(b"[]", id="body-a-list"),
    pytest.param(b"", id="body-empty"),
    pytest.param(b'{"sender":["a"],"message":"hi"}', id="sender-a-list"),
    pytest.param(
        b'{"sender":"fuzz-raw-3","message":"\\ud800 \\udfff"}',
        id="lone-surrogates",
    ),
    pytest.param(
        NESTED_PAYLOAD.encode(),
        id="payload-nested-5000-deep",
    ),
    pytest.param(
        b'{"sender":"fuzz-raw-5","message":123}',
        id="message-a-number",
    ),
    pytest.param(
        b'{"sender":"fuzz-raw-6","message":null}',
        id="message-null",
    ),
    pytest.param(
        b'{"sender":"fuzz-raw-7"}',
        id="message-missing",
    ),
    pytest.param(
        b'{"sender":"fuzz-raw-8","message":"hi","metadata":"x"}',
        id="metadata-a-string",
    ),
]


@pytest.mark.parametrize("body", RAW_BODIES)
def test_malformed_requests_get_a_client_error_or_a_reply(rasa_url: str, body: bytes) -> None:
    response = httpx.post(
        f"{rasa_url}/webhooks/rest/webhook",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=30.0,
    )
    assert response.status_code < 500, response.text[:300]
    if response.status_code == 200:
        assert response.json(), "200 with no reply at all"
    else:
        assert 400 <= response.status_code < 500


@pytest.mark.parametrize(
    "word",
    ["提交", "确认", "说不准", "其他", "因病", "你好", "低保"],
)
def test_a_forms_own_button_word_is_not_taken_for_a_name(rasa_url: str, word: str) -> None:
    """A stale tap on a button of the form is not a name (the fuzz stored a case whose declarant was 提交)."""
    sender = f"fuzz-name-{ord(word[0])}"
    assert "姓名" in text_of(post_message(rasa_url, sender, "我要参保"))
    reply = text_of(post_message(rasa_url, sender, word))
    assert "身份证号" not in reply, reply  # the form did not move on with the word as the name
