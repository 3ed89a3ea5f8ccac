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
from contextlib import contextmanager, suppress
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


def warm_up(rasa_url: str, workers: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    senders = [WARMUP_SENDER] + [f"{WARMUP_SENDER}{n}" for n in range(1, 2 * workers - 1)]
    with ThreadPoolExecutor(max_workers=len(senders)) as pool:
        list(pool.map(lambda sender: post_message(rasa_url, sender, "你好", timeout=120), senders))


class Servers:
    """The helpline's processes (action server, Rasa server, optionally the Telegram front end), started and
    stopped one by one: `running_servers` runs them for a block; the fault tests also kill and restart one."""

    def __init__(
        self,
        model: Path,
        *,
        rasa_port: int,
        action_port: int,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        startup_timeout: float = 180.0,
        root: Path = PROJECT_ROOT,
    ) -> None:
        self.model, self.rasa_port, self.action_port = model, rasa_port, action_port
        self.log_dir, self.startup_timeout, self.root = log_dir, startup_timeout, root
        self.environment = dict(os.environ if env is None else env)
        self.environment["ACTION_ENDPOINT_URL"] = f"http://localhost:{action_port}/webhook"
        self.environment.setdefault("RASA_TELEMETRY_ENABLED", "false")
        self.workers = int(self.environment.get("RASA_WORKERS") or 1)
        self.environment["SANIC_WORKERS"] = str(self.workers)  # what Rasa reads; actions/stores.py checks the stores
        self.rasa_url = f"http://localhost:{rasa_port}"
        self.action_url = f"http://localhost:{action_port}"
        self.processes: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        output = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command, cwd=self.root, env=self.environment, stdout=output,
            stderr=subprocess.STDOUT if output else None, start_new_session=True,
        )  # fmt: skip
        if output is not None:
            output.close()  # the child has its own copy
        self.processes[name] = process
        return process

    def start_actions(self, wait: bool = True) -> None:
        if not port_is_free(self.action_port):
            raise StartupError(f"port {self.action_port} is already in use: is another helpline still running?")
        self._spawn("actions", [sys.executable, "-m", "actions.server", "--port", str(self.action_port)])
        if wait:
            self.wait_for_actions()

    def wait_for_actions(self) -> None:
        wait_until_up(f"{self.action_url}/health", self.processes["actions"], 60, "action server")

    def start_rasa(self) -> None:
        if not port_is_free(self.rasa_port):
            raise StartupError(f"port {self.rasa_port} is already in use: is another helpline still running?")
        rasa = self._spawn(
            "rasa",
            [
                sys.executable, "-m", "actions.rasa_server", "run",  # rasa, with measured fixes (its docstring)
                "--model", str(self.model),
                "--port", str(self.rasa_port),
                # Private by default: the REST channel trusts the sender id it is given (README, Deploying).
                "--interface", self.environment.get("RASA_HOST") or "127.0.0.1",
                "--credentials", str(self.root / "credentials.yml"),
                "--endpoints", str(self.root / "endpoints.yml"),
            ],
        )  # fmt: skip
        wait_until_up(f"{self.rasa_url}/", rasa, self.startup_timeout, "Rasa server")
        if "actions" in self.processes:
            self.wait_for_actions()  # the warm-up runs an action
        # The first parse after loading is slow (TensorFlow builds its graph): pay for it before anyone writes, in
        # each worker (a message goes to whichever worker accepts it first, so several are sent at once).
        warm_up(self.rasa_url, self.workers)

    def start_telegram(self) -> None:
        self.environment["RASA_URL"] = self.rasa_url
        self.environment["ACTION_SERVER_URL"] = self.action_url
        self._spawn("telegram", [sys.executable, "-m", "bot"])

    def kill(self, name: str) -> None:
        """SIGKILL a process and its workers, as a crash would end them."""
        process = self.processes.pop(name)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        port = self.rasa_port if name == "rasa" else self.action_port
        while not port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            _stop(self.processes.pop(name))


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
    servers = Servers(
        model, rasa_port=rasa_port, action_port=action_port, env=env, log_dir=log_dir,
        startup_timeout=startup_timeout, root=root,
    )  # fmt: skip
    try:
        servers.start_actions(wait=False)  # both load at once; Rasa waits for the action server before warming up
        servers.start_rasa()
        if telegram and servers.environment.get("TELEGRAM_BOT_TOKEN"):
            servers.start_telegram()
        yield servers.rasa_url
    finally:
        servers.stop()
