"""Headless Chromium for the UI tests: Debian's browser, driven by Playwright's Python package.

Playwright's own browser download is never used. Every wait a page makes is bounded by
``WAIT_MS``: long enough that a loaded CI machine does not miss it (no wait here is a performance
check), short enough that a wait which can never succeed fails with Playwright's own message well
before pytest-timeout stops the test. A failing test shows what its pages logged.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import traceback
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
# Every change of the monitor's message line goes to the console, so the report has the line
# even after the test closed its page (the map page has no such line).
_WATCH_MESSAGE = """
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("message");
  if (!box) return;
  new MutationObserver(() => console.debug(`#message: ${box.textContent}`))
    .observe(box, { childList: true, characterData: true, subtree: true });
});
"""


class Chromium:
    """The launched browser. Its pages wait up to ``WAIT_MS`` for anything and keep a log of what
    they printed, threw and failed to fetch, for the report of a failing test."""

    def __init__(self, launched: Any):
        self.launched = launched
        self._pages: list[tuple[float, Any, list[str], dict[Any, str]]] = []

    def new_page(self, **options: Any) -> Any:
        page = self.launched.new_page(**options)
        page.set_default_timeout(WAIT_MS)
        page.add_init_script(_WATCH_MESSAGE)
        opened = time.monotonic()
        lines: list[str] = []
        unanswered: dict[Any, str] = {}

        def log(line: str) -> None:
            lines.append(f"{time.monotonic() - opened:7.1f} s  {line}")

        def asked(request: Any) -> None:
            unanswered[request] = f"{request.method} {request.url}"

        def answered(response: Any) -> None:
            request = response.request
            unanswered.pop(request, None)
            # Reads are many and routine; writes are what a test's clicks send, so each is logged.
            if response.status >= 400 or request.method != "GET":
                log(f"HTTP {response.status}: {request.method} {response.url}")

        def failed(request: Any) -> None:
            unanswered.pop(request, None)
            log(f"request failed: {request.method} {request.url}: {request.failure}")

        page.on("console", lambda m: log(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: log(f"page error: {e}"))
        page.on("request", asked)
        page.on("response", answered)
        page.on("requestfailed", failed)
        self._pages.append((opened, page, lines, unanswered))
        return page

    def report(self, since: float) -> str:
        """What the pages opened since ``since`` showed and logged (their message line while open)."""
        parts = []
        for opened, page, lines, unanswered in self._pages:
            if opened < since:
                continue
            shown = "(page closed: see the #message lines)"
            if not page.is_closed():
                with contextlib.suppress(Exception):  # the report must not hide the test's failure
                    shown = page.locator("#message").inner_text(timeout=1_000) or "(none)"
            parts.append(f"page {page.url} · message: {shown}")
            parts.extend(f"  {line}" for line in lines[-KEPT_LINES:])
            parts.extend(f"  no answer yet: {what}" for what in unanswered.values())
        return "\n".join(parts) or "no page was opened"


def busy_threads(*, frames: int = 16) -> str:
    """The threads of this process that are inside GeoBatch's code (the monitor's proxy, local
    mode's API and daemon): their last three GeoBatch frames and what those called, innermost
    last. Where a page's unanswered request waits."""
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        stack = traceback.extract_stack(frame)
        ours = [i for i, f in enumerate(stack) if _ours(f.filename)]
        if ident == threading.get_ident() or not ours:
            continue
        calls = stack[ours[-3:][0] :][:frames]
        shown = [f"    {f.filename}:{f.lineno} {f.name}: {f.line or ''}" for f in calls]
        parts.append(f"thread {names.get(ident, ident)}:\n" + "\n".join(shown))
    return "\n".join(parts) or "no thread is in GeoBatch's code"


def _ours(filename: str) -> bool:
    return any(part in filename for part in ("/sdk/geobatch/", "/lambdas/", "/batch_image/"))
