"""The CLI: output, --json, and one-line errors with exit code 1."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from geobatch.cli import main

from .conftest import FakeHTTP, function_body, job_body

pytestmark = pytest.mark.unit


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_functions_list_json_and_table(client: Any, http: FakeHTTP) -> None:
    http.on("GET", "/functions", (200, {"data": [function_body(status="ready")], "meta": {}}))
    result = run("functions", "list", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["id"] == "fn1"
    table = run("functions", "list")
    assert "fn1" in table.stdout and "NAME" in table.stdout


def test_errors_are_one_line(client: Any, http: FakeHTTP) -> None:
    http.on("GET", "/jobs/nope", (404, {"code": "not_found", "message": "job nope not found"}))
    result = run("jobs", "get", "nope")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == ["Error: job nope not found"]
    assert "Traceback" not in result.output


def test_validation_error_is_one_line(client: Any, http: FakeHTTP) -> None:
    http.on("GET", "/functions/fn1", (200, function_body(status="ready")))
    result = run("functions", "update", "fn1", "--memory", "64GB")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "does not fit cpus=1" in result.stderr


def test_usage_errors_exit_2(client: Any) -> None:
    assert run("jobs", "cancel").exit_code == 2
    assert run("jobs", "list", "--status", "bogus").exit_code == 2


def test_jobs_list_filters(client: Any, http: FakeHTTP) -> None:
    http.on("GET", "/jobs", (200, {"data": [job_body("j1", status="failure")], "meta": {}}))
    result = run(
        "jobs",
        "list",
        "--function",
        "fn1",
        "--status",
        "failure",
        "--tag",
        "demo",
        "--since",
        "2024-05-01T00:00:00Z",
        "--limit",
        "5",
    )
    assert result.exit_code == 0, result.output
    query = http.calls[0].query
    assert query["function_id"] == "fn1" and query["limit"] == "5"
    assert json.loads(query["filter"]) == [
        {"op": "eq", "name": "status", "val": "failure"},
        {"op": "eq", "name": "tags", "val": "demo"},
        {"op": "ge", "name": "creation_date", "val": "2024-05-01T00:00:00Z"},
    ]


def test_jobs_cancel_by_filter(client: Any, http: FakeHTTP) -> None:
    http.on("POST", "/jobs/cancel", (200, {"job_ids": ["j1", "j2"], "page_cursor": None}))
    result = run("jobs", "cancel", "--function", "fn1", "--status", "pending")
    assert result.exit_code == 0 and "canceled 2 jobs" in result.stdout
    assert http.calls[0].json()["function_id"] == "fn1"


def test_jobs_result_and_log(client: Any, http: FakeHTTP) -> None:
    import base64

    http.on("GET", "/jobs/j1", (200, job_body("j1", status="success")))
    http.on(
        "GET",
        "/jobs/j1/result",
        (200, {"job_id": "j1", "size": 7, "data": base64.b64encode(b'{"a":1}').decode()}),
    )
    http.on("GET", "/jobs/j1/log", (200, json.dumps({"date": "2024-05-01T12:00:00Z", "log": "hello"}) + "\n"))
    assert json.loads(run("jobs", "result", "j1").stdout) == {"a": 1}
    assert run("jobs", "log", "j1", "--no-timestamps").stdout == "hello\n"
