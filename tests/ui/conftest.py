"""The browser every UI test drives, the monitor it opens, and what a failing test's pages showed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, Chromium, busy_threads

_STARTED = pytest.StashKey[float]()


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield Chromium(launched)
        launched.close()


@pytest.fixture
def monitor(local_api: Any) -> Iterator[str]:
    """The web monitor in front of local mode's API; its URL (tests/ui/test_map_browser.py has its
    own, with local mode's S3 for the map)."""
    from geobatch.ui.server import MonitorServer

    server = MonitorServer(local_api).start()
    yield server.url
    server.shutdown()
    server.server_close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_STARTED] = time.monotonic()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    chromium: Any = getattr(item, "funcargs", {}).get("browser")
    if report.failed and isinstance(chromium, Chromium):
        report.sections.append(("browser pages", chromium.report(item.stash.get(_STARTED, 0.0))))
        report.sections.append(("threads in GeoBatch code", busy_threads()))
