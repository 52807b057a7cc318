"""``Job.statistics`` through the SDK against local mode (the real worker, API and S3 of local mode)."""

from __future__ import annotations

import contextlib
import uuid

import pytest

import geobatch as gb
from tests.support import wait_until

pytestmark = [pytest.mark.local, pytest.mark.timeout(240)]


def hold(mb, seconds):
    import time

    block = b"\x01" * (mb * 1024 * 1024)
    time.sleep(seconds)
    return len(block) // (1024 * 1024)


def test_job_statistics_of_a_job_that_holds_300_mb(local_api: gb.Client) -> None:
    fn = gb.Function(hold, name=f"hold-{uuid.uuid4().hex[:6]}", client=local_api, memory=2048, retry_count=0)
    try:
        job = fn(300, 6)  # longer than the 5 s sampling interval: a series of several rows
        job.wait_for_completion()
        assert job.result() == 300
        stats = job.statistics
        assert isinstance(stats, gb.AttemptStatistics)
        assert 250 <= stats.memory_peak_mb <= 400, stats
        assert stats.samples == len(stats.series) >= 2
        assert max(s.memory_mb for s in stats.series) >= 250
        assert [s.t for s in stats.series] == sorted(s.t for s in stats.series)
        # The peaks also come with the job, without reading the series.
        assert job.attempts[0].statistics is not None
        assert job.attempts[0].statistics.memory_peak_mb == stats.memory_peak_mb
        assert [a.attempt for a in job.attempt_statistics(attempt=1)] == [1]
        with pytest.raises(gb.NotFoundError, match="attempts 1 to 1"):
            job.attempt_statistics(attempt=2)
    finally:
        with contextlib.suppress(gb.GeoBatchError):
            fn.delete(delete_results=True)


def test_a_job_that_has_not_run_has_no_statistics(local_api: gb.Client) -> None:
    fn = gb.Function(hold, name=f"hold-{uuid.uuid4().hex[:6]}", client=local_api)
    try:
        fn.save()
        # Only a built Function can be stopped; the build runs on its own after the save.
        wait_until(lambda: fn.refresh().status != gb.FunctionStatus.BUILDING, "the build", poll=0.1)
        fn.stop()  # a failed build fails here, with the API's own message
        job = fn(1, 0)
        assert job.statistics is None
        assert job.attempt_statistics() == []
    finally:
        with contextlib.suppress(gb.GeoBatchError):
            fn.delete(delete_results=True)
