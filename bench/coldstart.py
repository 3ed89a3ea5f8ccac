"""Cold start: from spawning `helpline serve` (what `make serve` runs) to the first correct answer over REST.

    .venv/bin/python bench/coldstart.py [--runs 3]

The model is trained beforehand (as `helpline train` would; not timed). Each run takes a fresh SQLite database
(DATABASE_URL), migrates it with `helpline db upgrade` (timed apart: `make serve` does it first through `make db`),
then spawns `helpline serve` on free ports (RASA_PORT, ACTION_PORT; no Telegram front end) and, from the spawn on,
asks a real question over the REST channel until the reply is correct: it names 低保 and gives a figure. Each
attempt is a new sender and waits at most 60 s; a refused connection or a wrong reply is retried after 0.2 s. Then
it stops the command with SIGTERM (which stops both servers) and makes sure nothing it started is left. Reports the
median over the runs into var/bench/coldstart.json and coldstart.md.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import report as figures  # noqa: E402
from load import OUT, descendants, free_port, process_table, text_of, trained_model  # noqa: E402

QUESTION = "低保一个月多少钱"
GIVE_UP_S = 180.0


def correct(reply: str) -> bool:
    """The answer to QUESTION: it names 低保 and gives a figure."""
    return "低保" in reply and re.search(r"\d", reply) is not None


def helpline(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "helpline"), *args]


def first_correct_answer(url: str, process: subprocess.Popen[bytes], started: float) -> tuple[float, int, str]:
    """Seconds from `started` to the first correct reply, the attempts it took, and the reply."""
    attempts = 0
    with httpx.Client(timeout=60.0) as client:
        while time.monotonic() - started < GIVE_UP_S:
            if process.poll() is not None:
                raise RuntimeError(f"helpline serve exited with code {process.returncode}")
            attempts += 1
            try:
                response = client.post(url, json={"sender": f"coldstart-{attempts}", "message": QUESTION})
                reply = text_of(list(response.json())) if response.status_code == 200 else ""
            except (httpx.HTTPError, ValueError):
                reply = ""
            if correct(reply):
                return time.monotonic() - started, attempts, reply
            time.sleep(0.2)
    raise RuntimeError(f"no correct answer within {GIVE_UP_S:g} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to `helpline serve`, which stops its servers; then SIGKILL whatever it started that is still there
    (each server runs in its own session, so each is killed by its process group)."""
    below = descendants(process.pid, process_table())
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pid in below:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue


def one_run(log: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        rasa_port, action_port = free_port(), free_port()
        env = {key: value for key, value in os.environ.items() if key != "TELEGRAM_BOT_TOKEN"}
        env.update(DATABASE_URL=f"sqlite:///{tmp}/coldstart.db", RASA_PORT=str(rasa_port),
                   ACTION_PORT=str(action_port), RASA_TELEMETRY_ENABLED="false")  # fmt: skip
        began = time.monotonic()
        subprocess.run(helpline("db", "upgrade"), cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        db_upgrade_s = time.monotonic() - began
        with log.open("ab") as output:
            started = time.monotonic()
            process = subprocess.Popen(helpline("serve"), cwd=ROOT, env=env, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            url = f"http://localhost:{rasa_port}/webhooks/rest/webhook"
            ready_s, attempts, reply = first_correct_answer(url, process, started)
        finally:
            stop(process)
    return {"db_upgrade_s": round(db_upgrade_s, 2), "ready_s": round(ready_s, 2), "attempts": attempts,
            "reply": reply[:200]}  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Cold start: `helpline serve` to the first correct answer\n",
        figures.machine_lines(report["machine"]),
        f"Model {Path(report['model']).name} already trained. Question {report['question']!r} over REST; correct: "
        "the reply names 低保 and gives a figure. `helpline db upgrade` on the fresh database is timed apart.\n",
        "| run | serve → correct answer s | attempts | db upgrade s |",
        "|---|---:|---:|---:|",
    ]
    for n, run in enumerate(report["runs"], 1):
        lines.append(f"| {n} | {run['ready_s']} | {run['attempts']} | {run['db_upgrade_s']} |")
    median = report["median"]
    lines += [
        f"| median | {median['ready_s']} | | {median['db_upgrade_s']} |",
        "",
        figures.targets_table([figures.cold_start_target(report)]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    out = Path(args.out)
    began = time.monotonic()
    model = trained_model()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    runs = [one_run(out / "logs" / "coldstart.log") for _ in range(args.runs)]
    report = {
        "benchmark": "coldstart",
        "machine": figures.machine(),
        "model": str(model),
        "question": QUESTION,
        "command": "helpline serve (RASA_PORT, ACTION_PORT, DATABASE_URL set)",
        "runs": runs,
        "median": {key: figures.median([run[key] for run in runs]) for key in ("ready_s", "db_upgrade_s")},
        "wall_s": round(time.monotonic() - began, 1),
    }
    figures.write(out, "coldstart", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
