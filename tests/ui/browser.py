"""Headless Chromium for the UI tests: Debian's browser, driven by Playwright's Python package.

Playwright's own browser download is never used. Every wait a page makes is bounded by
``WAIT_MS``: long enough that a loaded CI machine does not miss it (no wait here is a performance
check), short enough that a wait which can never succeed fails with Playwright's own message well
before pytest-timeout stops the test. A failing test shows what its pages logged.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 120_000
KEPT_LINES = 40  # of each page's log, in a failing test's report


class Chromium:
    """The launched browser. Its pages wait up to ``WAIT_MS`` for anything and keep a log of what
    they printed, threw and failed to fetch, for the report of a failing test."""

    def __init__(self, launched: Any):
        self.launched = launched
        self._pages: list[tuple[float, Any, list[str]]] = []

    def new_page(self, **options: Any) -> Any:
        page = self.launched.new_page(**options)
        page.set_default_timeout(WAIT_MS)
        lines: list[str] = []

        def answered(response: Any) -> None:
            if response.status >= 400:
                lines.append(f"HTTP {response.status}: {response.request.method} {response.url}")

        page.on("console", lambda m: lines.append(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: lines.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: lines.append(f"request failed: {r.method} {r.url}: {r.failure}"))
        page.on("response", answered)
        self._pages.append((time.monotonic(), page, lines))
        return page

    def report(self, since: float) -> str:
        """What the pages opened since ``since`` showed and logged (their message line while open)."""
        parts = []
        for opened, page, lines in self._pages:
            if opened < since:
                continue
            shown = ""
            if not page.is_closed():
                with contextlib.suppress(Exception):  # the report must not hide the test's failure
                    shown = page.locator("#message").inner_text(timeout=1_000)
            parts.append(f"page {page.url} · message: {shown or '(none)'}")
            parts.extend(f"  {line}" for line in lines[-KEPT_LINES:])
        return "\n".join(parts) or "no page was opened"
