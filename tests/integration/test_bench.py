"""The load benchmark's short version against the test servers, so that its code cannot rot (issue 8 builds on it)."""

from __future__ import annotations

import random
import sys
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from actions.db.models import HardshipCase
from actions.db.session import make_engine, make_sessionmaker
from actions.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
import load

pytestmark = pytest.mark.integration


def cases_of(database_url: str, prefix: str) -> int:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return int(
                session.execute(
                    select(func.count()).select_from(HardshipCase).where(HardshipCase.channel_user_id.like(prefix))
                ).scalar_one()
            )
    finally:
        engine.dispose()


async def test_declarations_of_the_corpus_are_driven_to_a_case(rasa_url: str, server_db: str) -> None:
    corpus = load.Corpus.load()
    chosen = random.Random(8).sample(corpus.declarations, 4)
    identities = load.Identities(seed=8)
    async with httpx.AsyncClient(timeout=60) as client:
        numbers = []
        for n, facts in enumerate(chosen):

            async def send(text: str, sender: str = f"bench-test-{n}") -> list[dict[str, Any]]:
                response = await client.post(
                    f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}
                )
                return list(response.json())

            numbers.append(await load.declaration(send, facts, identities))
    assert len(set(numbers)) == 4
    assert cases_of(server_db, "bench-test-%") == 4


async def test_a_short_run_reports_latency_and_every_declaration_it_made(rasa_url: str, server_db: str) -> None:
    level = await load.run_level(rasa_url, load.Corpus.load(), users=6, duration=4.0, tag="short")
    assert level["messages"] > 0 and level["errors"] == 0, level
    assert 0 < level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"]
    assert not level["failed_flows"], level["failed_flows"]
    assert cases_of(server_db, "bench-short-%") == len(level["cases"])
    assert "| 6 |" in load.markdown({"levels": [level]})
