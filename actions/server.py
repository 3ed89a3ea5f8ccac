"""The action server (rasa_sdk on Sanic) with the runtime built at start-up: `python -m actions.server`."""

from __future__ import annotations

import argparse
import logging
import os

from rasa_sdk.endpoint import create_app

from actions import runtime
from actions.logs import configure_logging
from actions.services import charts
from actions.settings import Settings

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m actions.server")
    parser.add_argument("--port", type=int, default=settings.action_port)
    parser.add_argument("--host", default=os.environ.get("ACTION_HOST", "127.0.0.1"))
    parser.add_argument("--workers", type=int, default=settings.action_workers, help="Sanic worker processes")
    args = parser.parse_args(argv)
    configure_logging(settings.log_level)

    app = create_app("actions")

    async def start(_app: object, _loop: object) -> None:
        runtime.init(settings)
        charts.warm_up()

    async def stop(_app: object, _loop: object) -> None:
        runtime.reset()

    app.register_listener(start, "before_server_start")
    app.register_listener(stop, "after_server_stop")
    logger.info("action server listening on %s:%s (%d workers)", args.host, args.port, args.workers)
    app.run(host=args.host, port=args.port, workers=max(1, args.workers), access_log=False)


if __name__ == "__main__":
    main()
