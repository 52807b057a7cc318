"""After local mode restarts on another port, a client that found it by itself follows it."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

import geobatch as gb
from geobatch.wire import env

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


def test_client_follows_local_mode_to_its_new_port(
    local_stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(env.API_URL, raising=False)
    monkeypatch.setenv(env.LOCAL_HOME, str(tmp_path))
    client = gb.Client()
    # As after `geobatch local up` found local mode on a port that a restart has since given up...
    client._api_url, client._from_local_mode = f"http://127.0.0.1:{_dead_port()}", True
    # ...and local mode's state file (what `local up` writes) now names the new one.
    state = {"pid": os.getpid(), "api_url": local_stack.api_url}
    (tmp_path / "local.json").write_text(json.dumps(state))
    assert isinstance(client.get("/functions")["data"], list)
    assert client.api_url == local_stack.api_url
    explicit = gb.Client(f"http://127.0.0.1:{_dead_port()}", retries=0)
    with pytest.raises(gb.ServiceError, match="cannot reach"):
        explicit.get("/functions")  # an explicit URL is never swapped for another
