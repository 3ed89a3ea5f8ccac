"""The benchmarks' short versions against the test servers and the test model, so that their code cannot rot
(issue 8: `make bench`). Every output goes to tmp_path."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from actions.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
import load
import parse

pytestmark = pytest.mark.integration


def assert_no_errors_but_misunderstood_openings(level: dict[str, Any]) -> None:
    """No HTTP error, timeout or empty reply. A declaration may leave the form's path only at its opening: the
    model does not take every opening of the corpus for a declaration (3 of 65 when this was written), which is
    the NLU's figure for the benchmark to report, not a fault of the driver or the servers."""
    kinds = {kind: n for kind, n in level["error_kinds"].items() if n}
    assert set(kinds) <= {"no_case_number"}, kinds
    for example in level["off_path_examples"]:
        opening = example.split(": to ", 1)[1]
        assert any(opening.startswith(repr(d["opening"])) for d in load.Corpus.load().declarations), example


async def test_declarations_of_the_corpus_are_driven_to_a_case(rasa_url: str, server_db: str) -> None:
    corpus = load.Corpus.load()
    chosen = random.Random(8).sample(corpus.declarations, 4)
    async with httpx.AsyncClient(timeout=60) as client:
        numbers = []
        for n, facts in enumerate(chosen):

            async def send(text: str, sender: str = f"bench-test-{n}") -> list[dict[str, Any]]:
                response = await client.post(
                    f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}
                )
                return list(response.json())

            numbers.append(await load.declaration(send, facts))
    assert len(set(numbers)) == 4
    found, enrollments = load.made_in_database(server_db, "test")
    assert found == set(numbers) and enrollments == 0


async def test_a_short_run_reports_its_figures_and_every_case_it_made(
    rasa_url: str, server_db: str, tmp_path: Path
) -> None:
    level = await load.run_level(
        rasa_url,
        load.Corpus.load(),
        users=4,
        duration=5.0,
        tag="short",
        database_url=server_db,
        sample_memory=True,
        think=0.1,
    )
    assert level["throughput"] > 0 and level["messages"] >= level["messages_in_window"] > 0, level
    assert 0 < level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"]
    assert_no_errors_but_misunderstood_openings(level)
    assert level["cases_found"] == level["declarations_completed"] and level["cases_lost"] == 0
    assert level["enrollments_found"] == level["enrollments_completed"] == 0
    assert level["rss_rasa_mb"] > 0 and level["rss_actions_mb"] > 0
    assert level["rss_total_mb"] >= max(level["rss_rasa_mb"], level["rss_actions_mb"])

    args = argparse.Namespace(level_list=[4], duration=5.0, runs=1, think=0.1)
    report = load.build_report(args, {"tuned": [[level]]}, wall=6.0)
    assert report["think_s"] == 0.1
    assert report["setups"]["tuned"]["median"][0]["throughput"] == level["throughput"]
    markdown = load.markdown(report)
    assert "| 4 |" in markdown and "short run" in markdown
    load.plot(report, tmp_path / "load.png")
    assert (tmp_path / "load.png").read_bytes().startswith(b"\x89PNG")


async def test_the_stock_peer_runs_our_actions(test_model: Path, tmp_path: Path) -> None:
    """`rasa run` and `rasa run actions` with their defaults serve our model and actions (the runtime builds itself
    on the first action): a declaration made through them is in their database, and a short run has no errors."""
    facts = random.Random(8).sample(load.Corpus.load().declarations, 4)[0]
    database_url = load.fresh_database(tmp_path)
    with load.stock_servers(test_model, database_url, tmp_path / "logs") as url:
        async with httpx.AsyncClient(timeout=60) as client:

            async def send(text: str) -> list[dict[str, Any]]:
                response = await client.post(
                    f"{url}/webhooks/rest/webhook", json={"sender": "bench-stocktest-1", "message": text}
                )
                return list(response.json())

            number = await load.declaration(send, facts)
        level = await load.run_level(
            url, load.Corpus.load(), users=2, duration=3.0, tag="stock", database_url=database_url
        )
    assert load.made_in_database(database_url, "stocktest") == ({number}, 0)
    assert level["messages"] > 0
    assert_no_errors_but_misunderstood_openings(level)
    assert level["cases_found"] == level["declarations_completed"] and level["cases_lost"] == 0


async def test_the_parse_benchmark_times_each_parse(test_model: Path) -> None:
    from rasa.core.agent import Agent

    agent = Agent.load(str(test_model))
    messages = load.Corpus.load().messages()[:30]
    figures = parse.summarize(await parse.time_parses(agent, messages, repeat=2))
    assert figures["count"] == 60
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"]
