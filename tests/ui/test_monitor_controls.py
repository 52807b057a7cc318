"""Every control of the web monitor, clicked in headless Chromium against local mode.

Each test drives the page with real clicks and checks the outcome through the SDK (what the API
now holds), not only on the page. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

import geobatch as gb
from tests.ui.browser import WAIT_MS
from tests.ui.test_monitor_browser import shot

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]


def live_then_hold(ticks, mb):
    """Prints a line every half second (shipped as live log parts), then holds ``mb`` MB; the
    first attempt then fails, so the job has two attempts to look at."""
    import os
    import time

    for i in range(ticks):
        print(f"tick {i}", flush=True)
        time.sleep(0.5)
    block = b"\x01" * (mb * 1024 * 1024)
    time.sleep(1.0)
    print("held", len(block) // (1024 * 1024), "MB", flush=True)
    if os.environ["GEOBATCH_ATTEMPT"] == "1":
        raise RuntimeError("first attempt fails on purpose")
    return mb


def flaky(x):
    if x < 0:
        raise ValueError(f"bad input {x}")
    print(f"fine {x}")
    return x


def always_fails(x):
    raise RuntimeError(f"flaky upstream {x}")


@dataclass
class Screen:
    """One test's monitor: a page, the monitor's URL, the client that checks what the API holds,
    and the Functions the test made (deleted after it)."""

    page: Any
    url: str
    client: gb.Client
    made: list[gb.Function] = field(default_factory=list)

    def function(self, code: Any, *, name: str | None = None, **settings: Any) -> gb.Function:
        """A saved Function of ``code``, under a fresh name."""
        name = name or f"{code.__name__}-{uuid.uuid4().hex[:6]}"
        fn = gb.Function(code, name=name, client=self.client, **settings)
        fn.save()
        self.made.append(fn)
        return fn

    def open(self, fn: gb.Function) -> Any:
        """The monitor loaded, ``fn``'s jobs shown; ``fn``'s row."""
        self.page.goto(self.url)
        row = self.page.locator(f'#functions tr[data-id="{fn.id}"]')
        row.wait_for()
        row.get_by_role("button", name=f"Show jobs of {fn.name}").click()
        return row

    def saved(self, fn: gb.Function) -> gb.Function:
        """``fn`` as the API holds it now."""
        return gb.Function.get(fn.id, client=self.client)


@pytest.fixture
def ui(browser: Any, monitor: str, local_api: gb.Client) -> Iterator[Screen]:
    screen = Screen(browser.new_page(viewport={"width": 1500, "height": 1000}), monitor, local_api)
    yield screen
    for fn in screen.made:
        with contextlib.suppress(gb.GeoBatchError):
            fn.delete(delete_results=True)
    screen.page.close()


SLOW_FETCH = """([prefix, ms]) => {
  // A slow network for calls whose path starts with ``prefix``: each is sent at once, and its
  // answer handed to the page ``ms`` later (so a request can be in flight across a user's action).
  const real = window.__realFetch || window.fetch;
  window.__realFetch = real;
  window.__late = 0;
  window.__sent = 0;
  window.fetch = (url, init) => {
    const answer = real(url, init);
    if (!String(url).startsWith(prefix)) return answer;
    window.__sent++;
    return answer.then((r) => new Promise((done) => setTimeout(() => { window.__late++; done(r); }, ms)));
  };
}"""


STALE_ONCE = """(prefix) => {
  // The answers to calls whose path starts with ``prefix`` are kept; the first such call after
  // a write (PATCH) is answered with the answer before it, as a stale read would be.
  const real = window.fetch;
  let last = null;
  let armed = false;
  window.__late = 0;
  window.fetch = async (url, init) => {
    const method = (init && init.method) || "GET";
    if (method === "PATCH") armed = last !== null;
    if (!String(url).startsWith(prefix)) return real(url, init);
    if (armed && last !== null) {
      armed = false;
      window.__late++;
      return new Response(last, { status: 200, headers: { "Content-Type": "application/json" } });
    }
    const answer = await real(url, init);
    last = await answer.clone().text();
    return answer;
  };
}"""


def slow_fetch(page: Any, prefix: str, ms: int) -> None:
    page.evaluate(SLOW_FETCH, [prefix, ms])


def wait_until(page: Any, predicate: str) -> None:
    # wait_for_function would evaluate a string, which the page's CSP forbids.
    for _ in range(WAIT_MS // 100):
        if page.evaluate(predicate):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never true: {predicate}")


def message(page: Any, text: str) -> None:
    page.locator("#message").filter(has_text=text).wait_for()


def test_live_log_followed_then_every_attempt_and_its_statistics_chart(ui: Screen) -> None:
    from playwright.sync_api import expect

    page, local_api = ui.page, ui.client
    fn = ui.function(live_then_hold, retry_count=1, memory=2048)
    job = fn(14, 300)
    ui.open(fn)
    page.locator(f'#jobs tr[data-id="{job.id}"] td.status-running').wait_for()
    page.get_by_role("button", name=f"Open job {job.id}").click()
    follow = page.get_by_label("Follow (live log of the running attempt)")
    follow.wait_for()
    expect(follow).to_be_enabled()
    follow.check()
    message(page, "Following the log")
    # Parts of the running attempt's log arrive while it still runs.
    page.locator("#job-log").filter(has_text="tick 3").wait_for()
    assert gb.Job.get(job.id, client=local_api).status == "running"
    shot(page, "10-live-log")
    message(page, "follow stopped")  # the attempt ended: the page says so and stops following
    assert not follow.is_checked()
    page.locator("#detail-fields dd.status-success").wait_for()
    page.locator("#job-log").filter(has_text="held 300 MB").wait_for()

    # The chart of the attempt: peak memory near 300 MB, the same figure the SDK gives.
    caption = page.locator("#stats-caption")
    caption.filter(has_text="Peak memory").wait_for()
    peak = float(re.search(r"Peak memory ([\d.]+) MB", caption.inner_text()).group(1))
    assert 250 <= peak <= 400, caption.inner_text()
    assert page.locator("#stats-chart polyline.mem-line").count() == 1
    assert page.locator("#stats-chart polyline.cpu-line").get_attribute("points")
    stats = gb.Job.get(job.id, client=local_api).statistics
    assert stats is not None and stats.memory_peak_mb == peak
    shot(page, "11-statistics-chart")

    # Each attempt's log and chart can be picked: the failed first one, then the second again.
    page.get_by_role("button", name="Show attempt 1").click()
    page.locator("#log-attempt").filter(has_text="attempt 1 of 2 (run 0, failure)").wait_for()
    page.locator("#job-log").filter(has_text="first attempt fails on purpose").wait_for()
    page.locator("#stats-caption").filter(has_text="Attempt 1: Peak memory").wait_for()
    page.get_by_role("button", name="Show attempt 2").click()
    page.locator("#log-attempt").filter(has_text="attempt 2 of 2 (run 0, success)").wait_for()
    assert "first attempt fails" not in page.locator("#job-log").inner_text()


def test_function_controls_timeout_enable_start_stop_build_log_and_delete(ui: Screen) -> None:
    page = ui.page
    fn = ui.function(flaky, retry_count=0)
    row = ui.open(fn)
    row.locator("span.status-ready").wait_for()

    row.get_by_label(f"Timeout (s) of {fn.name}").fill("321")
    row.get_by_role("button", name=f"Save {fn.name}").click()
    message(page, "timeout=321")
    assert ui.saved(fn).timeout == 321
    page.get_by_role("button", name="Refresh").click()
    assert row.get_by_label(f"Timeout (s) of {fn.name}").input_value() == "321"

    row.get_by_label(f"Enabled {fn.name}").uncheck()
    message(page, f"Disabled {fn.name}")
    assert ui.saved(fn).enabled is False
    row.get_by_label(f"Enabled {fn.name}").check()
    message(page, f"Enabled {fn.name}")
    assert ui.saved(fn).enabled is True

    row.get_by_role("button", name=f"Stop {fn.name}").click()
    message(page, f"Stopped {fn.name}: status stopped")
    assert ui.saved(fn).status == "stopped"
    row.get_by_role("button", name=f"Start {fn.name}").click()
    message(page, f"Started {fn.name}: status ready")
    assert ui.saved(fn).status == "ready"

    row.get_by_role("button", name=f"Build log of {fn.name}").click()
    page.locator("#build-log-section").wait_for()
    shown = page.locator("#build-log").inner_text().strip()
    assert shown and shown != "…" and shown == fn.build_log().strip()
    shot(page, "12-function-controls")

    # Delete asks first: dismissed, nothing happens; accepted, the Function is gone.
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.get_by_role("button", name=f"Delete {fn.name}").click()
    message(page, f"Kept {fn.name}")
    assert ui.saved(fn).id == fn.id
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=f"Delete {fn.name}").click()
    message(page, f"Deleted Function {fn.name}")
    with pytest.raises(gb.NotFoundError):
        ui.saved(fn)
    assert page.locator(f'#functions tr[data-id="{fn.id}"]').count() == 0


def test_jobs_totals_page_sizes_time_window_failures_delete_and_loading(ui: Screen) -> None:
    from playwright.sync_api import expect

    page, local_api = ui.page, ui.client
    fn = ui.function(flaky, retry_count=0, maximum_concurrency=4)
    fn.map([(-i if i % 5 == 0 else i,) for i in range(1, 26)])  # 5 failures of 25
    fn.wait_for_completion(interval=1)
    ui.open(fn)
    info = page.locator("#page-info")
    expect(info).to_have_text("jobs 1–20 of 25 · page 1 of 2")
    page.get_by_role("button", name="Next page").click()
    expect(info).to_have_text("jobs 21–25 of 25 · page 2 of 2")
    page.get_by_role("button", name="Previous page").click()
    expect(info).to_have_text("jobs 1–20 of 25 · page 1 of 2")
    page.get_by_label("Page size").select_option("50")
    expect(info).to_have_text("jobs 1–25 of 25 · page 1 of 1")
    expect(page.locator("#jobs tbody tr")).to_have_count(25)

    # A time window: nothing was created in the future, everything since an hour ago. While the
    # list loads (the API is slowed down here) the page says so.
    slow_fetch(page, "/api/jobs?", 1500)
    future = (datetime.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page.get_by_label("Created from").fill(future)
    page.get_by_role("button", name="Apply filter").click()
    page.locator("#loading").wait_for(state="visible")
    expect(info).to_have_text("no jobs of 0 · page 1 of 1")
    page.locator("#loading").wait_for(state="hidden")
    slow_fetch(page, "/api/jobs?", 0)
    past = (datetime.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page.get_by_label("Created from").fill(past)
    page.get_by_label("Status").select_option("failure")
    page.get_by_role("button", name="Apply filter").click()
    expect(info).to_have_text("jobs 1–5 of 5 · page 1 of 1")

    # Failures grouped by cause: five jobs, one cause.
    page.get_by_role("button", name="Failures by cause").click()
    group = page.locator("#failure-groups tbody tr")
    expect(group).to_have_count(1)
    assert group.first.locator("td").first.inner_text() == "5"
    assert "ValueError: bad input" in group.first.inner_text()
    shot(page, "13-jobs-totals-failures")

    # Delete one failed job, confirming first.
    victim = page.locator("#jobs tbody tr").first.get_attribute("data-id")
    page.get_by_role("button", name=f"Open job {victim}").click()
    page.locator("#job-log").filter(has_text="bad input").wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete job").click()
    message(page, f"Deleted job {victim}")
    with pytest.raises(gb.NotFoundError):
        gb.Job.get(victim, client=local_api)
    expect(info).to_have_text("jobs 1–4 of 4 · page 1 of 1")


def test_reason_column_says_backing_off_while_a_job_waits_to_retry(ui: Screen) -> None:
    page = ui.page
    fn = ui.function(always_fails, retry_count=9)
    job = fn(1)
    ui.open(fn)
    reason = page.locator(f'#jobs tr[data-id="{job.id}"] td.reason')
    # Backoff doubles per failed attempt (local mode starts at 1 s), so within a few attempts the
    # job waits long enough for the 2 s refresh to see it.
    reason.filter(has_text="backing off").wait_for()
    assert "flaky upstream" not in reason.inner_text()
    shot(page, "14-backing-off")
    job.cancel()


def test_saved_values_are_not_repainted_by_an_older_answer(ui: Screen) -> None:
    from playwright.sync_api import expect

    page = ui.page
    fn = ui.function(flaky, maximum_concurrency=3)
    row = ui.open(fn)
    field = row.get_by_label(f"Concurrency of {fn.name}")
    expect(page.locator("#loading")).to_be_hidden()
    # As an eventually consistent index can (the cloud lists Functions from a GSI): the first list
    # after the save answers with what it held before the save.
    page.evaluate(STALE_ONCE, "/api/functions?")
    page.get_by_role("button", name="Refresh").click()  # the answer before the save, kept
    expect(page.locator("#loading")).to_be_hidden()
    field.fill("9")
    row.get_by_role("button", name=f"Save {fn.name}").click()
    message(page, "maximum_concurrency=9")
    wait_until(page, "() => window.__late >= 1")  # the old answer has landed
    expect(page.locator("#loading")).to_be_hidden()
    assert field.input_value() == "9"
    page.get_by_role("button", name="Refresh").click()  # a fresh answer agrees
    expect(page.locator("#loading")).to_be_hidden()
    assert field.input_value() == "9"
    assert ui.saved(fn).maximum_concurrency == 9


def test_polls_slowly_what_cannot_change_and_deletes_all_matching(ui: Screen) -> None:
    from playwright.sync_api import expect

    page, local_api = ui.page, ui.client
    # A Function whose build fails keeps its pending jobs for ever: nothing to poll every 2 s for.
    broken = ui.function(
        flaky, name=f"broken-{uuid.uuid4().hex[:6]}", requirements=["geobatch-no-such-package==0.0.1"]
    )
    jobs = broken.map([(i,) for i in range(3)])  # accepted while it builds; they wait
    with contextlib.suppress(gb.GeoBatchError):
        broken.wait_for_completion(interval=1)
    assert ui.saved(broken).status == "build_failed"
    row = ui.open(broken)
    row.locator("span.status-build_failed").wait_for()
    expect(row.locator(".counts")).to_contain_text("pending 3")
    expect(page.locator("#refresh-state")).to_contain_text("idle")
    page.get_by_role("button", name=f"Build log of {broken.name}").click()
    page.locator("#build-log").filter(has_text="geobatch-no-such-package").wait_for()
    shot(page, "15-build-failed")

    # Delete all matching (confirmed): the three pending jobs go.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete all matching").click()
    message(page, "Deleted 3 jobs (all statuses)")
    for job in jobs:
        with pytest.raises(gb.NotFoundError):
            gb.Job.get(job.id, client=local_api)
    expect(page.locator("#page-info")).to_have_text("no jobs of 0 · page 1 of 1")
