"""Load benchmark of the REST channel: concurrent simulated conversations, latency, throughput, memory, and the
cases they made.

    .venv/bin/python bench/load.py [--levels 50,200,500,1000] [--duration 60] [--url http://localhost:5005]

Each concurrency level runs that many virtual users for `--duration` seconds. A user runs one conversation after
another, each with a new sender id, drawn by the mix (55% policy, 20% insurance, 15% declarations driven to
completion, 5% status follow-ups, 5% cadre lookups) from bench/corpus.yml, which is kept apart from the training
data. Without --url it starts both servers (the trained model, a fresh SQLite database with the demo data) and also
reads the RSS of their processes and the cases found in the database against the declarations completed.

Writes var/bench/load.json and var/bench/load.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actions.services.idcard import check_digit  # noqa: E402

CORPUS = ROOT / "bench" / "corpus.yml"
OUT = ROOT / "var" / "bench"
MIX = {"policy": 0.55, "insurance": 0.20, "declaration": 0.15, "status": 0.05, "cadre": 0.05}
CADRES = ("demo-cadre-taihe", "demo-cadre-yiyuan", "demo-cadre-zaozhuang")
CASE_NO = re.compile(r"SB-\d{4}-\d{6}")
MAX_DECLARATION_STEPS = 16

Send = Callable[[str], Awaitable[list[dict[str, Any]]]]


def text_of(parts: list[dict[str, Any]]) -> str:
    return "\n".join(str(p.get("text") or "") for p in parts)


def buttons_of(parts: list[dict[str, Any]]) -> list[str]:
    return [str(b.get("payload", "")) for p in parts for b in p.get("buttons") or []]


@dataclass
class Corpus:
    policy: list[str]
    insurance: list[str]
    declarations: list[dict[str, str]]
    status: list[str]
    cadre: list[str]

    @classmethod
    def load(cls, path: Path = CORPUS) -> Corpus:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            [str(m) for m in data["policy"]],
            [str(m) for m in data["insurance"]],
            [{k: str(v) for k, v in d.items()} for d in data["declarations"]],
            [str(m) for m in data["status"]],
            [str(m) for m in data["cadre"]],
        )


class Identities:
    """Made-up 身份证号 and phone numbers: valid, unique in the run, in a region code no real county has."""

    def __init__(self, seed: int) -> None:
        self.counter = seed * 100_000

    def next(self) -> tuple[str, str]:
        self.counter += 1
        n = self.counter
        birth = f"19{60 + n % 30:02d}{1 + n % 12:02d}{1 + n % 28:02d}"
        first17 = f"370399{birth}{n % 1000:03d}"
        return first17 + check_digit(first17), f"139{n % 100_000_000:08d}"


def answer_for(question: str, facts: dict[str, str], id_number: str, phone: str) -> str | None:
    """What a villager answers to the declaration form's question (the reply's last part), from the facts."""
    steps = (
        ("请核对", "提交"),  # the summary (it shows the masked numbers, so it goes first)
        ("身份证号", id_number),
        ("手机号", phone),
        ("叫啥名字", facts["name"]),
        ("住哪", facts["address"]),
        ("几口人", facts["size"]),
        ("一年总收入", facts["income"]),
        ("点一个", facts["cause"]),
        ("多少钱", facts["amount"]),
    )
    for marker, reply in steps:
        if marker in question:
            return reply
    return None


async def declaration(send: Send, facts: dict[str, str], identities: Identities) -> str:
    """Drive one declaration to its case number; returns the number, or raises when the bot goes off the path."""
    id_number, phone = identities.next()
    parts = await send(facts["opening"])
    for _ in range(MAX_DECLARATION_STEPS):
        reply = text_of(parts)
        found = CASE_NO.search(reply)
        if found and "申报编号" in reply:
            return found.group()
        questions = [str(p.get("text") or "") for p in parts if p.get("text")]
        answer = answer_for(questions[-1], facts, id_number, phone) if questions else None
        if answer is None:
            raise FlowError(f"unexpected question: {reply[-60:]!r}")
        parts = await send(answer)
    raise FlowError("no case number after the whole form")


class FlowError(Exception):
    pass


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    flows: dict[str, int] = field(default_factory=dict)
    failed_flows: dict[str, int] = field(default_factory=dict)
    cases: list[str] = field(default_factory=list)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class User:
    def __init__(self, client: httpx.AsyncClient, url: str, corpus: Corpus, results: Results, seed: int, tag: str):
        self.client, self.url, self.corpus, self.results = client, url, corpus, results
        self.random = random.Random(seed)
        self.identities = Identities(seed)
        self.tag = tag
        self.seed = seed
        self.conversations = 0

    def sender(self, flow: str) -> str:
        self.conversations += 1
        if flow == "cadre":
            return self.random.choice(CADRES)
        return f"bench-{self.tag}-{self.seed}-{self.conversations}"

    async def message(self, sender: str, text: str) -> list[dict[str, Any]]:
        started = time.perf_counter()
        try:
            response = await self.client.post(self.url, json={"sender": sender, "message": text})
        except httpx.HTTPError as exc:
            self.results.error(type(exc).__name__)
            raise FlowError(type(exc).__name__) from None
        self.results.latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            self.results.error(f"HTTP {response.status_code}")
            raise FlowError(f"HTTP {response.status_code}")
        parts = response.json()
        if not parts:
            self.results.error("empty reply")
            raise FlowError("empty reply")
        return list(parts)

    async def run(self, deadline: float) -> None:
        flows, weights = list(MIX), list(MIX.values())
        while time.monotonic() < deadline:
            flow = self.random.choices(flows, weights)[0]
            sender = self.sender(flow)

            async def send(text: str, sender: str = sender) -> list[dict[str, Any]]:
                return await self.message(sender, text)

            try:
                if flow == "declaration":
                    facts = self.random.choice(self.corpus.declarations)
                    self.results.cases.append(await declaration(send, facts, self.identities))
                else:
                    pool = {"policy": self.corpus.policy, "insurance": self.corpus.insurance,
                            "status": self.corpus.status, "cadre": self.corpus.cadre}[flow]  # fmt: skip
                    await send(self.random.choice(pool))
                self.results.flows[flow] = self.results.flows.get(flow, 0) + 1
            except FlowError:
                self.results.failed_flows[flow] = self.results.failed_flows.get(flow, 0) + 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_level(url: str, corpus: Corpus, users: int, duration: float, tag: str) -> dict[str, Any]:
    results = Results()
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) as client:
        endpoint = f"{url.rstrip('/')}/webhooks/rest/webhook"
        crowd = [User(client, endpoint, corpus, results, seed=i + 1, tag=tag) for i in range(users)]
        started = time.monotonic()
        await asyncio.gather(*(u.run(started + duration) for u in crowd))
        elapsed = time.monotonic() - started
    lat = results.latencies
    return {
        "users": users,
        "seconds": round(elapsed, 2),
        "messages": len(lat),
        "throughput": round(len(lat) / elapsed, 2),
        "p50_ms": round(percentile(lat, 0.50) * 1000, 1),
        "p95_ms": round(percentile(lat, 0.95) * 1000, 1),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 1),
        "errors": sum(results.errors.values()),
        "error_kinds": results.errors,
        "flows": results.flows,
        "failed_flows": results.failed_flows,
        "cases": results.cases,
    }


# --- the servers, their memory and their database -----------------------------------------------------------------


def rss_of_children() -> dict[str, int]:
    """RSS in bytes of every process below this one, by command (Linux /proc)."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - mine
        mine |= frontier
    usage: dict[str, int] = {}
    for pid in mine:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    name = (
                        "actions"
                        if "actions.server" in commands[pid]
                        else "rasa"
                        if "rasa" in commands[pid]
                        else "other"
                    )
                    usage[name] = usage.get(name, 0) + int(line.split()[1]) * 1024
    return usage


def count_cases(database_url: str, tag: str) -> tuple[int, int]:
    """Cases and enrollments made by this run's senders."""
    from sqlalchemy import func, select

    from actions.db.models import Enrollment, HardshipCase
    from actions.db.session import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            like = f"bench-{tag}-%"
            cases = session.execute(
                select(func.count()).select_from(HardshipCase).where(HardshipCase.channel_user_id.like(like))
            ).scalar_one()
            enrollments = session.execute(
                select(func.count()).select_from(Enrollment).where(Enrollment.channel_user_id.like(like))
            ).scalar_one()
            return int(cases), int(enrollments)
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def servers(database_url: str) -> Iterator[str]:
    from actions.db.migrate import upgrade
    from actions.db.session import make_engine, make_sessionmaker
    from actions.launcher import running_servers
    from actions.services.demo import load_demo
    from actions.training import train

    engine = make_engine(database_url)
    upgrade(engine)
    load_demo(make_sessionmaker(engine))
    engine.dispose()
    model, _ = train(ROOT / "config.yml", ROOT / "models")
    env = {**os.environ, "DATABASE_URL": database_url, "RASA_TELEMETRY_ENABLED": "false", "LOG_LEVEL": "WARNING"}
    with running_servers(model, rasa_port=free_port(), action_port=free_port(), env=env,
                         log_dir=OUT / "logs") as url:  # fmt: skip
        yield url


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| users | msg/s | p50 ms | p95 ms | p99 ms | errors | declarations done | cases in db | RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in report["levels"]:
        rss = level.get("rss_bytes")
        lines.append(
            f"| {level['users']} | {level['throughput']} | {level['p50_ms']} | {level['p95_ms']} | {level['p99_ms']} "
            f"| {level['errors']} | {len(level['cases'])} | {level.get('cases_in_db', '–')} "
            f"| {round(sum(rss.values()) / 2**20) if rss else '–'} |"
        )
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    corpus = Corpus.load()
    levels = [int(n) for n in args.levels.split(",")]
    report: dict[str, Any] = {"duration": args.duration, "mix": MIX, "levels": []}
    with contextlib.ExitStack() as stack:
        url, database_url = args.url, None
        if url is None:
            database_url = f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/bench.db"
            url = stack.enter_context(servers(database_url))
        for users in levels:
            tag = f"{users}u{int(time.time())}"
            level = await run_level(url, corpus, users, args.duration, tag)
            if database_url is not None:
                level["rss_bytes"] = rss_of_children()
                level["cases_in_db"], level["enrollments_in_db"] = count_cases(database_url, tag)
            report["levels"].append(level)
            print(markdown({"levels": [level]}).splitlines()[-1], flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="50,200,500,1000", help="concurrent conversations, comma-separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per level")
    parser.add_argument("--url", default=None, help="a running Rasa server; default: start one")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    report = asyncio.run(main_async(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (out / "load.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
