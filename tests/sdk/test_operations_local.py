"""End to end in local mode: bulk operations through the SDK and the CLI, over HTTP to the real API
handler, applied by local mode's scaler pass (the same ``run_pass`` as the scaler Lambda's)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

import geobatch as gb
from geobatch.cli import main
from geobatch.wire import limits
from geobatch_core.services import bulk_scan

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]
JOBS = 300


def idle(x):
    return x


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local mode runs in this process: smaller thresholds make a few hundred jobs a large filter."""
    monkeypatch.setattr(limits, "SYNC_BULK_JOBS", 40)
    monkeypatch.setattr(limits, "SYNC_BULK_SCAN", 80)
    monkeypatch.setattr(bulk_scan, "STORE_PAGE", 50)


@pytest.fixture
def held_function(local_api: gb.Client) -> Iterator[Any]:
    """Functions whose jobs stay pending (not started), deleted afterwards."""
    made: list[gb.Function] = []

    def make() -> gb.Function:
        fn = gb.Function(idle, name=f"ops-{uuid.uuid4().hex[:8]}", client=local_api, auto_start=False)
        fn.save()
        made.append(fn)
        fn.map([(i,) for i in range(JOBS)])
        return fn

    yield make
    for fn in made:
        with contextlib.suppress(gb.GeoBatchError):
            fn.delete(delete_results=True)


def test_the_sdk_waits_on_a_large_cancel_and_rerun(held_function: Any) -> None:
    fn = held_function()
    small = fn.cancel_jobs(job_ids=[j.id for j in fn.jobs.limit(3)])
    assert len(small) == 3 and small.operation is None  # a few ids: done in the request
    canceled = fn.cancel_jobs(gb.Job.status == gb.JobStatus.PENDING)
    op = canceled.operation
    assert canceled == [] and op is not None and op.state == gb.OperationState.SUCCEEDED
    assert op.changed == canceled.changed == JOBS - 3 and op.total == JOBS - 3 and op.processed == JOBS - 3
    assert gb.Operation.get(op.id, client=fn.client).changed == JOBS - 3
    assert fn.refresh(includes=["job.statistics"]).job_statistics["canceled"] == JOBS
    rerun = fn.rerun()
    assert rerun.operation is not None and rerun.changed == JOBS
    assert fn.refresh(includes=["job.statistics"]).job_statistics["pending"] == JOBS


def test_the_cli_shows_a_large_cancel_with_a_progress_bar(local_api: gb.Client, held_function: Any) -> None:
    fn = held_function()
    args = ["--api-url", local_api.api_url, "jobs", "cancel", "--function", fn.id, "--status", "pending"]
    result = CliRunner().invoke(main, [*args, "--progress"])
    gb.set_default_client(None)  # --api-url configured a default client; do not leak it
    assert result.exit_code == 0, result.output
    assert f"canceled {JOBS} jobs (operation " in result.stdout
    assert "cancel [succeeded] [" + "#" * 30 + "]" in result.stderr  # the bar, full at the end
    again = CliRunner().invoke(main, [*args, "--json"])
    gb.set_default_client(None)
    assert again.exit_code == 0, again.output
    answer = json.loads(again.stdout)  # more jobs to read than a request may: an operation again
    assert answer["job_ids"] == [] and answer["operation"]["state"] == "succeeded"
    assert answer["operation"]["changed"] == 0  # nothing was pending any more
