"""The monitor after `geobatch local down` / `local up`: it finds local mode on its new port."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

import geobatch as gb
from geobatch.wire import env
from tests.support import GENEROUS_SECONDS

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]


def test_monitor_reconnects_to_local_mode_after_a_restart(
    browser: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from playwright.sync_api import expect

    from geobatch import local
    from geobatch.ui.server import MonitorServer

    monkeypatch.delenv(env.API_URL, raising=False)
    monkeypatch.setenv(env.LOCAL_HOME, str(tmp_path))
    first = local.start_background(tmp_path, timeout=GENEROUS_SECONDS)
    server = None
    page = browser.new_page()
    try:
        client = gb.Client()  # as `geobatch ui` makes it: local mode found through its state file
        assert client.api_url == first["api_url"]
        server = MonitorServer(client).start()
        page.goto(server.url)
        expect(page.locator("#api-url")).to_have_text(first["api_url"])

        local.stop_background(tmp_path)  # geobatch local down
        page.locator("#refresh-state").filter(has_text="refresh failed").wait_for()
        # geobatch local up: another free port
        second = local.start_background(tmp_path, timeout=GENEROUS_SECONDS)
        expect(page.locator("#api-url")).to_have_text(second["api_url"])
        if second["api_url"] != first["api_url"]:
            page.locator("#message").filter(has_text="Reconnected").wait_for()

        # The page works against the new daemon: a Function saved now shows up.
        created = client.post("/functions", {"name": "after-restart"})
        function_id = created["function"]["id"]
        page.locator(f'#functions tr[data-id="{function_id}"]').wait_for()
    finally:
        page.close()
        if server is not None:
            server.shutdown()
            server.server_close()
        with contextlib.suppress(Exception):
            local.stop_background(tmp_path)
