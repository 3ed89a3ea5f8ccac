"""Starts the action server and the Rasa server, waits until both answer, and stops both on Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from actions.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

WARMUP_SENDER = "__warmup__"


class StartupError(RuntimeError):
    """A server did not come up."""


def _get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return int(response.status)


def post_message(rasa_url: str, sender: str, message: str, timeout: float = 30.0) -> list[dict]:
    """One round trip through the REST channel; returns every reply part."""
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(
        f"{rasa_url}/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return list(json.loads(response.read().decode() or "[]"))


def wait_until_up(url: str, process: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartupError(f"{what} exited with code {process.returncode} while starting")
        try:
            if _get(url) < 500:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    raise StartupError(f"{what} did not answer at {url} within {timeout:.0f} s")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def running_servers(
    model: Path,
    *,
    rasa_port: int,
    action_port: int,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    startup_timeout: float = 180.0,
    root: Path = PROJECT_ROOT,
    telegram: bool = False,
) -> Iterator[str]:
    """Run both servers for the duration of the block; yields the Rasa base URL once it has been warmed up.

    With `telegram` and TELEGRAM_BOT_TOKEN in the environment, the Telegram front end (`python -m bot`) runs too.
    """
    environment = dict(os.environ if env is None else env)
    environment["ACTION_ENDPOINT_URL"] = f"http://localhost:{action_port}/webhook"
    environment.setdefault("RASA_TELEMETRY_ENABLED", "false")
    processes: list[subprocess.Popen] = []

    def spawn(name: str, command: list[str]) -> subprocess.Popen:
        output = None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            output = (log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command, cwd=root, env=environment, stdout=output, stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )  # fmt: skip
        processes.append(process)
        return process

    for port in (action_port, rasa_port):
        if not port_is_free(port):
            raise StartupError(f"port {port} is already in use: is another helpline still running?")
    try:
        actions = spawn("actions", [sys.executable, "-m", "actions.server", "--port", str(action_port)])
        rasa = spawn(
            "rasa",
            [
                sys.executable, "-m", "actions.rasa_server", "run",  # rasa, with a measured fix (its docstring)
                "--model", str(model),
                "--port", str(rasa_port),
                "--credentials", str(root / "credentials.yml"),
                "--endpoints", str(root / "endpoints.yml"),
            ],
        )  # fmt: skip
        wait_until_up(f"http://localhost:{action_port}/health", actions, 60, "action server")
        rasa_url = f"http://localhost:{rasa_port}"
        wait_until_up(f"{rasa_url}/", rasa, startup_timeout, "Rasa server")
        # The first parse after loading is slow (TensorFlow builds its graph): pay for it before anyone writes.
        post_message(rasa_url, WARMUP_SENDER, "你好", timeout=120)
        if telegram and environment.get("TELEGRAM_BOT_TOKEN"):
            environment["RASA_URL"] = rasa_url
            environment["ACTION_SERVER_URL"] = f"http://localhost:{action_port}"
            spawn("telegram", [sys.executable, "-m", "bot"])
        yield rasa_url
    finally:
        for process in reversed(processes):
            _stop(process)
