"""The local-mode process: ``python -m geobatch.local.daemon`` (started by ``geobatch local up``).

One daemon per home: it holds an exclusive ``flock`` on ``<home>/daemon.lock`` for as long as it
runs (the kernel drops the lock when the process dies, even by ``kill -9``), so a second daemon
for the same home exits at once and the first one's state file stays the truth.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import IO

from geobatch.local.stack import LocalOptions, LocalStack
from geobatch.wire import env

ALREADY_RUNNING = 3  # exit status of a daemon that found another one holding the home


def lock_home(home: Path) -> IO[str] | None:
    """The home's daemon lock, or None when another process holds it."""
    home.mkdir(parents=True, exist_ok=True)
    handle = open(home / "daemon.lock", "a+")  # noqa: SIM115 (held for the daemon's life)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def write_state(home: Path, stack: LocalStack) -> Path:
    state = {
        "pid": os.getpid(),
        "api_url": stack.api_url,
        "moto_url": stack.moto_url,
        "aws_env": stack.aws_env(),
        "home": str(home),
        "since": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    state_file = home / "local.json"
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(state_file)
    return state_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GeoBatch local mode")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--lost-worker-seconds", type=int, default=15)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    lock = lock_home(args.home)
    if lock is None:
        logging.getLogger("geobatch.local").info("another daemon runs for %s: exiting", args.home)
        return ALREADY_RUNNING
    options = LocalOptions(
        home=args.home,
        api_port=args.port,
        lost_worker_seconds=args.lost_worker_seconds,
        pip_args=os.environ.get(env.LOCAL_PIP_ARGS, ""),
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    stack = LocalStack(options).start()
    stack.wait_ready()
    state_file = write_state(args.home, stack)
    logging.getLogger("geobatch.local").info("local mode up: API %s, S3 %s", stack.api_url, stack.moto_url)
    done.wait()
    stack.stop()
    state_file.unlink(missing_ok=True)
    lock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
