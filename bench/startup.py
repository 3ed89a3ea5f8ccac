"""Training time and model load time on this machine, as medians over several runs.

    .venv/bin/python bench/startup.py [--runs 3] [--skip-training]

Training: `helpline train --force` with config.yml. Model load: Agent.load of the trained model in this
process (first parse included), and `helpline serve` start-up until the warm-up reply (both servers). Prints the
medians and writes them to var/bench/startup.json, where `make bench`'s summary takes the training time from.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actions.launcher import running_servers  # noqa: E402
from actions.training import model_path  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_training() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "actions.cli", "train", "--force"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.monotonic() - started


def time_agent_load(model: Path) -> float:
    code = (
        "import asyncio, time; from rasa.core.agent import Agent; t = time.monotonic(); "
        f"a = Agent.load({str(model)!r}); asyncio.run(a.parse_message('你好')); print(time.monotonic() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def time_serve(model: Path, database_url: str) -> float:
    env = dict(os.environ, DATABASE_URL=database_url, RASA_TELEMETRY_ENABLED="false")
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory() as logs,
        running_servers(model, rasa_port=free_port(), action_port=free_port(), env=env, log_dir=Path(logs)),
    ):
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    results: dict[str, list[float]] = {"training_s": [], "agent_load_and_first_parse_s": [], "serve_ready_s": []}
    if not args.skip_training:
        results["training_s"] = [time_training() for _ in range(args.runs)]
    model = model_path(ROOT / "config.yml", ROOT / "models")
    if not model.exists():
        sys.exit(f"no model at {model}: run `make train` first")
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{tmp}/bench.db"
        subprocess.run([sys.executable, "-m", "actions.cli", "db", "upgrade"], cwd=ROOT, check=True,
                       env=dict(os.environ, DATABASE_URL=database_url), stdout=subprocess.DEVNULL)  # fmt: skip
        for _ in range(args.runs):
            results["agent_load_and_first_parse_s"].append(time_agent_load(model))
            results["serve_ready_s"].append(time_serve(model, database_url))
    summary = {
        name: {"median": round(statistics.median(values), 1), "runs": [round(v, 1) for v in values]}
        for name, values in results.items()
        if values
    }
    text = json.dumps({"machine_cores": os.cpu_count(), **summary}, ensure_ascii=False, indent=2)
    print(text)
    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
    (ROOT / "var" / "bench" / "startup.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
