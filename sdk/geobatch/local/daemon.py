"""The local-mode process: ``python -m geobatch.local.daemon`` (started by ``geobatch local up``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from pathlib import Path

from geobatch.local.stack import LocalOptions, LocalStack
from geobatch_core import env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GeoBatch local mode")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--lost-worker-seconds", type=int, default=15)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    options = LocalOptions(
        home=args.home,
        api_port=args.port,
        lost_worker_seconds=args.lost_worker_seconds,
        pip_args=os.environ.get(env.LOCAL_PIP_ARGS, ""),
    )
    stack = LocalStack(options).start()
    stack.wait_ready()
    state = {
        "pid": os.getpid(),
        "api_url": stack.api_url,
        "moto_url": stack.moto_url,
        "aws_env": stack.aws_env(),
    }
    state_file = args.home / "local.json"
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(state_file)
    logging.getLogger("geobatch.local").info("local mode up: API %s, AWS %s", stack.api_url, stack.moto_url)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    stack.stop()
    state_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
