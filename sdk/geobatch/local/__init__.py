"""Local mode: GeoBatch on one machine, no AWS account (see ``geobatch local up``).

``ensure_local_api()`` is what the SDK calls when no API URL is configured: it returns the URL
of the running local API, starting local mode in the background first if needed.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from geobatch.wire import env, errors

ALREADY_RUNNING = 3  # the daemon's exit status when another one holds the home (see daemon.py)


# What local mode runs, from `pip install 'geobatch[local]'` (the control plane, the worker, moto).
LOCAL_MODULES = ("geobatch_core", "geobatch_api", "geobatch_ops", "geobatch_worker", "moto")


class LocalModeNotInstalledError(errors.GeoBatchError):
    """Local mode was needed (no API URL configured) but this install has the SDK only."""

    code = "local_mode_not_installed"


def require_local_mode() -> None:
    """Raise a typed error saying how to install local mode, or how to reach a deployed stack instead."""
    missing = [m for m in LOCAL_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise LocalModeNotInstalledError(
            f"local mode is not installed (missing: {', '.join(missing)}): "
            "pip install 'geobatch[local]', or point the SDK at a deployed stack with "
            f"{env.API_URL}=https://... (or geobatch --api-url URL)"
        )


def local_home() -> Path:
    return Path(os.environ.get(env.LOCAL_HOME) or Path.home() / ".geobatch")


def _state_file(home: Path) -> Path:
    return home / "local.json"


def read_state(home: Path | None = None) -> dict[str, Any] | None:
    path = _state_file(home or local_home())
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if _alive(state) else None


def _alive(state: dict[str, Any]) -> bool:
    try:
        os.kill(int(state["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return False
    try:
        # The URL is local mode's own http://127.0.0.1:<port>, from its state file: no user scheme.
        with urllib.request.urlopen(state["api_url"] + "/health", timeout=2) as response:  # nosec B310
            return bool(response.status == 200)
    except OSError:
        return False


def start_background(
    home: Path | None = None, *, timeout: float = 60.0, extra_args: list[str] | None = None
) -> dict[str, Any]:
    """Start the local daemon detached from this process and wait until its API answers.

    Starters for one home take turns (a lock on ``start.lock``), so two ``geobatch local up`` or
    an SDK auto-start racing one start one daemon; the daemon's own lock on the home makes that
    hold even for a daemon started by hand. Everyone waits for the one daemon's state file.
    """
    home = home or local_home()
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "start.lock", "a+") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        state = read_state(home)
        if state:
            return state
        require_local_mode()
        process = _spawn_daemon(home, extra_args or [])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = read_state(home)
            if state:
                return state
            if process.poll() not in (None, ALREADY_RUNNING):
                break  # it failed; when another daemon holds the home, wait for that one instead
            time.sleep(0.1)
    raise RuntimeError(f"local mode did not start within {timeout:.0f} s: see {home / 'daemon.log'}")


def _spawn_daemon(home: Path, extra_args: list[str]) -> subprocess.Popen[bytes]:
    with open(home / "daemon.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "geobatch.local.daemon", "--home", str(home), *extra_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, env.LOCAL_HOME: str(home)},
        )


def stop_background(home: Path | None = None, *, timeout: float = 30.0) -> bool:
    """Stop the local daemon (it stops its workers first); returns False when none was running."""
    home = home or local_home()
    try:
        state = json.loads(_state_file(home).read_text())
        pid = int(state["pid"])
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, KeyError):
        _state_file(home).unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _exited(pid):
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
    _state_file(home).unlink(missing_ok=True)
    return True


def _exited(pid: int) -> bool:
    """Whether the process has ended; reaps it when it is this process's child (a daemon the SDK or
    a test started from here), which would otherwise stay a zombie that ``kill(pid, 0)`` still finds."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass  # not our child (e.g. started by `geobatch local up`): its parent reaps it
    try:
        os.kill(pid, 0)
    except OSError:
        return True
    return False


def ensure_local_api() -> str:
    """The local API URL, starting local mode in the background when it is not running."""
    state = read_state()
    if state is None:
        require_local_mode()
        print("geobatch: starting local mode (stop it with `geobatch local down`)", file=sys.stderr)
        state = start_background()
    return str(state["api_url"])


def local_aws_env(home: Path | None = None) -> dict[str, str]:
    """Environment that points boto3 (and GDAL) at local mode's S3/DynamoDB/SQS."""
    state = read_state(home)
    if not state:
        raise RuntimeError("local mode is not running: start it with `geobatch local up`")
    return dict(state["aws_env"])
