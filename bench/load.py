"""Load benchmark of the REST channel: concurrent simulated conversations against our setup and the stock one;
throughput, latency, errors, memory, and the cases and enrollments they made.

    .venv/bin/python bench/load.py [--levels 50,200,500,1000] [--duration 60] [--runs 1] [--think 4]
        [--no-peer] [--url URL]

Each concurrency level runs that many virtual users for `--duration` seconds. A user runs one conversation after
another, each with a new sender id, drawn by the mix (55% policy, 20% insurance, 15% declarations driven to
completion, 5% status follow-ups, 5% cadre lookups) from bench/corpus.yml, which is kept apart from the training
data. Before each message a user pauses for a think time drawn uniformly from 0.5–1.5 × `--think` seconds (default
4: a villager reads the reply and types on a phone; the issue's bar, 120 messages/s from 500 conversations, is one
message per conversation every ~4 s). `--think 0` sends back to back: a saturation test, where latency is queueing.
At the end of the level no user starts another message; the messages in flight are waited for.

Two setups serve the same trained model, one after the other, each on a fresh SQLite database with the demo data:
`tuned`, ours as `helpline serve` starts it (actions/launcher.py), and `stock`, plain `rasa run` and
`rasa run actions` with Rasa's defaults (`--no-peer` skips it). `--runs N` repeats the whole sweep N times; the
report gives per level and setup the median over the runs, and keeps each run's figures in the JSON. With `--url`
it measures that running server alone (no peer, no memory, no database check).

Writes load.json (everything), load.md (tables, ratios, targets, machine) and load.png (throughput and latency
against concurrency) into var/bench/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import report as figures  # noqa: E402

from actions.services.idcard import check_digit, mask_id_number, mask_phone  # noqa: E402

CORPUS = ROOT / "bench" / "corpus.yml"
OUT = ROOT / "var" / "bench"
MIX = {"policy": 0.55, "insurance": 0.20, "declaration": 0.15, "status": 0.05, "cadre": 0.05}
CADRES = ("demo-cadre-taihe", "demo-cadre-yiyuan", "demo-cadre-zaozhuang")
CASE_NO = re.compile(r"SB-\d{4}-\d{6}")
ENROLLMENT_DONE = "请记下参保编号"  # the enrollment form's last reply (actions/templates/enroll_done.j2)
ENROLLMENT_REF = re.compile(r"QH\d{4}-[0-9A-Z]{6}")
MAX_DECLARATION_STEPS = 16
OFF_PATH_KEPT = 5
CLIENT_TIMEOUT_S = 30.0
RSS_EVERY_S = 2.0
# Error kinds, counted apart: a status other than 200, no answer within the client timeout, another transport
# failure, a 200 whose body is not JSON, an empty reply to a message that expects one, and a declaration that left
# the form's path before its case number.
ERROR_KINDS = ("non_200", "timeout", "transport", "bad_json", "empty_reply", "no_case_number")
SETUPS = {
    "tuned": "ours, as `helpline serve` starts it: `python -m actions.server` and `python -m actions.rasa_server run`",
    "stock": "the same model with Rasa's defaults: `rasa run` and `rasa run actions`",
    "url": "a server already running (--url)",
}

Send = Callable[[str], Awaitable[list[dict[str, Any]]]]


def text_of(parts: list[dict[str, Any]]) -> str:
    return "\n".join(str(p.get("text") or "") for p in parts)


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

    def messages(self) -> list[str]:
        """Every message of the corpus, the declarations' openings and answers included (the NLU parses each)."""
        answers = [value for facts in self.declarations for value in facts.values()]
        return [*self.policy, *self.insurance, *answers, *self.status, *self.cadre]


_identity_numbers = itertools.count(1)


def next_identity() -> tuple[str, str]:
    """A made-up 身份证号 and phone number, valid, in a region code no real county has, and never the same twice in
    this process: the bot answers a second declaration with the same 身份证号 with the first one's number."""
    n = next(_identity_numbers)
    birth = dt.date(1960, 1, 1) + dt.timedelta(days=n // 1000)
    first17 = f"370399{birth:%Y%m%d}{n % 1000:03d}"
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


class RequestFailed(Exception):
    """A message got no usable reply; the error is already counted by its kind."""


class OffPath(Exception):
    """The bot asked something the declaration form does not ask, or never gave the case number."""


class Abandoned(Exception):
    """The level ended before the conversation did."""


async def declaration(send: Send, facts: dict[str, str]) -> str:
    """Drive one declaration to its case number; returns the number, or raises OffPath when the bot leaves the
    form's path."""
    id_number, phone = next_identity()
    said = facts["opening"]
    parts = await send(said)
    for _ in range(MAX_DECLARATION_STEPS):
        reply = text_of(parts)
        found = CASE_NO.search(reply)
        if found and "申报编号" in reply:
            return found.group()
        questions = [str(p.get("text") or "") for p in parts if p.get("text")]
        answer = answer_for(questions[-1], facts, id_number, phone) if questions else None
        if answer is None:
            shown = mask_id_number(said) if said == id_number else mask_phone(said) if said == phone else said
            raise OffPath(f"to {shown!r} the bot answered {reply[-80:]!r}")
        said = answer
        parts = await send(said)
    raise OffPath("no case number after the whole form")


@dataclass
class Results:
    """What the users of one level saw: each reply's latency and arrival, errors by kind, flows by outcome, and the
    case numbers and enrollment references the bot gave."""

    latencies: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each reply
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    flows: dict[str, int] = field(default_factory=dict)
    failed_flows: dict[str, int] = field(default_factory=dict)
    abandoned_flows: dict[str, int] = field(default_factory=dict)
    cases: list[str] = field(default_factory=list)
    enrollments: list[str] = field(default_factory=list)
    off_path: list[str] = field(default_factory=list)  # the first few, to see where declarations went astray

    def error(self, kind: str) -> None:
        self.errors[kind] += 1

    @staticmethod
    def count(counter: dict[str, int], flow: str) -> None:
        counter[flow] = counter.get(flow, 0) + 1


class User:
    """One virtual user: conversations one after another until the deadline, each with a new sender (cadre
    lookups come from the demo cadres' accounts)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        corpus: Corpus,
        results: Results,
        seed: int,
        tag: str,
        think: float = 0.0,
    ):
        self.client, self.url, self.corpus, self.results = client, url, corpus, results
        self.think = think
        self.random = random.Random(seed)
        self.tag = tag
        self.seed = seed
        self.conversations = 0

    def sender(self, flow: str) -> str:
        self.conversations += 1
        if flow == "cadre":
            return self.random.choice(CADRES)
        return f"bench-{self.tag}-{self.seed}-{self.conversations}"

    async def message(self, sender: str, text: str) -> list[dict[str, Any]]:
        started = time.monotonic()
        try:
            response = await self.client.post(self.url, json={"sender": sender, "message": text})
        except httpx.TimeoutException:
            self.results.error("timeout")
            raise RequestFailed from None
        except httpx.HTTPError:
            self.results.error("transport")
            raise RequestFailed from None
        arrived = time.monotonic()
        self.results.latencies.append(arrived - started)
        self.results.arrivals.append(arrived)
        if response.status_code != 200:
            self.results.error("non_200")
            raise RequestFailed
        try:
            parts = list(response.json())
        except ValueError:
            self.results.error("bad_json")
            raise RequestFailed from None
        if not parts:
            self.results.error("empty_reply")
            raise RequestFailed
        reply = text_of(parts)
        if ENROLLMENT_DONE in reply and sender not in CADRES:
            self.results.enrollments.extend(ENROLLMENT_REF.findall(reply))
        return parts

    async def run(self, deadline: float) -> None:
        flows, weights = list(MIX), list(MIX.values())
        while time.monotonic() < deadline:
            flow = self.random.choices(flows, weights)[0]
            sender = self.sender(flow)

            async def send(text: str, sender: str = sender) -> list[dict[str, Any]]:
                if self.think > 0:
                    await asyncio.sleep(self.think * self.random.uniform(0.5, 1.5))
                if time.monotonic() >= deadline:
                    raise Abandoned
                return await self.message(sender, text)

            try:
                if flow == "declaration":
                    facts = self.random.choice(self.corpus.declarations)
                    self.results.cases.append(await declaration(send, facts))
                else:
                    pool = {"policy": self.corpus.policy, "insurance": self.corpus.insurance,
                            "status": self.corpus.status, "cadre": self.corpus.cadre}[flow]  # fmt: skip
                    await send(self.random.choice(pool))
                Results.count(self.results.flows, flow)
            except Abandoned:
                Results.count(self.results.abandoned_flows, flow)
            except RequestFailed:
                Results.count(self.results.failed_flows, flow)
            except OffPath as exc:
                self.results.error("no_case_number")
                if len(self.results.off_path) < OFF_PATH_KEPT:
                    self.results.off_path.append(f"{sender}: {exc}")
                Results.count(self.results.failed_flows, flow)


# --- the servers' memory and database ----------------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, str]]:
    """Every process on the machine: pid → (parent pid, command line) (Linux /proc)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            table[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), command)
    return table


def descendants(root: int, table: dict[int, tuple[int, str]]) -> dict[int, int]:
    """Each process below `root` → the child of `root` it descends from."""
    top: dict[int, int] = {}
    frontier = {pid: pid for pid, (parent, _) in table.items() if parent == root}
    while frontier:
        top.update(frontier)
        frontier = {pid: top[parent] for pid, (parent, _) in table.items() if parent in frontier and pid not in top}
    return top


def role(command: str) -> str:
    """Which server a command line is: ours (`python -m actions.server`, `python -m actions.rasa_server run`) or
    the stock console scripts (`rasa run actions …`, `rasa run …`)."""
    if "actions.server" in command or " run actions" in command:
        return "actions"
    return "rasa" if "rasa" in command else "other"


def rss_of_children() -> dict[str, int]:
    """RSS in bytes of the processes below this one, summed by the server each descends from (a server's own
    children count as that server)."""
    table = process_table()
    usage: dict[str, int] = {}
    for pid, top in descendants(os.getpid(), table).items():
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    name = role(table[top][1])
                    usage[name] = usage.get(name, 0) + int(line.split()[1]) * 1024
    return usage


async def sample_rss(samples: list[dict[str, int]], stop: asyncio.Event) -> None:
    """rss_of_children every RSS_EVERY_S seconds until `stop` is set."""
    while True:
        samples.append(await asyncio.to_thread(rss_of_children))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), RSS_EVERY_S)
            return


def peak_rss_mb(samples: Sequence[dict[str, int]]) -> dict[str, float | None]:
    """The highest sample of each server and of their total, in MiB."""

    def mb(value: int | None) -> float | None:
        return round(value / 2**20, 1) if value else None

    return {
        "rss_rasa_mb": mb(max((s.get("rasa", 0) for s in samples), default=None)),
        "rss_actions_mb": mb(max((s.get("actions", 0) for s in samples), default=None)),
        "rss_total_mb": mb(max((sum(s.values()) for s in samples), default=None)),
    }


def made_in_database(database_url: str, tag: str) -> tuple[set[str], int]:
    """The case numbers and the number of enrollments that this level's senders made."""
    from sqlalchemy import func, select

    from actions.db.models import Enrollment, HardshipCase
    from actions.db.session import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            like = f"bench-{tag}-%"
            cases = session.execute(select(HardshipCase.case_no).where(HardshipCase.channel_user_id.like(like)))
            enrollments = session.execute(
                select(func.count()).select_from(Enrollment).where(Enrollment.channel_user_id.like(like))
            ).scalar_one()
            return {str(number) for number in cases.scalars()}, int(enrollments)
    finally:
        engine.dispose()


# --- one level ---------------------------------------------------------------------------------------------------


async def run_level(
    url: str,
    corpus: Corpus,
    users: int,
    duration: float,
    tag: str,
    *,
    database_url: str | None = None,
    sample_memory: bool = False,
    think: float = 0.0,
) -> dict[str, Any]:
    """`users` virtual users for `duration` seconds against the Rasa server at `url`. Throughput counts the
    replies that arrived within the level's `duration`; the latency percentiles take every reply. With
    `database_url`, the cases and enrollments its senders made are looked up; with `sample_memory`, the RSS of the
    servers below this process is sampled during the level."""
    results = Results()
    samples: list[dict[str, int]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(samples, stop)) if sample_memory else None
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(timeout=httpx.Timeout(CLIENT_TIMEOUT_S), limits=limits) as client:
        endpoint = f"{url.rstrip('/')}/webhooks/rest/webhook"
        crowd = [User(client, endpoint, corpus, results, seed=i + 1, tag=tag, think=think) for i in range(users)]
        started = time.monotonic()
        deadline = started + duration
        await asyncio.gather(*(u.run(deadline) for u in crowd))
        elapsed = time.monotonic() - started
    stop.set()
    if sampler is not None:
        await sampler
    lat = results.latencies
    within = sum(arrival <= deadline for arrival in results.arrivals)
    level: dict[str, Any] = {
        "users": users,
        "seconds": round(elapsed, 2),
        "messages": len(lat),
        "messages_in_window": within,
        "throughput": round(within / duration, 2),
        "p50_ms": round(figures.percentile(lat, 0.50) * 1000, 1),
        "p95_ms": round(figures.percentile(lat, 0.95) * 1000, 1),
        "p99_ms": round(figures.percentile(lat, 0.99) * 1000, 1),
        # Errors are failures of the servers (timeouts, HTTP errors, empty replies). A declaration whose opening the
        # NLU did not take for a declaration ends off path: counted apart, it is an accuracy figure, not a load one.
        "errors": sum(n for kind, n in results.errors.items() if kind != "no_case_number"),
        "off_path": results.errors.get("no_case_number", 0),
        "error_kinds": results.errors,
        "flows": results.flows,
        "failed_flows": results.failed_flows,
        "abandoned_flows": results.abandoned_flows,
        "off_path_examples": results.off_path,
        "declarations_completed": len(results.cases),
        "enrollments_completed": len(results.enrollments),
        "cases_found": None,
        "cases_lost": None,
        "enrollments_found": None,
        **peak_rss_mb(samples),
    }
    if database_url is not None:
        found, enrollments = made_in_database(database_url, tag)
        level["cases_found"] = len(found)
        level["cases_lost"] = len(set(results.cases) - found)
        level["lost_case_numbers"] = sorted(set(results.cases) - found)
        level["enrollments_found"] = enrollments
    return level


# --- the two setups ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_database(directory: Path) -> str:
    """A new SQLite database in `directory`, migrated, with the demo data (its households and cadres)."""
    from actions.db.migrate import upgrade
    from actions.db.session import make_engine, make_sessionmaker
    from actions.services.demo import load_demo

    url = f"sqlite:///{directory / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    load_demo(make_sessionmaker(engine))
    engine.dispose()
    return url


def trained_model() -> Path:
    """The model of the current data and config (the one `helpline train` makes; trained here when missing)."""
    from actions.training import train

    model, _ = train(ROOT / "config.yml", ROOT / "models")
    return model


@contextlib.contextmanager
def tuned_servers(model: Path, database_url: str, log_dir: Path) -> Iterator[str]:
    """Our setup, started by the same code as `helpline serve` (actions.launcher.running_servers), warmed up."""
    from actions.launcher import running_servers

    env = {**os.environ, "DATABASE_URL": database_url, "RASA_TELEMETRY_ENABLED": "false"}
    with running_servers(
        model, rasa_port=free_port(), action_port=free_port(), env=env, log_dir=log_dir / "tuned"
    ) as url:
        yield url


STOCK_ENDPOINTS = "action_endpoint:\n  url: ${ACTION_ENDPOINT_URL}\n"
STOCK_CREDENTIALS = "rest:\n"  # Rasa's own REST channel (ours, actions/channels.py, checks and cleans requests)


def stock_commands(
    model: str,
    rasa_port: str,
    action_port: str,
    rasa: str,
    endpoints: str = "stock-endpoints.yml",
    credentials: str = "stock-credentials.yml",
) -> dict[str, list[str]]:
    """The stock setup: Rasa's own console script `rasa` with its defaults, nothing of ours in between. Its
    endpoints file names only the action server (ours also enables the selective domain and names the stores);
    its credentials file Rasa's own REST channel."""
    return {
        "actions": [rasa, "run", "actions", "--actions", "actions", "--port", action_port],
        "rasa": [rasa, "run", "--model", model, "--port", rasa_port,
                 "--credentials", credentials, "--endpoints", endpoints],
    }  # fmt: skip


@contextlib.contextmanager
def stock_servers(model: Path, database_url: str, log_dir: Path, startup_timeout: float = 180.0) -> Iterator[str]:
    """The stock setup on free ports, warmed up with one message as ours is; stopped (process groups) on exit.
    LOG_LEVEL is left unset so that both servers keep their default logging."""
    from actions.launcher import WARMUP_SENDER, _stop, post_message, wait_until_up

    rasa_port, action_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key != "LOG_LEVEL"}
    env.update(
        DATABASE_URL=database_url,
        RASA_TELEMETRY_ENABLED="false",
        ACTION_ENDPOINT_URL=f"http://localhost:{action_port}/webhook",
    )
    (log_dir / "stock").mkdir(parents=True, exist_ok=True)
    endpoints = log_dir / "stock" / "endpoints.yml"
    endpoints.write_text(STOCK_ENDPOINTS, encoding="utf-8")
    credentials = log_dir / "stock" / "credentials.yml"
    credentials.write_text(STOCK_CREDENTIALS, encoding="utf-8")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        rasa_script = str(Path(sys.executable).parent / "rasa")
        commands = stock_commands(
            str(model), str(rasa_port), str(action_port), rasa_script, str(endpoints.resolve()),
            str(credentials.resolve()),
        )  # fmt: skip
        for name, command in commands.items():
            with (log_dir / "stock" / f"{name}.log").open("ab") as log:
                processes.append(
                    subprocess.Popen(
                        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        actions, rasa = processes
        wait_until_up(f"http://localhost:{action_port}/health", actions, 60, "stock action server")
        url = f"http://localhost:{rasa_port}"
        wait_until_up(f"{url}/", rasa, startup_timeout, "stock Rasa server")
        post_message(url, WARMUP_SENDER, "你好", timeout=120)
        yield url
    finally:
        for process in reversed(processes):
            _stop(process)


# --- the report --------------------------------------------------------------------------------------------------


def level_table(levels: Sequence[dict[str, Any]]) -> str:
    """One row per level (medians over runs, or one run's figures)."""

    def cell(value: Any) -> str:
        return "–" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    lines = [
        "| conversations | msg/s | p50 ms | p95 ms | p99 ms | errors | off path | declarations done | cases found "
        "| lost | enrollments done / found | RSS rasa MiB | RSS actions MiB | RSS total MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lv in levels:
        lines.append(
            f"| {lv['users']} | {cell(lv['throughput'])} | {cell(lv['p50_ms'])} | {cell(lv['p95_ms'])} "
            f"| {cell(lv['p99_ms'])} | {cell(lv['errors'])} | {cell(lv.get('off_path'))} "
            f"| {cell(lv['declarations_completed'])} "
            f"| {cell(lv['cases_found'])} | {cell(lv['cases_lost'])} "
            f"| {cell(lv['enrollments_completed'])} / {cell(lv['enrollments_found'])} | {cell(lv['rss_rasa_mb'])} "
            f"| {cell(lv['rss_actions_mb'])} | {cell(lv['rss_total_mb'])} |"
        )
    return "\n".join(lines) + "\n"


def error_lines(runs: Sequence[Sequence[dict[str, Any]]]) -> str:
    """The errors by kind of each run and level that had any, with an example of a declaration gone astray."""
    lines = []
    for number, run in enumerate(runs, 1):
        for lv in run:
            kinds = {kind: n for kind, n in lv["error_kinds"].items() if n}
            if kinds:
                lines.append(
                    f"- run {number}, {lv['users']} conversations: "
                    + ", ".join(f"{kind} {n}" for kind, n in kinds.items())
                )
            if lv.get("off_path_examples"):
                lines.append(f"  - e.g. {lv['off_path_examples'][0]}")
    return "\n".join(lines) + "\n" if lines else "No errors in any run.\n"


def ratio_tables(ratios: dict[str, Any]) -> str:
    lines = [
        "Per level: at the same number of conversations, our throughput over the stock setup's "
        "(`throughput ratio`), with each setup's p95.\n",
        "| conversations | tuned msg/s | stock msg/s | throughput ratio | tuned p95 ms | stock p95 ms |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ratios["per_level"]:
        lines.append(
            f"| {r['users']} | {r['tuned_throughput']} | {r['stock_throughput']} | {r['throughput_ratio']}× "
            f"| {r['tuned_p95_ms']} | {r['stock_p95_ms']} |"
        )
    at_bar = ratios["at_latency_bar"]
    lines += [
        "",
        f'At the latency bar (the issue\'s "at equal p95"): for each setup, the highest level whose p95 ≤ '
        f"{at_bar['p95_bar_ms']:g} ms and its throughput, the most it sustained within the bar. "
        "`ratio at the latency bar` = ours over stock's.\n",
        "| setup | highest level with p95 within the bar | msg/s there | p95 ms there |",
        "|---|---:|---:|---:|",
    ]
    for setup in ("tuned", "stock"):
        best = at_bar[setup]
        lines.append(
            f"| {setup} | {best['users']} | {best['throughput']} | {best['p95_ms']} |"
            if best
            else f"| {setup} | none: p95 > {at_bar['p95_bar_ms']:g} ms at every level | – | – |"
        )
    found = at_bar["throughput_ratio"]
    lines.append(f"\nRatio at the latency bar: {f'{found}×' if found is not None else 'not measured (see above)'}\n")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    runs = report["runs"]
    lines = [
        "# Load benchmark of the REST channel\n",
        figures.machine_lines(report["machine"]),
        f"{report['duration_s']:g} s per level, {runs} run(s); the tables give the median over the runs of each "
        f"figure (load.json keeps each run's). Mix: "
        + ", ".join(f"{flow} {share:.0%}" for flow, share in report["mix"].items())
        + f". Client timeout {report['client_timeout_s']:g} s. Throughput: replies that arrived within the level's "
        "duration, per second; latency: every reply. RSS: the highest of the samples taken every "
        f"{RSS_EVERY_S:g} s during the level. Enrollments: the mix completes none (its insurance messages ask "
        "for quotes and estimates, its status messages ask after earlier ones), so both counts are expected to be "
        "0; they are counted to catch any that appear.\n",
    ]
    for setup, measured in report["setups"].items():
        lines += [
            f"## {setup}\n",
            f"{measured['description']}.\n",
            "\n".join(f"    {' '.join(command)}" for command in measured["commands"]) + "\n",
            level_table(measured["median"]),
            error_lines(measured["runs"]),
        ]
    if report.get("ratios"):
        lines += ["## tuned against stock\n", ratio_tables(report["ratios"])]
    if "targets" in report:
        lines += [
            "## Targets (issue 8) measured here\n",
            figures.targets_table([figures.Target(**t) for t in report["targets"]]),
        ]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Throughput, and p50/p95 latency (log scale), against concurrent conversations, one line per setup, with
    the targets dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    colours = {"tuned": "tab:blue", "stock": "tab:orange", "url": "tab:green"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for setup, measured in report["setups"].items():
        levels = [lv for lv in measured["median"] if lv["throughput"] is not None]
        users = [lv["users"] for lv in levels]
        colour = colours.get(setup)
        left.plot(users, [lv["throughput"] for lv in levels], "o-", color=colour, label=setup)
        right.plot(users, [lv["p95_ms"] for lv in levels], "o-", color=colour, label=f"{setup} p95")
        right.plot(users, [lv["p50_ms"] for lv in levels], "s:", color=colour, label=f"{setup} p50")
    left.axhline(figures.BAR_THROUGHPUT, color="grey", linestyle="--", label=f"target {figures.BAR_THROUGHPUT:g}")
    right.axhline(figures.BAR_P95_MS, color="grey", linestyle="--", label=f"target p95 {figures.BAR_P95_MS:g} ms")
    right.set_yscale("log")
    right.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    right.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    right.yaxis.set_minor_formatter(NullFormatter())
    for axis, title, unit in ((left, "Throughput", "messages/s"), (right, "Latency per message", "ms")):
        axis.set_xscale("log")
        axis.set_xticks(report["levels"])
        axis.set_xticklabels([str(n) for n in report["levels"]])
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_xlabel("concurrent conversations")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, which="major", alpha=0.3)
        axis.legend(fontsize=8)
    left.set_ylim(bottom=0)
    fig.suptitle(f"REST channel load, {report['duration_s']:g} s per level, median of {report['runs']} run(s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the sweep ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def started(setup: str, model: Path, log_dir: Path) -> Iterator[tuple[str, str]]:
    """Servers of `setup` on a fresh database of their own; yields (Rasa URL, database URL)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{setup}-") as tmp:
        database_url = fresh_database(Path(tmp))
        servers = tuned_servers if setup == "tuned" else stock_servers
        with servers(model, database_url, log_dir) as url:
            yield url, database_url


async def sweep(
    setup: str,
    url: str,
    database_url: str | None,
    corpus: Corpus,
    levels: Sequence[int],
    duration: float,
    run: int,
    think: float = 0.0,
) -> list[dict[str, Any]]:
    """Every level, one after the other, against one setup's servers."""
    measured = []
    for users in levels:
        tag = f"{setup}{run}-{users}u{int(time.time())}"
        level = await run_level(
            url,
            corpus,
            users,
            duration,
            tag,
            database_url=database_url,
            sample_memory=database_url is not None,
            think=think,
        )
        print(f"run {run} {setup}: " + level_table([level]).splitlines()[-1], flush=True)
        measured.append(level)
    return measured


def command_lines(setup: str) -> list[list[str]]:
    """How each setup's servers are started (M: the model, P and P2: free ports), for the report."""
    if setup == "tuned":
        return [["python", "-m", "actions.server", "--port", "P2"],
                ["python", "-m", "actions.rasa_server", "run", "--model", "M", "--port", "P", "--credentials",
                 "credentials.yml", "--endpoints", "endpoints.yml"]]  # fmt: skip
    if setup == "stock":
        return list(stock_commands("M", "P", "P2", ".venv/bin/rasa").values())
    return []


def build_report(args: argparse.Namespace, runs: dict[str, list[list[dict[str, Any]]]], wall: float) -> dict[str, Any]:
    """Medians over runs, ratios, targets and the machine, around the per-run figures."""
    report: dict[str, Any] = {
        "benchmark": "load",
        "machine": figures.machine(),
        "levels": args.level_list,
        "duration_s": args.duration,
        "runs": args.runs,
        "mix": MIX,
        "client_timeout_s": CLIENT_TIMEOUT_S,
        "think_s": args.think,
        "wall_s": round(wall, 1),
        "setups": {
            setup: {
                "description": SETUPS[setup],
                "commands": command_lines(setup),
                "runs": measured,
                "median": figures.median_levels(measured),
            }
            for setup, measured in runs.items()
        },
    }
    if "stock" in runs:
        report["ratios"] = figures.ratios(report["setups"]["tuned"]["median"], report["setups"]["stock"]["median"])
    if "tuned" in runs:
        report["targets"] = [vars(t) for t in figures.load_targets(report)]
    return report


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    corpus = Corpus.load()
    began = time.monotonic()
    levels, duration = args.level_list, args.duration
    if args.url:
        runs = {
            "url": [
                await sweep("url", args.url, None, corpus, levels, duration, run, args.think)
                for run in range(1, args.runs + 1)
            ]
        }
        return build_report(args, runs, time.monotonic() - began)
    model = trained_model()
    setups = ["tuned", *([args.peer] if args.peer else [])]
    runs = {setup: [] for setup in setups}
    for run in range(1, args.runs + 1):
        for setup in setups:  # one after the other, never at the same time
            with started(setup, model, Path(args.out) / "logs") as (url, database_url):
                runs[setup].append(await sweep(setup, url, database_url, corpus, levels, duration, run, args.think))
    return build_report(args, runs, time.monotonic() - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="50,200,500,1000", help="concurrent conversations, comma-separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per level")
    parser.add_argument("--think", type=float, default=4.0, help="mean seconds a user pauses before each message")
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole sweep; the report gives medians")
    parser.add_argument("--peer", choices=["stock"], default="stock", help="the setup to compare with (default)")
    parser.add_argument("--no-peer", dest="peer", action="store_const", const=None, help="measure ours alone")
    parser.add_argument("--url", default=None, help="measure this running Rasa server alone")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    args.level_list = [int(n) for n in args.levels.split(",")]
    report = asyncio.run(main_async(args))
    out = Path(args.out)
    figures.write(out, "load", report, markdown(report))
    plot(report, out / "load.png")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
