"""The web monitor in headless Chromium (tests/ui/browser.py), through a whole run in local mode.

Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any

import pytest

import geobatch as gb
from tests.ui.browser import ARTIFACTS

pytestmark = [pytest.mark.local, pytest.mark.timeout(240)]

JOBS = 12


def bad_tile_every_fourth(x):
    """A job that fails for some inputs, with an error text the test looks for in the log."""
    import time

    time.sleep(0.5)
    if x % 4 == 0:
        raise ValueError(f"bad tile {x}: no data")
    print(f"tile {x} ok")
    return {"tile": x, "pixels": x * 100}


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_monitor_through_a_run(browser: Any, monitor: str, local_api: gb.Client) -> None:
    from playwright.sync_api import expect

    fn = gb.Function(
        bad_tile_every_fourth,
        name=f"monitor-{uuid.uuid4().hex[:8]}",
        client=local_api,
        maximum_concurrency=4,
        retry_count=0,
    )
    fn.save()
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    try:
        fn.map([(i,) for i in range(JOBS)])
        page.goto(monitor)
        row = page.locator(f'#functions tr[data-id="{fn.id}"]')
        row.wait_for()
        row.get_by_role("button", name=f"Show jobs of {fn.name}").click()
        row.locator(".counts").filter(has_text="success").wait_for()
        shot(page, "01-running")
        docs_shot = os.environ.get("GEOBATCH_DOCS_SCREENSHOT")
        if docs_shot:  # scripts/screenshot_monitor.py: the picture of docs/watching-a-run.md
            page.screenshot(path=docs_shot)

        # Progress reaches done/total; the page refreshes itself every 2 s meanwhile.
        row.locator(".progress-text").filter(has_text=f"{JOBS}/{JOBS}").wait_for()
        assert "failure 3" in row.locator(".counts").inner_text()
        shot(page, "02-done")

        # The jobs of the Function, filtered to failures; open one and read its log.
        page.get_by_label("Status").select_option("failure")
        page.get_by_role("button", name="Apply filter").click()
        jobs = page.locator("#jobs tbody tr")
        expect(jobs).to_have_count(3)
        failed_id = jobs.first.get_attribute("data-id")
        jobs.first.click()
        page.locator("#job-log").filter(has_text="bad tile").wait_for()
        assert "ValueError" in page.locator("#detail-fields").inner_text()
        assert page.locator("#attempts tbody tr").count() == 1
        shot(page, "03-failed-job")

        # Rerun it from the page: the page says so once the API answered, and the SDK sees a new run.
        assert page.locator("#detail-id").inner_text() == failed_id
        page.get_by_role("button", name="Rerun job").click()
        page.locator("#message").filter(has_text=f"Reran job {failed_id}").wait_for()
        assert gb.Job.get(failed_id, client=local_api).run == 1

        # Edit the concurrency inline and save; the SDK sees the change.
        concurrency = row.get_by_label(f"Concurrency of {fn.name}")
        concurrency.fill("7")
        row.get_by_role("button", name="Save").click()
        page.locator("#message").filter(has_text="maximum_concurrency=7").wait_for()
        assert gb.Function.get(fn.id, client=local_api).maximum_concurrency == 7
        shot(page, "04-edited")
    finally:
        page.close()
        with contextlib.suppress(gb.GeoBatchError):
            fn.delete(delete_results=True)


def test_proxy_refuses_other_targets_and_foreign_pages(monitor: str) -> None:
    """The proxy forwards only API paths, and only for calls that carry the page's header."""
    import urllib3

    http = urllib3.PoolManager()
    header = {"X-GeoBatch-UI": "1"}
    assert http.request("GET", monitor + "api/functions").status == 403  # no header: a foreign page
    assert http.request("GET", monitor + "api/functions", headers=header).status == 200
    for path in ("api/../secrets", "api/%2e%2e/x", "api/functions/a/b/c", "api//evil.example/x", "api/other"):
        assert http.request("GET", monitor + path, headers=header).status in (400, 404), path
    foreign = {**header, "Origin": "http://evil.example"}
    assert http.request("POST", monitor + "api/jobs/cancel", headers=foreign).status == 403
    rebinding = {**header, "Host": "evil.example:80"}
    assert http.request("GET", monitor + "api/functions", headers=rebinding).status == 421
    page = http.request("GET", monitor)
    assert page.status == 200 and b"GeoBatch monitor" in page.data
    assert b"testing" not in http.request("GET", monitor + "ui-api/config", headers=header).data


def fail_odd(x):
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


def test_an_older_job_list_answer_does_not_paint_over_a_newer_filter(
    browser: Any, monitor: str, local_api: gb.Client
) -> None:
    """A refresh's listing still on the wire when the user applies a filter: once its answer comes,
    the page keeps the filtered list (it used to paint the older, unfiltered one over it)."""
    from playwright.sync_api import expect

    fn = gb.Function(fail_odd, name=f"race-{uuid.uuid4().hex[:8]}", client=local_api, retry_count=0)
    fn.save()
    older: list[Any] = []  # the refresh's listing, sent before the filter
    filtered: list[Any] = []  # the filtered listing, answered at once
    later: list[Any] = []  # listings after those: held until the list is checked

    def route(r: Any) -> None:
        if "filter=" not in r.request.url and not older:
            older.append(r)
        elif "filter=" in r.request.url and not filtered:
            filtered.append(r)
            r.continue_()
        else:
            later.append(r)

    page = browser.new_page(viewport={"width": 1360, "height": 900})
    try:
        fn.map([(i,) for i in range(6)])
        fn.wait_for_completion()
        page.goto(monitor)
        row = page.locator(f'#functions tr[data-id="{fn.id}"]')
        row.get_by_role("button", name=f"Show jobs of {fn.name}").click()
        jobs = page.locator("#jobs tbody tr")
        expect(jobs).to_have_count(6)

        page.route(lambda url: "/api/jobs?" in url, route)
        page.get_by_role("button", name="Refresh").click()  # its listing (no filter) is held
        page.get_by_label("Status").select_option("failure")
        page.get_by_role("button", name="Apply filter").click()
        expect(jobs).to_have_count(3)
        assert len(older) == 1

        # The older answer arrives; the page has acted on it once the refresh after the filter
        # sends its own listing.
        with page.expect_request(lambda r: "/api/jobs?" in r.url and "filter=" in r.url):
            older[0].continue_()
        assert page.locator("#jobs tbody tr td.status").all_inner_texts() == ["failure"] * 3
    finally:
        for held in later:
            with contextlib.suppress(Exception):
                held.continue_()
        page.close()
        with contextlib.suppress(gb.GeoBatchError):
            fn.delete(delete_results=True)
