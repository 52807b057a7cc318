"""Job statistics through the real worker on moto: the series of each attempt, its peaks, where it
is stored (one object per attempt beside the log), and the API route that reads it."""

from __future__ import annotations

import json

import pytest

from geobatch_core import layout
from tests.core.helpers import ALICE, BOB, ready_function
from tests.core.test_worker import job_item, submit, worker

pytestmark = pytest.mark.moto

SOURCE = """
def work(kind, seconds=2.0):
    import time
    if kind == "memory":
        block = b"\\x01" * (300 * 1024 * 1024)  # written, so every page is resident
        time.sleep(seconds)
        return len(block)
    if kind == "busy":
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
        return n
    if kind == "sleep":
        time.sleep(seconds)
        return None
    if kind == "boom":
        raise RuntimeError("boom")
    return None
"""


def stored_series(svc, attempt):
    return json.loads(svc.blobs.get(attempt.statistics_key))


def test_a_job_that_holds_300_mb_peaks_near_300_mb(moto_services):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work", timeout=60)
    (job,) = submit(svc, function, ["memory"])
    worker(svc, function, sample_seconds=0.5).run()
    (attempt,) = job_item(svc, job).attempts
    summary = attempt.statistics
    assert 250 <= summary["memory_peak_mb"] <= 400, summary
    document = stored_series(svc, attempt)
    assert document["columns"] == ["t", "cpu_percent", "memory_mb", "net_rx_bytes", "net_tx_bytes"]
    assert len(document["rows"]) >= 2 and document["samples"] == len(document["rows"])
    assert max(row[2] for row in document["rows"]) >= 250  # the series shows it, not only the peak
    # One object per attempt, beside the log; the job item holds the summary only.
    assert attempt.statistics_key.endswith(".stats.json") and attempt.statistics_key.startswith("logs/")
    assert "rows" not in summary


def test_a_busy_loop_uses_about_one_core(moto_services):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work", timeout=60)
    busy, idle = submit(svc, function, ["busy", "sleep"])
    worker(svc, function, sample_seconds=0.5).run()
    (attempt,) = job_item(svc, busy).attempts
    summary = attempt.statistics
    # On an idle machine a busy loop gets one core (100%). On a loaded 2-core machine it gets what
    # the scheduler gives it, so the sampled figure is checked against the CPU time the job's own
    # process reported (getrusage in the child, an independent source), and one thread never
    # shows much more than one core.
    own_share = 100 * attempt.cpu_seconds / attempt.runtime
    assert 0.6 * own_share <= summary["cpu_mean_percent"] <= 1.5 * own_share + 5, (own_share, summary)
    assert summary["cpu_peak_percent"] <= 130, summary
    (sleeper,) = job_item(svc, idle).attempts
    assert sleeper.statistics["cpu_peak_percent"] < summary["cpu_peak_percent"] / 3, sleeper.statistics


def test_every_attempt_has_its_series_and_the_api_serves_them_to_the_owner_only(moto_services, api):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work", timeout=60, retry_count=1)
    (job,) = submit(svc, function, ["boom"])
    worker(svc, function, sample_seconds=0.5).run()
    stored = job_item(svc, job)
    assert stored.status == "failure" and len(stored.attempts) == 2
    status, body = api("GET", f"/jobs/{job.id}/statistics")
    assert status == 200, body
    assert [a["attempt"] for a in body["attempts"]] == [1, 2]
    assert all(a["series"] and a["series"][-1]["memory_mb"] > 0 for a in body["attempts"])
    status, one = api("GET", f"/jobs/{job.id}/statistics", query={"attempt": 2})
    assert status == 200 and [a["attempt"] for a in one["attempts"]] == [2]
    status, error = api("GET", f"/jobs/{job.id}/statistics", query={"attempt": 3})
    assert status == 404 and "attempts 1 to 2" in error["message"]
    status, error = api("GET", f"/jobs/{job.id}/statistics", query={"attempts": 1})
    assert status == 400  # unknown parameters are refused
    status, _ = api("GET", f"/jobs/{job.id}/statistics", principal=BOB)
    assert status == 404
    # The peaks come with the job itself, without the series.
    status, wire = api("GET", f"/jobs/{job.id}", principal=ALICE)
    assert wire["attempts"][0]["statistics"]["samples"] >= 1
    assert "statistics_key" not in wire["attempts"][0]


def test_a_job_shorter_than_one_interval_costs_no_object_but_still_has_its_sample(moto_services, api):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work", timeout=60)
    (job,) = submit(svc, function, ["none"])
    worker(svc, function).run()  # the default interval (5 s) is longer than the job
    (attempt,) = job_item(svc, job).attempts
    assert "statistics_key" not in attempt.to_item() and attempt.statistics["samples"] == 1
    key = layout.statistics_key(function.id, job.id.rpartition("-")[2], 0, 1)
    assert not svc.blobs.exists(key)
    status, body = api("GET", f"/jobs/{job.id}/statistics")
    assert status == 200, body
    (one,) = body["attempts"]
    assert len(one["series"]) == 1 and one["series"][0]["memory_mb"] == one["memory_peak_mb"] > 0


def test_deleting_the_job_deletes_its_series(moto_services, api):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work", timeout=60)
    (job,) = submit(svc, function, ["sleep"])
    worker(svc, function, sample_seconds=0.5).run()
    key = job_item(svc, job).attempts[0].statistics_key
    assert svc.blobs.exists(key)
    status, _ = api("DELETE", f"/jobs/{job.id}")
    assert status == 204
    assert not svc.blobs.exists(key)
