"""Fault injection: the real worker loop and job state machine on moto, under crashes, duplicates,
lost workers, throttling and service errors, cancel/rerun races, and half-done API calls.

After each run the invariants of docs/architecture.md are checked job by job, and a table of the
faults injected and jobs checked is printed and appended to test-artifacts/fault_injection.txt.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from geobatch.wire import errors
from geobatch.wire.models import FunctionUpdate, JobBulkCreate, JobStatus
from geobatch_core.services import functions, jobs, teardown
from tests.reliability.conftest import with_settings
from tests.reliability.faults import FaultPlan, FaultyJobStore, HalfSendingQueue, HalfWritingJobStore
from tests.reliability.harness import (
    OWNER,
    Fleet,
    all_jobs,
    check_invariants,
    queue_settled,
    ready_function,
    submit,
    write_table,
)

pytestmark = [
    pytest.mark.reliability,
    # A killed worker's heartbeat thread dies of WorkerKilled on purpose; pytest would warn about it.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]

ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "fault_injection.txt"
SEED = 20260101

# kind -> weight in the seeded mix; n is the number of failing attempts of a "flaky" job.
MIX = {
    "ok": 44,
    "big": 8,  # result over INLINE_RESULT_BYTES: stored in S3
    "chatty": 3,  # megabytes of log: stored in S3
    "raise": 8,
    "exit": 5,  # os._exit(3) kills the child process
    "hang": 3,  # past the Function's timeout
    "oom": 3,  # past the worker's memory limit
    "flaky": 10,  # fails n times, then succeeds
    "die_mid": 5,  # the worker is killed as the job starts (first attempt only)
    "die_done": 5,  # the worker is killed after storing the result, before marking success
    "slow": 6,  # 0.4 s: a target for the cancel race
    "fork": 3,  # os.fork() in user code, both copies return
    "stop_mid": 3,  # the worker is stopped past its lease mid-job (its child runs on), then resumed
}


def expected(kind: str, n: int, retry_count: int) -> str:
    if kind in ("raise", "exit", "oom"):
        return JobStatus.FAILURE.value
    if kind == "hang":
        return JobStatus.TIMEOUT.value
    if kind == "flaky":
        return JobStatus.SUCCESS.value if n <= retry_count else JobStatus.FAILURE.value
    if kind in ("die_mid", "die_done", "stop_mid"):
        return JobStatus.SUCCESS.value if retry_count >= 1 else JobStatus.FAILURE.value
    return JobStatus.SUCCESS.value


@pytest.mark.timeout(900)
def test_seeded_fault_mix_keeps_every_invariant(fast_services: Any) -> None:
    svc = fast_services
    rng = random.Random(SEED)
    plan = FaultPlan(seed=SEED, throttle_rate=0.01, service_error_rate=0.006, claim_conflict_rate=0.03)
    fns = [
        ready_function(svc, "no-retry", timeout=2, retry_count=0),
        ready_function(svc, "retry-3", timeout=2, retry_count=3),
        ready_function(svc, "retry-2", timeout=2, retry_count=2),
    ]
    # A queue that dead-letters after 3 receives, with poison jobs that kill every worker that takes them.
    dlq_fn = ready_function(with_settings(svc, max_receive_count=3), "poison", timeout=2, retry_count=5)
    kinds_of: dict[str, tuple[str, int]] = {}
    own_key: dict[str, str] = {}  # job_key -> the key its kwargs carry (what its result must echo)
    all_fns = [*fns, dlq_fn]
    for function in fns:
        mix = rng.choices(list(MIX), weights=list(MIX.values()), k=100)
        spec = [(k, rng.randint(1, 3) if k == "flaky" else 0) for k in mix]
        submitted = submit(svc, function, spec, f"mix-{function.name}")
        for index, (item, ks) in enumerate(zip(submitted, spec, strict=True)):
            kinds_of[item.job_key] = ks
            own_key[item.job_key] = f"mix-{function.name}-{index}"
    for item, ks in zip(
        submit(svc, dlq_fn, [("die_always", 0)] * 3 + [("ok", 0)] * 7, "poison"),
        [("die_always", 0)] * 3 + [("ok", 0)] * 7,
        strict=True,
    ):
        kinds_of[item.job_key] = ks
    plan.kinds.update({key: kind for key, (kind, _) in kinds_of.items()})
    plan.count("job calls os.fork(), both copies return", sum(k == "fork" for k, _ in kinds_of.values()))

    # At-least-once delivery: ~10% of the jobs get a second copy of their message (a new message id),
    # which two workers may well receive at the same time.
    duplicated = 0
    for function in fns:
        items = all_jobs(svc, function.id)
        dupes = [i for i in items if rng.random() < 0.1]
        svc.queue.send_batch(function.queue_url, [jobs.message_body(i) for i in dupes])
        duplicated += len(dupes)
    plan.count("duplicate message sent", duplicated)

    # The API side (cancel, rerun) races the workers through the same serialised store, without faults.
    api_svc = dataclasses.replace(svc, jobs=FaultyJobStore(svc.jobs, plan, faults=False))
    raced: set[str] = set()
    racer_rng = random.Random(SEED + 1)
    started = time.monotonic()
    rounds = {"cancel": 0, "rerun": 0}

    def race() -> None:
        elapsed = time.monotonic() - started
        target = fns[1]
        items = all_jobs(svc, target.id)
        if elapsed > 2 and rounds["cancel"] < 4:
            rounds["cancel"] += 1
            live = [i for i in items if i.status in ("pending", "running")]
            for item in racer_rng.sample(live, min(4, len(live))):
                jobs.cancel_item(api_svc, item)
                raced.add(item.job_key)
                plan.count(f"cancel raced a {item.status} job")
        if elapsed > 6 and rounds["rerun"] < 3:
            failed = [i for i in items if i.status in ("failure", "timeout", "canceled")]
            if failed:
                rounds["rerun"] += 1
                for item in racer_rng.sample(failed, min(3, len(failed))):
                    jobs.rerun_item(api_svc, item, target)
                    raced.add(item.job_key)
                    plan.count("rerun of a finished job while workers run")

    fleet = Fleet(svc, plan, [f.id for f in all_fns], per_function=2, memory_limit_mb=200)
    try:
        fleet.run_until(
            lambda: all(queue_settled(svc, f.id) for f in all_fns),
            tick=race,
        )
    finally:
        fleet.stop()

    checked: Counter[str] = Counter()
    problems: list[str] = []
    for function in all_fns:
        problems += check_invariants(svc, function, checked)
        retry_count = int(function.retry_count)
        for item in all_jobs(svc, function.id):
            kind, n = kinds_of[item.job_key]
            if item.job_key in raced:
                continue
            if kind == "die_always":
                # Killed on every attempt: the job ends failed, by attempts or by the dead-letter queue.
                if item.status != "failure" or "worker lost" not in (item.error_reason or ""):
                    problems.append(f"poison job {item.job_key} is {item.status}: {item.error_reason}")
                continue
            want = expected(kind, n, retry_count)
            if kind == "stop_mid" and item.job_key in plan.resumed_unclaimed and retry_count == 0:
                want = JobStatus.TIMEOUT.value  # resumed with its claim intact: its own timeout stands
            if item.status != want:
                problems.append(
                    f"{kind}(n={n}) job {item.job_key} of {function.name} is {item.status}, "
                    f"expected {want}: {item.error_reason}"
                )
            if kind in ("raise", "exit") and item.execution_count != retry_count + 1:
                problems.append(
                    f"{kind} job {item.job_key} ran {item.execution_count}x, not {retry_count + 1}"
                )
            if item.status == "success" and item.job_key in own_key and kind not in ("big", "chatty"):
                # Each result is its own job's, whatever forks and stopped workers did on the way.
                result = json.loads(item.result)
                if result.get("key") != own_key[item.job_key]:
                    problems.append(f"{kind} job {item.job_key} has another job's result: {result}")
            if any("overlap" in (a.reason or "") for a in item.attempts or []):
                problems.append(f"{kind} job {item.job_key} ran twice at the same time")
            if kind == "oom" and "out of memory" not in (item.error_reason or ""):
                problems.append(f"oom job {item.job_key}: {item.error_reason}")
            if kind == "big" and item.status == "success" and item.result_key is None:
                problems.append(f"big result of {item.job_key} was not stored in S3")
            if kind == "chatty" and item.status == "success" and not item.attempts[-1].log_key:
                problems.append(f"chatty log of {item.job_key} was not stored in S3")
    extra = {
        "workers started": fleet.started,
        "workers killed (simulated)": fleet.kills,
        "worker crashes (bugs)": len(fleet.crashes),
        "jobs raced by cancel/rerun": len(raced),
        "invariant violations": len(problems),
        "runtime (s)": round(time.monotonic() - started, 1),
    }
    write_table(ARTIFACT, f"seeded fault mix (seed {SEED})", plan.injected, checked, extra)
    assert fleet.crashes == [], fleet.crashes
    assert problems == [], "\n".join(problems)
    assert sum(checked.values()) == 310
    assert fleet.kills >= 10  # die_mid, die_done and the poison jobs really killed workers


def test_half_written_bulk_submission_is_completed_by_resending(fast_services: Any) -> None:
    """The API Lambda dies after writing half of a bulk submission (and, on the resend, after sending
    only part of the messages): resending the same body creates every job exactly once, and each runs
    once."""
    svc = fast_services
    plan = FaultPlan(seed=SEED + 2)
    function = ready_function(svc, "resend", timeout=5, retry_count=0)
    body = JobBulkCreate(
        function_id=function.id,
        bulk_kwargs=[{"kind": "ok", "key": f"r{i}"} for i in range(60)],
        reference_id="resend-1",
    )
    with pytest.raises(errors.ServiceError):
        jobs.submit_jobs(dataclasses.replace(svc, jobs=HalfWritingJobStore(svc.jobs, plan, 25)), OWNER, body)
    assert len(all_jobs(svc, function.id)) == 25
    assert svc.queue.depth(function.queue_url) == (0, 0)  # it died before queueing anything
    with pytest.raises(errors.ServiceError):
        jobs.submit_jobs(dataclasses.replace(svc, queue=HalfSendingQueue(svc.queue, plan)), OWNER, body)
    page = jobs.submit_jobs(svc, OWNER, body)  # the SDK's retry of the same request
    items = all_jobs(svc, function.id)
    assert len(items) == 60 and {f"{function.id}-{i.job_key}" for i in items} == {j.id for j in page.data}
    assert svc.queue.depth(function.queue_url)[0] == 70  # 10 duplicate messages from the half send

    fleet = Fleet(svc, plan, [function.id], per_function=2)
    try:
        fleet.run_until(lambda: queue_settled(svc, function.id))
    finally:
        fleet.stop()
    checked: Counter[str] = Counter()
    problems = check_invariants(svc, function, checked)
    items = all_jobs(svc, function.id)
    assert [i.status for i in items] == ["success"] * 60
    assert [i.execution_count for i in items] == [1] * 60  # the duplicates were dropped, not run
    write_table(
        ARTIFACT,
        "half-written bulk submission, resent",
        plan.injected,
        checked,
        {"violations": len(problems)},
    )
    assert problems == [] and fleet.crashes == []


def test_stop_and_delete_a_function_while_its_jobs_run(fast_services: Any) -> None:
    svc = fast_services
    plan = FaultPlan(seed=SEED + 3)
    function = ready_function(svc, "stop-delete", timeout=5, retry_count=0)
    submit(svc, function, [("slow", 0)] * 30, "stop-1")
    fid = function.id

    # Stop: the workers notice within function_check_seconds and exit; nothing is left running.
    fleet = Fleet(svc, plan, [fid], per_function=2)
    fleet.tend()
    deadline = time.monotonic() + 120  # bounds here are generous: the suite runs beside others
    while sum(i.status == "success" for i in all_jobs(svc, fid)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    functions.update_function(svc, OWNER, fid, FunctionUpdate(status="stopped"))
    for thread, _ in fleet._threads[fid]:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a worker kept running jobs of a stopped Function"
    time.sleep(svc.settings.lost_worker_seconds + 0.5)
    statuses = Counter(i.status for i in all_jobs(svc, fid))
    assert set(statuses) <= {"success", "pending"} and statuses["pending"] > 0, statuses
    waiting = next(i for i in all_jobs(svc, fid) if i.status == "pending")
    assert jobs.pending_reason(waiting, svc.functions.get(fid), svc.clock()) == (
        "waiting: function is stopped; start it to run pending jobs"
    )

    # Start again: the pending jobs run to the end.
    functions.update_function(svc, OWNER, fid, FunctionUpdate(status="ready"))
    try:
        fleet.run_until(lambda: queue_settled(svc, fid))
    finally:
        fleet.stop()
    checked: Counter[str] = Counter()
    problems = check_invariants(svc, function, checked)
    assert {i.status for i in all_jobs(svc, fid)} == {"success"}

    # Delete while jobs run: running jobs are canceled, then everything goes; the workers exit cleanly.
    submit(svc, function, [("slow", 0)] * 20, "delete-1")
    fleet = Fleet(svc, plan, [fid], per_function=2)
    fleet.tend()
    while not any(i.status == "running" for i in all_jobs(svc, fid)):
        time.sleep(0.05)
    plan.count("Function deleted while its jobs run")
    deadline = time.monotonic() + 240
    while not teardown.delete_function(svc, OWNER, fid, delete_results=True):
        assert time.monotonic() < deadline, "the Function could not be deleted"
        time.sleep(0.3)
    for thread, _ in fleet._threads[fid]:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a worker outlived its Function"
    with pytest.raises(errors.NotFoundError):
        svc.functions.get(fid)
    assert svc.jobs.query(fid, start=None, limit=10, newest_first=False)[0] == []
    assert svc.jobs.counts(fid).by_status == {}  # no counter item outlives its Function
    with pytest.raises(errors.NotFoundError):
        svc.queue.depth(function.queue_url)
    write_table(
        ARTIFACT,
        "stop, restart and delete while running",
        plan.injected,
        checked,
        {"violations": len(problems)},
    )
    assert problems == [] and fleet.crashes == []


@pytest.fixture(autouse=True, scope="module")
def _fresh_artifact() -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text("")
