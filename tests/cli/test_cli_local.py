"""Every ``geobatch`` command against a running local mode, with its errors.

The CLI is run with click's CliRunner and ``--api-url`` pointing at the local API; requests are
SigV4-signed with the test credentials that tests/conftest.py puts in the environment.
"""

from __future__ import annotations

import contextlib
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import geobatch as gb
from geobatch.cli import main
from geobatch.local import stop_background
from geobatch.wire import env

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]


def tile_job(x):
    """Succeeds with a JSON result, except for input 3, which fails with a known message."""
    print(f"processing tile {x}")
    if x == 3:
        raise RuntimeError("tile 3 is corrupt")
    return {"tile": x}


def slow_job(seconds):
    import time

    time.sleep(seconds)
    return seconds


@pytest.fixture(scope="module")
def api_url(local_stack: Any) -> str:
    return str(local_stack.api_url)


@pytest.fixture(autouse=True)
def _reset_default_client() -> Iterator[None]:
    # --api-url makes a default client; never let it leak into other tests.
    yield
    gb.set_default_client(None)


@pytest.fixture(scope="module")
def client(api_url: str) -> gb.Client:
    return gb.Client(api_url)


@pytest.fixture(scope="module")
def finished(client: gb.Client) -> Iterator[gb.Function]:
    """A Function whose 5 jobs have all ended: 4 successes (tagged 'even'/'odd') and 1 failure."""
    fn = gb.Function(tile_job, name=f"cli-{uuid.uuid4().hex[:8]}", client=client, retry_count=0)
    fn.save()
    fn.map([(0,), (2,), (4,)], tags=["even"])
    fn.map([(1,), (3,)], tags=["odd"])
    fn.wait_for_completion(progress=False)
    yield fn
    with contextlib.suppress(gb.GeoBatchError):
        fn.delete(delete_results=True)


def cli(api_url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--api-url", api_url, *args], input=input)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def one_line_error(result: Result, text: str, code: int = 1) -> None:
    """A user error: exit code ``code``, one line on stderr that contains ``text``, no traceback."""
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    if code == 1:
        assert len(lines) == 1, lines
    assert text in result.stderr and "Traceback" not in result.output


def rows(table: str) -> int:
    """Rows of a printed table (without its header)."""
    return len(table.strip().splitlines()) - 1


def job_id(fn: gb.Function, *statuses: str) -> str:
    search = fn.jobs
    if statuses:
        search = search.filter(gb.Job.status.in_(statuses))
    return str(search.limit(1).collect()[0].id)


# ----------------------------------------------------------------------------- functions


def test_functions_list_with_counts(api_url: str, finished: gb.Function) -> None:
    table = ok(cli(api_url, "functions", "list", "--name", finished.name)).stdout
    assert finished.id in table and "5/5" in table and "success=4" in table and "failure=1" in table
    data = json.loads(ok(cli(api_url, "--json", "functions", "list", "--status", "ready")).stdout)
    mine = next(f for f in data if f["id"] == finished.id)
    assert mine["job_statistics"]["success"] == 4
    one_line_error(cli(api_url, "functions", "list", "--page-size", "0"), "page_size")


def test_functions_get(api_url: str, finished: gb.Function) -> None:
    text = ok(cli(api_url, "functions", "get", finished.id)).stdout
    assert f"name:                  {finished.name}" in text and "5/5 done" in text
    data = json.loads(ok(cli(api_url, "functions", "get", finished.id, "--json")).stdout)
    assert data["job_statistics"]["failure"] == 1
    one_line_error(cli(api_url, "functions", "get", "nope"), "does not exist")


def test_functions_update_and_errors(api_url: str, finished: gb.Function, client: gb.Client) -> None:
    args = ["--concurrency", "3", "--cpus", "1", "--memory", "3GB", "--retry-count", "2", "--timeout", "60"]
    ok(cli(api_url, "functions", "update", finished.id, *args, "--disabled"))
    fn = gb.Function.get(finished.id, client=client)
    assert (fn.maximum_concurrency, fn.memory, fn.retry_count, fn.timeout, fn.enabled) == (
        3,
        3072,
        2,
        60,
        False,
    )
    data = json.loads(ok(cli(api_url, "functions", "update", finished.id, "--enabled", "--json")).stdout)
    assert data["enabled"] is True
    one_line_error(cli(api_url, "functions", "update", finished.id, "--memory", "64GB"), "does not fit cpus")
    one_line_error(cli(api_url, "functions", "update", finished.id, "--memory", "lots"), "not understood")
    one_line_error(
        cli(api_url, "functions", "update", finished.id, "--concurrency", "0"), "maximum_concurrency"
    )
    one_line_error(cli(api_url, "functions", "update", "nope", "--concurrency", "2"), "does not exist")
    one_line_error(cli(api_url, "functions", "update", finished.id), "nothing to change", code=2)
    one_line_error(cli(api_url, "functions", "update", finished.id, "--env", "novalue"), "KEY=VALUE", code=2)


def test_start_stop_enable_disable(api_url: str, finished: gb.Function) -> None:
    assert "status stopped" in ok(cli(api_url, "functions", "stop", finished.id)).stdout
    assert "status ready" in ok(cli(api_url, "functions", "start", finished.id)).stdout
    assert "enabled=False" in ok(cli(api_url, "functions", "disable", finished.id)).stdout
    data = json.loads(ok(cli(api_url, "functions", "enable", finished.id, "--json")).stdout)
    assert data["enabled"] is True
    one_line_error(cli(api_url, "functions", "start", "nope"), "does not exist")


def test_build_log(api_url: str, finished: gb.Function) -> None:
    ok(cli(api_url, "functions", "build-log", finished.id))
    one_line_error(cli(api_url, "functions", "build-log", "nope"), "does not exist")


def test_functions_delete(api_url: str, client: gb.Client) -> None:
    fn = gb.Function(tile_job, name=f"cli-del-{uuid.uuid4().hex[:8]}", client=client, auto_start=False)
    fn.save()
    assert cli(api_url, "functions", "delete", fn.id, input="n\n").exit_code == 1  # not confirmed
    assert f"deleted {fn.id}" in ok(cli(api_url, "functions", "delete", fn.id, "--yes")).stdout
    one_line_error(cli(api_url, "functions", "get", fn.id), "does not exist")


# ----------------------------------------------------------------------------- jobs


def test_jobs_list_filters_and_paging(api_url: str, finished: gb.Function) -> None:
    base = ["jobs", "list", "--function", finished.id]
    assert rows(ok(cli(api_url, *base)).stdout) == 5
    failed = ok(cli(api_url, *base, "--status", "failure")).stdout
    assert rows(failed) == 1 and "tile 3 is corrupt" in failed
    even = json.loads(ok(cli(api_url, *base, "--tag", "even", "--json")).stdout)
    assert len(even) == 3 and all("even" in j["tags"] for j in even)
    assert json.loads(ok(cli(api_url, *base, "--since", "2000-01-01T00:00:00Z", "--json")).stdout)
    assert json.loads(ok(cli(api_url, *base, "--until", "2000-01-01", "--json")).stdout) == []
    # One page at a time: the cursor of the next page is printed; following it gives the rest.
    first = ok(cli(api_url, *base, "--paged", "--page-size", "2"))
    assert rows(first.stdout) == 2 and "--cursor" in first.stderr
    page = json.loads(ok(cli(api_url, *base, "--paged", "--page-size", "2", "--json")).stdout)
    seen = [j["id"] for j in page["data"]]
    while page["page_cursor"]:
        page = json.loads(ok(cli(api_url, "jobs", "list", "--cursor", page["page_cursor"], "--json")).stdout)
        seen += [j["id"] for j in page["data"]]
    assert len(set(seen)) == 5
    one_line_error(cli(api_url, *base, "--since", "yesterday"), "ISO-8601")
    one_line_error(cli(api_url, *base, "--status", "bogus"), "bogus", code=2)
    one_line_error(cli(api_url, "jobs", "list", "--cursor", "garbage"), "Error")


def test_jobs_get_show_attempts(api_url: str, finished: gb.Function) -> None:
    bad = job_id(finished, "failure")
    good = job_id(finished, "success")
    assert "tile 3 is corrupt" in ok(cli(api_url, "jobs", "get", bad)).stdout
    shown = ok(cli(api_url, "jobs", "show", bad)).stdout
    assert "attempts:" in shown and "RuntimeError: tile 3 is corrupt" in shown
    assert "processing tile 3" in shown and "(no result: the job is failure)" in shown
    assert "PEAK MB" in shown and "queued " in shown
    shown = json.loads(ok(cli(api_url, "jobs", "show", good, "--json")).stdout)
    assert shown["timings"]["queued_seconds"] >= 0 and json.loads(shown["result_text"])["tile"] % 2 == 0
    attempts = json.loads(ok(cli(api_url, "jobs", "attempts", bad, "--json")).stdout)
    assert len(attempts["attempts"]) == 1 and attempts["attempts"][0]["exit_code"] not in (0, None)
    assert attempts["timings"]["started"] and attempts["timings"]["runtime"] is not None
    assert "EXIT" in ok(cli(api_url, "jobs", "attempts", good)).stdout
    for command in ("get", "show", "attempts", "log", "result"):
        one_line_error(cli(api_url, "jobs", command, "no-such-job"), "does not exist")


def test_jobs_log_and_result(api_url: str, finished: gb.Function, tmp_path: Path) -> None:
    good = job_id(finished, "success")
    log = ok(cli(api_url, "jobs", "log", good, "--no-timestamps")).stdout
    assert log.startswith("processing tile")
    assert "processing tile" in ok(cli(api_url, "jobs", "log", good, "--follow", "--attempt", "1")).stdout
    assert "tile" in json.loads(ok(cli(api_url, "jobs", "result", good)).stdout)
    target = tmp_path / "result.json"
    ok(cli(api_url, "jobs", "result", good, "-o", str(target)))
    assert json.loads(target.read_bytes())["tile"] % 2 == 0
    one_line_error(cli(api_url, "jobs", "result", job_id(finished, "failure")), "not completed successfully")
    one_line_error(cli(api_url, "jobs", "log", good, "--attempt", "7"), "Error")


def test_cancel_rerun_delete_by_filter(api_url: str, client: gb.Client) -> None:
    fn = gb.Function(slow_job, name=f"cli-ctl-{uuid.uuid4().hex[:8]}", client=client, auto_start=False)
    fn.save()
    try:
        ids = [j.id for j in fn.map([(30,), (30,), (30,)], tags=["batch1"])]
        canceled = ok(
            cli(api_url, "jobs", "cancel", "--function", fn.id, "--status", "pending", "--tag", "batch1")
        )
        assert canceled.stdout.startswith("canceled 3 jobs")
        rerun = json.loads(ok(cli(api_url, "jobs", "rerun", ids[0], "--json")).stdout)
        assert rerun["job_ids"] == [ids[0]] and gb.Job.get(ids[0], client=client).status == "pending"
        ok(cli(api_url, "jobs", "cancel", ids[0]))
        deleted = ok(cli(api_url, "jobs", "delete", "--function", fn.id, "--since", "2000-01-01", "--json"))
        assert sorted(json.loads(deleted.stdout)["job_ids"]) == sorted(ids)
        one_line_error(cli(api_url, "jobs", "cancel"), "give job ids", code=2)
        assert json.loads(ok(cli(api_url, "jobs", "cancel", "no-such-job", "--json")).stdout)["job_ids"] == []
    finally:
        with contextlib.suppress(gb.GeoBatchError):
            fn.delete(delete_results=True)


# ----------------------------------------------------------------------------- wait and ui


def test_wait_with_progress(api_url: str, finished: gb.Function) -> None:
    done = ok(cli(api_url, "wait", finished.id, "--progress", "--timeout", "30"))
    assert "success=4" in done.stdout and "5/5" in done.stderr  # the bar goes to stderr
    one_line_error(cli(api_url, "wait", "nope"), "does not exist")


def test_wait_times_out(api_url: str, client: gb.Client) -> None:
    fn = gb.Function(slow_job, name=f"cli-wait-{uuid.uuid4().hex[:8]}", client=client, auto_start=False)
    fn.save()
    try:
        fn.map([(1,)])
        fn.start()
        one_line_error(cli(api_url, "wait", fn.id, "--timeout", "0.1", "--no-progress"), "is not done after")
    finally:
        with contextlib.suppress(gb.GeoBatchError):
            fn.delete(delete_results=True)


def test_ui_command(api_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from geobatch.ui.server import MonitorServer

    def stop(self: MonitorServer, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C at once

    monkeypatch.setattr(MonitorServer, "serve_forever", stop)
    started = ok(cli(api_url, "ui", "--no-browser"))
    assert "http://127.0.0.1:" in started.stdout and api_url in started.stdout
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        one_line_error(cli(api_url, "ui", "--no-browser", "--port", port), "cannot listen")
    one_line_error(cli(api_url, "ui", "--port", "70000"), "70000", code=2)


# ----------------------------------------------------------------------------- what the docs promise


def test_errors_read_as_words_not_class_names(api_url: str) -> None:
    result = cli(api_url, "functions", "get", "nope")
    one_line_error(result, "Function nope does not exist")
    assert "NotFoundError" not in result.stderr
    result = cli(api_url, "functions", "list", "--page-size", "0")
    assert "Input should be" not in result.stderr and "should be greater than or equal to 1" in result.stderr


def test_documented_flags_and_json_everywhere(api_url: str, finished: gb.Function, client: gb.Client) -> None:
    ok(cli(api_url, "functions", "update", finished.id, "--maximum-concurrency", "4"))
    assert gb.Function.get(finished.id, client=client).maximum_concurrency == 4
    log = json.loads(ok(cli(api_url, "functions", "build-log", finished.id, "--json")).stdout)
    assert log["function_id"] == finished.id and isinstance(log["log"], str)
    done = job_id(finished, "success")
    result = json.loads(ok(cli(api_url, "jobs", "result", done, "--json")).stdout)
    assert result["job_id"] == done and "tile" in result["result"]
    one_line_error(cli(api_url, "functions", "list", "--status", "bogus"), "bogus", code=2)


def test_functions_delete_says_json(api_url: str, client: gb.Client) -> None:
    fn = gb.Function(tile_job, name=f"cli-{uuid.uuid4().hex[:8]}", client=client, auto_start=False).save()
    data = json.loads(ok(cli(api_url, "functions", "delete", fn.id, "--yes", "--json")).stdout)
    assert data == {"deleted": fn.id, "delete_results": False}


def test_plan_refuses_negative_inputs() -> None:
    for option in ("--seconds-per-tile", "--concurrency", "--cpus", "--memory-gb"):
        result = CliRunner().invoke(main, ["plan", option, "-5"])
        assert result.exit_code == 2 and "-5" in result.output and "$-" not in result.output, result.output


def test_preview_of_a_missing_product_is_one_line(
    local_stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --api-url the preview reads the configured S3 (here the session's local mode, through
    AWS_ENDPOINT_URL) and never starts a local mode of its own: it once started one in the user's
    default home and left it running."""
    home = tmp_path / "home"
    monkeypatch.setenv(env.LOCAL_HOME, str(home))
    for name, value in local_stack.aws_env().items():
        monkeypatch.setenv(name, value)
    try:
        result = cli(
            local_stack.api_url,
            "preview",
            "no-such-product",
            str(tmp_path / "out.png"),
            "--bucket",
            "no-such-bucket",
        )
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert "no-such-product" in result.stderr
        assert not home.exists(), "preview started a local mode although --api-url names an API"
    finally:
        stop_background(home)
