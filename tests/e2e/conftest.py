"""Fixtures of the end-to-end tests: Functions saved on local mode, deleted afterwards."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import geobatch as gb
from geobatch.wire import env
from tests.support import GENEROUS_SECONDS, wait_until


@pytest.fixture
def saved(local_api: gb.Client) -> Iterator[Any]:
    """``saved(fn, **settings)`` saves a Function with a unique name; all are deleted at the end."""
    made: list[gb.Function] = []

    def save(fn: Any, **settings: Any) -> gb.Function:
        function = gb.Function(fn, name=f"{fn.__name__}-{uuid.uuid4().hex[:6]}", **settings)
        function.save()
        made.append(function)
        return function

    yield save
    for function in made:
        with contextlib.suppress(gb.GeoBatchError):
            function.delete(delete_results=True)


@pytest.fixture
def daemon_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home of its own for a real local daemon (``geobatch local up``), stopped at the end."""
    from geobatch.local import stop_background

    home = tmp_path / "home"
    monkeypatch.setenv(env.LOCAL_HOME, str(home))
    monkeypatch.setenv(env.LOCAL_PIP_ARGS, "--no-index")  # builds never reach a package index
    yield home
    stop_background(home)


def daemon_up(home: Path) -> dict[str, Any]:
    """Start (or find) the home's daemon; a short lost-worker time keeps restarts quick."""
    from geobatch.local import start_background

    return start_background(home, timeout=GENEROUS_SECONDS, extra_args=["--lost-worker-seconds", "4"])


def wait_gone(pid: int) -> None:
    """Until the process is gone (reaped when it is a child of this one); no deadline (see tests/support)."""

    def gone() -> bool:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(gone, f"process {pid} to end", poll=0.1)
