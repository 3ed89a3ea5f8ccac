"""NLU parse time in-process: the trained model's `Agent.parse_message` on every message of the load corpus.

    .venv/bin/python bench/parse.py [--runs 3] [--repeat 3] [--stock]

Loads the model of the current data and config (trained first when missing, as `helpline train` would) with
`rasa.core.agent.Agent.load`, with the same fixes to Rasa as our server (actions/rasa_server.py; `--stock`: without
them), warms it up, then in each run parses every message of bench/corpus.yml (all sections: the declarations'
openings and answers too) `--repeat` times, timing each `await agent.parse_message(text)` with
time.perf_counter. No HTTP, no tracker, no actions: the NLU pipeline alone. Reports p50/p95/p99 per run and their
medians over the runs into var/bench/parse.json and parse.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import report as figures  # noqa: E402
from load import OUT, Corpus, trained_model  # noqa: E402

WARMUP_MESSAGES = 50


async def time_parses(agent: Any, messages: Sequence[str], repeat: int) -> list[float]:
    """Seconds for each parse, every message `repeat` times (the whole list, then again)."""
    timings = []
    for _ in range(repeat):
        for text in messages:
            started = time.perf_counter()
            await agent.parse_message(text)
            timings.append(time.perf_counter() - started)
    return timings


def summarize(timings: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(timings),
        "mean_ms": round(statistics.fmean(timings) * 1000, 2),
        "p50_ms": round(figures.percentile(timings, 0.50) * 1000, 2),
        "p95_ms": round(figures.percentile(timings, 0.95) * 1000, 2),
        "p99_ms": round(figures.percentile(timings, 0.99) * 1000, 2),
        "max_ms": round(max(timings) * 1000, 2),
    }


async def measure(model: Path, messages: Sequence[str], runs: int, repeat: int) -> tuple[list[dict[str, Any]], float]:
    """Per-run summaries, and the seconds Agent.load took."""
    from rasa.core.agent import Agent

    started = time.perf_counter()
    agent = Agent.load(str(model))
    load_s = time.perf_counter() - started
    await time_parses(agent, messages[:WARMUP_MESSAGES], 1)
    return [summarize(await time_parses(agent, messages, repeat)) for _ in range(runs)], load_s


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# NLU parse in-process\n",
        figures.machine_lines(report["machine"]),
        f"Model {Path(report['model']).name}, loaded with Agent.load in {report['agent_load_s']} s; "
        f"{'stock Rasa' if report['stock'] else 'with the fixes our Rasa server runs with (actions/rasa_server.py)'}."
        f" Each run parses the {report['messages']} corpus messages {report['repeat']} times after a warm-up.\n",
        "| run | parses | mean ms | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(str(n), run) for n, run in enumerate(report["runs"], 1)] + [("median", report["median"])]
    for name, run in rows:
        lines.append(
            f"| {name} | {run['count']:g} | {run['mean_ms']} | {run['p50_ms']} | {run['p95_ms']} | {run['p99_ms']} "
            f"| {run['max_ms']} |"
        )
    lines += ["", figures.targets_table([figures.parse_target(report)])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="times each message is parsed per run")
    parser.add_argument("--stock", action="store_true", help="without our fixes to Rasa")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    # Rasa's logging as `rasa run` sets it up (LOG_LEVEL, default INFO): unconfigured, structlog would print a
    # debug line for every parse, inside the timing.
    configure_logging_and_warnings()
    configure_structlog()
    if not args.stock:
        from actions import rasa_server

        rasa_server.install()
    began = time.monotonic()
    model = trained_model()
    messages = Corpus.load().messages()
    runs, load_s = asyncio.run(measure(model, messages, args.runs, args.repeat))
    report = {
        "benchmark": "parse",
        "machine": figures.machine(),
        "model": str(model),
        "stock": args.stock,
        "agent_load_s": round(load_s, 1),
        "messages": len(messages),
        "repeat": args.repeat,
        "runs": runs,
        "median": {key: figures.median([run[key] for run in runs]) for key in runs[0]},
        "wall_s": round(time.monotonic() - began, 1),
    }
    figures.write(Path(args.out), "parse", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
