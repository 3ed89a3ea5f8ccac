"""Faults, with real processes: the production setup (PostgreSQL for cases and conversations, Redis locks, two Rasa
workers and two action-server workers) survives a killed Rasa server, a killed action server, a stopped database,
double submissions and concurrent messages, and loses or duplicates nothing.

Each test ends by itself: every HTTP call has a timeout and every server is stopped at the end of the module.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine

from actions import crypto
from actions.channels import UNAVAILABLE
from actions.db.migrate import upgrade
from actions.db.models import HardshipCase
from actions.db.session import make_engine, make_sessionmaker
from actions.launcher import Servers
from actions.services.demo import load_demo
from tests.conftest import make_id_number
from tests.integration.conftest import SERVER_DATA_KEY, TEST_DIR, free_port
from tests.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration

CASE_NO = re.compile(r"SB-\d{4}-\d{6}")
TIMEOUT = httpx.Timeout(120.0, connect=10.0)


@dataclass
class Deployment:
    postgres: PostgresServer
    redis: RedisServer
    servers: Servers
    case_db: str
    tracker_db: str

    def post(self, sender: str, message: str) -> tuple[int, list[dict[str, Any]]]:
        response = httpx.post(
            f"{self.servers.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            timeout=TIMEOUT,
        )
        return response.status_code, response.json()

    def say(self, sender: str, message: str) -> str:
        status, parts = self.post(sender, message)
        assert status == 200, (status, parts)
        return texts(parts)

    def cases_of(self, *senders: str) -> list[HardshipCase]:
        engine = make_engine(self.case_db)
        try:
            with make_sessionmaker(engine).begin() as session:
                query = select(HardshipCase).where(HardshipCase.channel_user_id.in_(senders))
                return list(session.execute(query.order_by(HardshipCase.id)).scalars())
        finally:
            engine.dispose()


def texts(parts: list[dict[str, Any]]) -> str:
    return "\n".join(str(p.get("text", "")) for p in parts)


@pytest.fixture(scope="module")
def deployment(test_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    postgres = PostgresServer()
    redis = RedisServer(tmp_path_factory.mktemp("fault-redis"))
    servers: Servers | None = None
    previous = crypto.current()
    try:
        postgres.start()
        redis.start()
        case_db = postgres.create_database("helpline")
        tracker_db = postgres.create_database("tracker")
        crypto.configure(crypto.DataCipher(crypto.decode_secret(SERVER_DATA_KEY)))
        engine = make_engine(case_db)
        upgrade(engine)
        load_demo(make_sessionmaker(engine))
        engine.dispose()
        env = {
            **os.environ,
            "DATABASE_URL": case_db,
            "TRACKER_STORE_URL": tracker_db,
            "LOCK_STORE_URL": redis.url(),
            "HELPLINE_DATA_KEY": SERVER_DATA_KEY,
            "RASA_WORKERS": "2",
            "ACTION_WORKERS": "2",
            "RASA_TELEMETRY_ENABLED": "false",
        }
        servers = Servers(
            test_model, rasa_port=free_port(), action_port=free_port(), env=env, log_dir=TEST_DIR / "logs" / "faults"
        )
        servers.start_actions(wait=False)
        servers.start_rasa()
        yield Deployment(postgres, redis, servers, case_db, tracker_db)
    finally:
        if servers is not None:
            servers.stop()
        redis.stop()
        postgres.remove()
        crypto.configure(previous)


# A declaration, message by message, with the question each answer is followed by.
OPENING = "俺家男人上个月在工地上摔断了腿 住院花了六万多 家里没进项了"


def id_number(n: int) -> str:
    """A distinct valid 身份证号 for each n below 90,000."""
    return make_id_number(f"19{50 + n // 900:02d}0515", n % 900 + 1)


def answers(n: int) -> list[tuple[str, str]]:
    """(message, a word of the next question) for declaration number `n` (its own 身份证号 and phone)."""
    return [
        (OPENING, "名字"),
        ("李桂英", "身份证号"),
        (id_number(n), "手机号"),
        (f"139{n:08d}", "住哪"),
        ("太河镇东峪村", "几口人"),
        ("四口人", "收入"),
        ("三万", "提交"),
    ]


def fill(deployment: Deployment, sender: str, n: int, steps: int) -> None:
    for message, question in answers(n)[:steps]:
        reply = deployment.say(sender, message)
        assert question in reply, (message, reply)


def test_rasa_killed_mid_form_resumes_at_the_same_question(deployment: Deployment) -> None:
    sender = "fault-kill-rasa"
    fill(deployment, sender, 1, 4)  # name, 身份证号 and phone given; the address is asked
    deployment.servers.kill("rasa")
    deployment.servers.start_rasa()
    assert "几口人" in deployment.say(sender, "太河镇东峪村")  # the address was the open question
    assert "收入" in deployment.say(sender, "四口人")
    summary = deployment.say(sender, "三万")
    assert "李桂英" in summary and "139****0001" in summary  # answers given before the crash
    assert CASE_NO.search(deployment.say(sender, "提交"))
    [case] = deployment.cases_of(sender)
    assert (case.name, case.id_number, case.phone) == ("李桂英", id_number(1), "13900000001")


def _locking(deployment: Deployment) -> tuple[Engine, Any]:
    """A transaction that holds the notifications table: a submit blocks there, after it has written its case."""
    engine = create_engine(deployment.case_db.replace("+psycopg2", ""), future=True)
    connection = engine.connect()
    transaction = connection.begin()
    connection.execute(text("LOCK TABLE notifications IN ACCESS EXCLUSIVE MODE"))
    return engine, (connection, transaction)


def _writer_waiting(deployment: Deployment) -> bool:
    """Some session has written (it holds a transaction id) and is waiting for a lock."""
    engine = create_engine(deployment.case_db, future=True)
    try:
        with engine.connect() as connection:
            query = text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'helpline' AND wait_event_type = 'Lock' "
                "AND backend_xid IS NOT NULL"
            )
            return bool(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def test_action_server_killed_during_a_submit_stores_all_or_nothing_and_a_retry_stores_one(
    deployment: Deployment,
) -> None:
    sender = "fault-kill-actions"
    fill(deployment, sender, 2, 7)  # the summary, with 提交
    engine, (connection, transaction) = _locking(deployment)
    try:
        reply: dict[str, Any] = {}

        def press_submit() -> None:
            reply["status"], reply["parts"] = deployment.post(sender, "提交")

        submit = threading.Thread(target=press_submit)
        submit.start()
        deadline = time.monotonic() + 60
        while not _writer_waiting(deployment):
            assert time.monotonic() < deadline, "the submit never reached the locked table"
            time.sleep(0.2)
        deployment.servers.kill("actions")  # in the middle of the submit's transaction
    finally:
        transaction.rollback()
        connection.close()
        engine.dispose()
    submit.join(timeout=120)
    assert not submit.is_alive()
    assert reply["status"] == 200
    apology = texts(reply["parts"])
    assert "没提交上" in apology and "都还在" in apology, apology
    assert deployment.cases_of(sender) == []  # the transaction died with the process: nothing half-written

    deployment.servers.start_actions()
    done = deployment.say(sender, "/affirm")  # 再提交一次
    assert CASE_NO.search(done), done
    deployment.say(sender, "/affirm")  # tapped twice
    assert len(deployment.cases_of(sender)) == 1


def test_database_stopped_mid_conversation_gives_a_clear_message_and_the_conversation_completes(
    deployment: Deployment,
) -> None:
    sender = "fault-stop-db"
    fill(deployment, sender, 3, 3)  # name and 身份证号 given; the phone is asked
    deployment.postgres.stop()
    try:
        status, parts = deployment.post(sender, "13900000003")
        assert status == 503 and texts(parts) == UNAVAILABLE
        status, parts = deployment.post("fault-stop-db-new", "你好")  # a new conversation too
        assert status == 503 and texts(parts) == UNAVAILABLE
        for name, process in deployment.servers.processes.items():
            assert process.poll() is None, f"{name} died with the database"
        assert httpx.get(f"{deployment.servers.action_url}/health", timeout=10).status_code == 200
    finally:
        deployment.postgres.start()
    assert "住哪" in deployment.say(sender, "13900000003")  # the same question, now answered
    for message, question in answers(3)[4:]:
        assert question in deployment.say(sender, message)
    assert CASE_NO.search(deployment.say(sender, "提交"))
    [case] = deployment.cases_of(sender)
    assert (case.name, case.phone) == ("李桂英", "13900000003")


async def _fill_async(client: httpx.AsyncClient, url: str, sender: str, n: int, limit: asyncio.Semaphore) -> None:
    async with limit:
        for message, question in answers(n):
            response = await client.post(url, json={"sender": sender, "message": message})
            assert response.status_code == 200
            assert question in texts(response.json()), (sender, message, response.json())


async def _double_submissions(deployment: Deployment, senders: list[str]) -> list[int]:
    url = f"{deployment.servers.rasa_url}/webhooks/rest/webhook"
    # No keep-alive: Sanic closes a connection idle for 5 s, and a request sent on it just then fails on the client.
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=30.0), limits=limits) as client:
        limit = asyncio.Semaphore(40)
        await asyncio.gather(*(_fill_async(client, url, s, 1000 + i, limit) for i, s in enumerate(senders)))
        submits = [client.post(url, json={"sender": s, "message": "提交"}) for s in senders for _ in range(2)]
        return [r.status_code for r in await asyncio.gather(*submits)]


def test_200_concurrent_double_submissions_make_exactly_200_cases(deployment: Deployment) -> None:
    senders = [f"fault-double-{i:03d}" for i in range(200)]
    statuses = asyncio.run(_double_submissions(deployment, senders))
    assert statuses == [200] * 400
    cases = deployment.cases_of(*senders)
    per_sender: dict[str, int] = {}
    for case in cases:
        per_sender[str(case.channel_user_id)] = per_sender.get(str(case.channel_user_id), 0) + 1
    assert len(cases) == 200 and set(per_sender.values()) == {1}
    print(f"\n200 conversations x 2 concurrent 提交: {len(cases)} cases")


def _tracker_events(deployment: Deployment, sender: str) -> list[dict[str, Any]]:
    cipher = crypto.DataCipher(crypto.decode_secret(SERVER_DATA_KEY))
    engine = create_engine(deployment.tracker_db, future=True)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender}
            ).scalars()
            return [json.loads(cipher.decrypt(row)) for row in rows]
    finally:
        engine.dispose()


async def _concurrent(deployment: Deployment, sender: str, messages: list[str]) -> list[list[dict[str, Any]]]:
    url = f"{deployment.servers.rasa_url}/webhooks/rest/webhook"
    async with httpx.AsyncClient(timeout=TIMEOUT, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        responses = await asyncio.gather(*(client.post(url, json={"sender": sender, "message": m}) for m in messages))
    assert [r.status_code for r in responses] == [200] * len(messages)
    return [r.json() for r in responses]


def test_concurrent_messages_of_one_conversation_across_two_workers_stay_in_order(deployment: Deployment) -> None:
    sender = "fault-order"
    messages = ["低保怎么申请", "齐惠保一年交多少钱", "残疾人补贴有哪些", "雨露计划是啥", "你好", "特困供养咋申请"] * 2
    replies = asyncio.run(_concurrent(deployment, sender, messages))
    events = _tracker_events(deployment, sender)
    # The tracker holds each message once, and each message's turn whole: its user event, then its actions and
    # replies up to action_listen, before the next message's user event.
    turns: list[list[dict[str, Any]]] = []
    for event in events:
        if event["event"] == "user":
            assert not turns or _listened(turns[-1]), "a message was handled while another's turn was open"
            turns.append([event])
        elif turns:
            turns[-1].append(event)
    assert len(turns) == len(messages) and _listened(turns[-1])
    assert sorted(t[0]["text"] for t in turns) == sorted(messages)
    # Each HTTP reply is exactly the bot's part of its own message's turn.
    by_text: dict[str, list[list[str]]] = {}
    for turn in turns:
        by_text.setdefault(turn[0]["text"], []).append([e.get("text") or "" for e in turn if e["event"] == "bot"])
    for message, reply in zip(messages, replies, strict=True):
        assert [p.get("text") or "" for p in reply] in by_text[message]


def _listened(turn: list[dict[str, Any]]) -> bool:
    return turn[-1]["event"] == "action" and turn[-1]["name"] == "action_listen"
