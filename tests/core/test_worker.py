"""The worker loop against moto: receive → claim → run → record → ack or retry."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from geobatch_core.models import JobBulkCreate
from geobatch_core.services import functions, jobs
from geobatch_worker.loop import Worker, WorkerConfig
from tests.core.helpers import ALICE, ready_function

pytestmark = pytest.mark.moto

SOURCE = """
def work(x):
    import os, time
    if x == "sleep":
        time.sleep(30)
    if x == "boom":
        raise KeyError("boom")
    if x == "big":
        return "x" * 10_000
    print("working on", x)
    return {"x": x, "attempt": int(os.environ["GEOBATCH_ATTEMPT"])}
"""


def worker(svc, function, **config):
    config.setdefault("idle_seconds", 1.5)
    return Worker.for_services(
        WorkerConfig(
            function_id=function["id"],
            queue_url=function["queue_url"],
            worker_id=f"w-{uuid.uuid4().hex[:4]}",
            poll_seconds=0,
            **config,
        ),
        svc,
    )


def submit(svc, function, args):
    bulk = JobBulkCreate(
        function_id=function["id"], bulk_args=[[a] for a in args], reference_id=str(uuid.uuid4())
    )
    return jobs.submit_jobs(svc, ALICE, bulk).data


def job_item(svc, job):
    function_id, _, key = job.id.rpartition("-")
    return svc.jobs.get(function_id, key, consistent=True)


def test_runs_jobs_stores_results_logs_and_retries(moto_services):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work", retry_count=1, timeout=20)
    submitted = submit(svc, function, ["a", "boom", "big"])
    stats = worker(svc, function).run()
    assert stats.outcomes == {"success": 2, "failure": 2}
    a, boom, big = (job_item(svc, j) for j in submitted)
    assert a["status"] == "success" and json.loads(a["result"]) == {"x": "a", "attempt": 1}
    assert "working on a" in a["attempts"][0]["log"]
    assert boom["status"] == "failure" and boom["execution_count"] == 2
    assert boom["error_reason"] == "KeyError: 'boom'"
    assert big["status"] == "success" and "result" not in big and big["result_key"].startswith("results/")
    assert len(svc.blobs.get(big["result_key"])) == 10_002
    assert functions.job_statistics(svc, function["id"])["success"] == 2
    visible, in_flight = svc.queue.depth(function["queue_url"])
    assert (visible, in_flight) == (0, 0)  # every terminal job's message is gone


def test_duplicate_messages_run_a_job_once(moto_services):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work")
    (job,) = submit(svc, function, ["once"])
    body = json.dumps({"j": job.id.rpartition("-")[2], "r": 0})
    svc.queue.send_batch(function["queue_url"], [body, body])  # e.g. a resent submission
    stats = worker(svc, function).run()
    assert stats.claimed == 1 and stats.dropped == 2
    item = job_item(svc, job)
    assert item["status"] == "success" and item["execution_count"] == 1


def test_a_lost_worker_is_detected_and_its_job_retried(moto_services):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work", retry_count=1)
    (job,) = submit(svc, function, ["survivor"])
    # A worker claims the job and dies before finishing: no outcome, no ack, no more heartbeats.
    message = svc.queue.receive(function["queue_url"], max_messages=1, wait_seconds=0, visibility_seconds=1)[
        0
    ]
    from geobatch_core.services.execution import claim

    claimed = claim(svc.jobs, svc.settings, function, job.id.rpartition("-")[2], message.message_id, "dead")
    assert job_item(svc, job)["status"] == "running"
    # Its message reappears after the lease; the next worker records the loss and runs attempt 2.
    stats = worker(svc, function, idle_seconds=3).run()
    item = job_item(svc, job)
    assert claimed.attempt == 1 and stats.claimed == 1
    assert item["status"] == "success" and item["execution_count"] == 2
    assert item["attempts"][0]["reason"].startswith("worker lost: no heartbeat")
    assert json.loads(item["result"])["attempt"] == 2


def test_sigterm_finishes_current_job_and_returns_the_rest(moto_services):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work")
    submitted = submit(svc, function, list("abcdef"))
    w = worker(svc, function, prefetch=10, min_prefetch=10)
    original = w._run_job

    def run_then_stop(claimed, message):
        result = original(claimed, message)
        w.stopping.set()  # what the first SIGTERM does
        return result

    w._run_job = run_then_stop  # type: ignore[method-assign]
    thread = threading.Thread(target=w.run)
    thread.start()
    thread.join(timeout=60)
    statuses = sorted(job_item(svc, j)["status"] for j in submitted)
    assert statuses == ["pending"] * 5 + ["success"]
    visible, _ = svc.queue.depth(function["queue_url"])
    assert visible == 5  # handed back at once, not after the lease


def test_a_spent_lifetime_stops_claiming_and_returns_the_rest(moto_services):
    """Past its lifetime budget a worker finishes the job it runs, claims no other and hands the
    messages it holds back at once, so AWS Batch's attempt timeout never kills it mid-job."""
    svc = moto_services
    function = ready_function(svc, SOURCE, "work")
    submitted = submit(svc, function, list("abcdef"))
    w = worker(svc, function, prefetch=10, min_prefetch=10, lifetime_seconds=3600)
    original = w._run_job

    def run_then_age(claimed, message):
        result = original(claimed, message)
        w.config.lifetime_seconds = 0  # what an hour of running does
        return result

    w._run_job = run_then_age  # type: ignore[method-assign]
    stats = w.run()
    assert stats.claimed == 1
    statuses = sorted(job_item(svc, j)["status"] for j in submitted)
    assert statuses == ["pending"] * 5 + ["success"]
    visible, _ = svc.queue.depth(function["queue_url"])
    assert visible == 5  # handed back at once, for the replacement worker


def test_a_worker_without_lifetime_left_claims_nothing(moto_services, monkeypatch):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work")
    submitted = submit(svc, function, ["a", "b"])
    monkeypatch.setenv("GEOBATCH_WORKER_LIFETIME_SECONDS", "0")  # as the job definition sets it
    stats = worker(svc, function).run()
    assert stats.received == 0 and stats.claimed == 0
    assert [job_item(svc, j)["status"] for j in submitted] == ["pending", "pending"]


def test_held_messages_whose_lease_cannot_cover_a_job_are_not_claimed(moto_services):
    """SQS keeps a message invisible at most 12 h from its receipt: a message held (prefetched) too
    long for its job to finish within that goes back to the queue instead of being claimed."""
    import time

    from geobatch_core import limits

    svc = moto_services
    function = ready_function(svc, SOURCE, "work", timeout=limits.MAX_TIMEOUT_SECONDS)
    w = worker(svc, function)
    w._function = function
    margin = limits.SQS_MAX_LEASE_SECONDS - limits.MAX_TIMEOUT_SECONDS
    now = time.monotonic()
    assert w._lease_covers_a_job(now)  # a fresh message always does, at the longest timeout
    assert w._lease_covers_a_job(now - (margin - 700))
    assert not w._lease_covers_a_job(now - margin)
    # A Function saved before the cap (24 h allowed then) still runs fresh messages, never spins.
    w._function = {**function, "timeout": 86_400}
    assert w._lease_covers_a_job(time.monotonic())
