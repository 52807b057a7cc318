"""Per-status counts through the real paths: the API's statistics read the counter items (one
small Query, whatever the number of jobs), and the operator's recount (``geobatch_ops.recount``)
finds and corrects counts that something outside GeoBatch put out of step with the jobs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from geobatch.wire.models import JobBulkCreate
from geobatch_core import layout
from geobatch_core.adapters.sqlite import open_state
from geobatch_core.records import JobRecord
from geobatch_core.services import counters, jobs
from geobatch_ops import recount as recount_cli
from tests.core.helpers import ALICE

pytestmark = pytest.mark.moto


def _function(svc: Any, name: str = "counted") -> str:
    from geobatch.wire.models import FunctionCreate
    from geobatch_core.services import functions

    fid = functions.create_function(svc, ALICE, FunctionCreate(name=name)).function.id
    svc.functions.update(fid, {"status": "ready", "image_uri": "local"})
    return fid


def _submit(svc: Any, fid: str, n: int, reference: str) -> list[str]:
    bulk = JobBulkCreate(function_id=fid, bulk_args=[[i] for i in range(n)], reference_id=reference)
    return [j.id for j in jobs.submit_jobs(svc, ALICE, bulk).data]


def _operations(client: Any) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.*",
        lambda params, model, **_: calls.append((model.name, dict(params))),
    )
    return calls


@pytest.mark.parametrize("count", [3, 400])
def test_statistics_are_one_query_of_counter_items_at_any_size(api: Any, count: int) -> None:
    svc = api.services
    fid = _function(svc)
    for start in range(0, count, 200):
        _submit(svc, fid, min(200, count - start), f"r{start}")
    calls = _operations(svc.jobs.db)
    status, body = api("GET", f"/functions/{fid}", query={"include": "job.statistics"})
    assert status == 200 and body["job_statistics"]["pending"] == count
    queries = [p for name, p in calls if name == "Query"]
    assert len(queries) == 1 and queries[0]["ExpressionAttributeValues"][":p"] == {
        "S": layout.COUNT_KEY_PREFIX
    }
    read = svc.jobs.db.query(**{**queries[0], "ReturnConsumedCapacity": "TOTAL"})
    assert len(read["Items"]) <= layout.COUNT_SHARDS


def _outside_write(svc: Any, fid: str) -> None:
    """A job written around GeoBatch (a manual edit, a partial restore): no count moves with it."""
    svc.jobs.db.put_item(
        TableName=svc.jobs.table,
        Item={"function_id": {"S": fid}, "job_key": {"S": "0000000000000"}, "status": {"S": "failure"}},
    )


def test_the_recount_finds_corrects_and_then_agrees(moto_services: Any, monkeypatch: Any) -> None:
    svc = moto_services
    fid = _function(svc)
    _submit(svc, fid, 5, "r1")
    monkeypatch.setenv("GEOBATCH_FUNCTIONS_TABLE", "functions")
    monkeypatch.setenv("GEOBATCH_JOBS_TABLE", "jobs")
    monkeypatch.delenv("GEOBATCH_LOCAL_STATE", raising=False)
    import os

    out = io.StringIO()
    assert recount_cli.run(["--all"], os.environ, out) == 0
    assert json.loads(out.getvalue())["exact"] is True
    _outside_write(svc, fid)
    out = io.StringIO()
    assert recount_cli.run([fid], os.environ, out) == 1
    report = json.loads(out.getvalue())
    assert report["drift"] == {"failure": 1} and report["counted"] == {"pending": 5, "failure": 1}
    out = io.StringIO()
    assert recount_cli.run([fid, "--correct"], os.environ, out) == 0
    assert json.loads(out.getvalue())["corrected"] is True
    assert counters.job_statistics(svc.jobs, fid)["failure"] == 1
    assert counters.recount(svc.jobs, fid).exact


def test_local_mode_recount_runs_on_its_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    _, store, _ = open_state(path)
    store.put_new_batch([JobRecord(function_id="fn", job_key="01", status="pending")], check_existing=False)
    out = io.StringIO()
    assert recount_cli.run(["fn"], {"GEOBATCH_LOCAL_STATE": str(path)}, out) == 0
    assert json.loads(out.getvalue())["counted"] == {"pending": 1}


class MovingJobs:
    """The real store, with a worker's claim landing in the middle of the recount's scan."""

    def __init__(self, store: Any, fid: str, key: str) -> None:
        self._store, self._fid, self._key = store, fid, key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        page = self._store.query(*args, **kwargs)
        self._store.transition(
            self._fid, self._key, changes={"status": "running"}, expect={"status": "pending"}
        )
        return page


def test_a_recount_during_job_changes_says_busy_and_changes_nothing(moto_services: Any) -> None:
    svc = moto_services
    fid = _function(svc)
    (first, *_) = _submit(svc, fid, 3, "r1")
    _outside_write(svc, fid)
    report = counters.recount(MovingJobs(svc.jobs, fid, first.split("-", 1)[1]), fid, correct=True)
    assert report.busy and not report.corrected
    assert counters.job_statistics(svc.jobs, fid)["failure"] == 0  # no correction from a moving scan
    assert counters.recount(svc.jobs, fid, correct=True).corrected


def test_a_deleted_function_leaves_no_counter_items(api: Any) -> None:
    svc = api.services
    fid = _function(svc)
    _submit(svc, fid, 4, "r1")
    assert counters.job_statistics(svc.jobs, fid)["pending"] == 4
    assert api("DELETE", f"/functions/{fid}")[0] == 204
    left = boto3.client("dynamodb", region_name="us-east-1").query(
        TableName="jobs",
        KeyConditionExpression="function_id = :f",
        ExpressionAttributeValues={":f": {"S": fid}},
    )
    assert [i["job_key"]["S"] for i in left["Items"] if i["job_key"]["S"].startswith("~")] == []
