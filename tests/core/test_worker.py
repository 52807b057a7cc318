"""The worker loop against moto: receive → claim → run → record → ack or retry."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from pathlib import Path

import pytest

from geobatch.wire.models import JobBulkCreate
from geobatch_core.services import functions, jobs
from geobatch_worker.loop import Worker, WorkerConfig
from tests.core.helpers import ALICE, ready_function
from tests.reliability.faults import (
    FaultPlan,
    FaultyBlobStore,
    FaultyFunctionStore,
    FaultyJobStore,
    FaultyQueue,
    KillSwitch,
)
from tests.support import wait_until

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
            function_id=function.id,
            queue_url=function.queue_url,
            worker_id=f"w-{uuid.uuid4().hex[:4]}",
            poll_seconds=0,
            **config,
        ),
        svc,
    )


def submit(svc, function, args):
    bulk = JobBulkCreate(
        function_id=function.id, bulk_args=[[a] for a in args], reference_id=str(uuid.uuid4())
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
    assert a.status == "success" and json.loads(a.result) == {"x": "a", "attempt": 1}
    assert "working on a" in a.attempts[0].log
    assert boom.status == "failure" and boom.execution_count == 2
    assert boom.error_reason == "KeyError: 'boom'"
    assert big.status == "success" and big.result is None and big.result_key.startswith("results/")
    assert len(svc.blobs.get(big.result_key)) == 10_002
    assert functions.job_statistics(svc, function.id)["success"] == 2
    visible, in_flight = svc.queue.depth(function.queue_url)
    assert (visible, in_flight) == (0, 0)  # every terminal job's message is gone


def test_duplicate_messages_run_a_job_once(moto_services):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work")
    (job,) = submit(svc, function, ["once"])
    body = json.dumps({"j": job.id.rpartition("-")[2], "r": 0})
    svc.queue.send_batch(function.queue_url, [body, body])  # e.g. a resent submission
    stats = worker(svc, function).run()
    assert stats.claimed == 1 and stats.dropped == 2
    item = job_item(svc, job)
    assert item.status == "success" and item.execution_count == 1


def test_a_lost_worker_is_detected_and_its_job_retried(moto_services):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work", retry_count=1)
    (job,) = submit(svc, function, ["survivor"])
    # A worker claims the job and dies before finishing: no outcome, no ack, no more heartbeats.
    message = svc.queue.receive(function.queue_url, max_messages=1, wait_seconds=0, visibility_seconds=1)[0]
    from geobatch_core.services.execution import claim

    claimed = claim(svc.jobs, svc.settings, function, job.id.rpartition("-")[2], message, "dead")
    assert job_item(svc, job).status == "running"
    # Its message reappears after the lease; the next worker records the loss and runs attempt 2.
    stats = worker(svc, function, idle_seconds=3).run()
    item = job_item(svc, job)
    assert claimed.attempt == 1 and stats.claimed == 1
    assert item.status == "success" and item.execution_count == 2
    assert item.attempts[0].reason.startswith("worker lost: no heartbeat")
    assert json.loads(item.result)["attempt"] == 2


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
    statuses = sorted(job_item(svc, j).status for j in submitted)
    assert statuses == ["pending"] * 5 + ["success"]
    visible, _ = svc.queue.depth(function.queue_url)
    assert visible == 5  # handed back at once, not after the lease


FORKS = """
def work(x):
    import os, time
    if x == "fork":
        os.fork()  # both copies return: only the runner may answer
        return "forked"
    if x == "forge":
        import ctypes, json, stat, struct
        # No at-fork hooks: this copy keeps the runner's channel open. PyDLL keeps the GIL across the
        # call: CDLL drops it, and if the runner's log pump or watchdog thread held it at the fork,
        # the copy would wait forever for a GIL owned by a thread it does not have (then the runner
        # waits on it and the job times out instead of showing the breach).
        pid = ctypes.PyDLL(None).fork()
        if pid == 0:
            head = json.dumps({"t": "ok", "token": "forged", "meta": {}, "none": False}).encode()
            for fd in range(3, 64):
                try:
                    if stat.S_ISSOCK(os.fstat(fd).st_mode):
                        os.write(fd, struct.pack("!II", len(head), 6) + head + b'"evil"')
                except OSError:
                    pass
            os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(1)
        return "forge-done"
    return {"x": x}
"""


def wait_terminal(svc, submitted):
    def ended():
        items = [job_item(svc, j) for j in submitted]
        done = all(i.status in ("success", "failure", "timeout", "canceled") for i in items)
        return items if done else None

    return wait_until(ended, "the jobs to end", poll=0.1)


@pytest.mark.parametrize("first", ["fork", "forge"])
def test_each_result_belongs_to_its_job_after_a_fork(moto_services, first):
    """A job whose fork returns (or whose fork writes on the channel) cannot answer for later jobs."""
    svc = moto_services
    function = ready_function(svc, FORKS, "work", timeout=60)
    w = worker(svc, function, idle_seconds=600)
    thread = threading.Thread(target=w.run)
    thread.start()
    try:
        (forked,) = wait_terminal(svc, submit(svc, function, [first]))
        later = submit(svc, function, [f"job{i}" for i in range(8)])
        items = wait_terminal(svc, later)
    finally:
        w.stopping.set()
        thread.join(timeout=60)
    if first == "fork":
        assert forked.status == "success" and json.loads(forked.result) == "forked"
    else:
        assert forked.status == "failure" and "wrote on the runner's channel" in forked.error_reason
    assert [i.status for i in items] == ["success"] * 8
    assert [json.loads(i.result) for i in items] == [{"x": f"job{i}"} for i in range(8)]
    assert [i.execution_count for i in items] == [1] * 8


HOLD = """
def work(lock, first_seconds):
    import fcntl, os, time
    handle = open(lock, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return "overlap"  # another run of this job holds the lock right now
    if os.environ["GEOBATCH_ATTEMPT"] == "1":
        time.sleep(first_seconds)
    return "alone"
"""


class PauseAfterReceive(FaultyQueue):
    """The worker is stopped (kill -STOP) right after it received a batch, before it claims any."""

    fired = False

    def receive(self, *args, **kwargs):
        got = self._call("receive", *args, **kwargs)
        if got and not self.fired:
            self.fired = True
            self._switch.pause()
        return got


def pausable_worker(svc, function, switch, queue_type=FaultyQueue, **config):
    plan = FaultPlan(seed=1)
    return Worker(
        WorkerConfig(function.id, function.queue_url, "paused", idle_seconds=600, poll_seconds=1, **config),
        functions=FaultyFunctionStore(svc.functions, plan, switch),
        jobs=FaultyJobStore(svc.jobs, plan, switch),
        queue=queue_type(svc.queue, plan, switch),
        blobs=FaultyBlobStore(svc.blobs, plan, switch),
        settings=svc.settings,
    )


def until(predicate, what):
    wait_until(predicate, what)


def run_workers(*workers):
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for t in threads:
        t.start()
    return threads


def stop_workers(workers, threads):
    for w in workers:
        w.stopping.set()
    for t in threads:
        t.join(timeout=60)


def claimed_by(svc, job, worker_id):
    item = job_item(svc, job)
    return item.status == "running" and item.attempts[-1].worker_id == worker_id


@pytest.mark.parametrize("retry_count", [0, 1])
def test_a_resumed_worker_cannot_judge_a_job_another_worker_runs(moto_services, tmp_path, retry_count):
    """A worker stopped past its lease holding a message, resumed while another worker runs its job:
    no false "worker lost" (retry_count 0), no second run at the same time (retry_count 1)."""
    svc = moto_services
    function = ready_function(svc, HOLD, "work", retry_count=retry_count, timeout=60)
    (job,) = jobs.submit_jobs(
        svc,
        ALICE,
        JobBulkCreate(
            function_id=function.id, bulk_args=[[str(tmp_path / "j.lock"), 3]], reference_id="resume"
        ),
    ).data
    switch = KillSwitch()
    stopped = pausable_worker(svc, function, switch, PauseAfterReceive)
    live = worker(svc, function, idle_seconds=600)
    threads = run_workers(stopped)
    until(lambda: switch.paused, "the first worker received the message")
    threads += run_workers(live)
    try:
        until(lambda: claimed_by(svc, job, live.config.worker_id), "the takeover after the lease")
        switch.resume()  # kill -CONT while the live worker runs the job
        (item,) = wait_terminal(svc, [job])
    finally:
        stop_workers([stopped, live], threads)
    assert item.status == "success", item.attempts
    assert json.loads(item.result) == "alone" and item.execution_count == 1
    assert stopped.stats.claimed == 0 and stopped.stats.outcomes == {}


def test_a_stopped_worker_s_job_never_runs_twice_at_once(moto_services, tmp_path):
    """The worker is stopped mid-job past its lease (its child runs on): the child ends itself before
    the lease does, the next worker's attempt runs alone, and the resumed worker records nothing."""
    svc = moto_services
    function = ready_function(svc, HOLD, "work", retry_count=1, timeout=60)
    (job,) = jobs.submit_jobs(
        svc,
        ALICE,
        JobBulkCreate(
            function_id=function.id, bulk_args=[[str(tmp_path / "j.lock"), 30]], reference_id="stop"
        ),
    ).data
    switch = KillSwitch()
    stopped = pausable_worker(svc, function, switch)
    threads = run_workers(stopped)
    until(lambda: claimed_by(svc, job, "paused"), "the first worker runs the job")
    switch.pause()  # kill -STOP of the worker process: its child keeps running
    live = worker(svc, function, idle_seconds=600)
    threads += run_workers(live)
    try:
        until(lambda: job_item(svc, job).execution_count == 2, "the takeover")
        switch.resume()
        (item,) = wait_terminal(svc, [job])
    finally:
        stop_workers([stopped, live], threads)
    assert item.status == "success" and json.loads(item.result) == "alone"
    assert item.execution_count == 2
    assert item.attempts[0].reason.startswith("worker lost")
    assert item.attempts[1].worker_id == live.config.worker_id
    assert stopped.stats.outcomes == {"lost": 1}


SLOW_IMPORT = """
import time

time.sleep(3)  # a heavy import: the job's clock must not count it


def work(x):
    return x
"""


def test_start_up_does_not_count_as_run_time_and_has_its_own_limit(moto_services):
    svc = moto_services
    function = ready_function(svc, SLOW_IMPORT, "work", timeout=2)
    submitted = submit(svc, function, ["a", "b"])
    worker(svc, function).run()
    assert [job_item(svc, j).status for j in submitted] == ["success", "success"]
    # Start-up over its own limit: a failure that says so, not a timeout of the job.
    function = ready_function(svc, SLOW_IMPORT, "work", timeout=2)
    (job,) = submit(svc, function, ["c"])
    worker(svc, function, startup_seconds=1).run()
    item = job_item(svc, job)
    assert item.status == "failure"
    assert item.error_reason == "start-up: the function's module was not imported within 1 s"


HANG = """
def work(x):
    import time
    time.sleep(60)
"""


def test_a_hang_past_the_timeout_with_retries_never_ends_as_a_lost_worker(moto_services):
    """Timeouts longer than the lease, two per batch, retried, with a second worker waiting: every
    attempt ends as a timeout (the lease holds through the kill and the restart of the child)."""
    svc = moto_services
    assert svc.settings.lost_worker_seconds < 6
    function = ready_function(svc, HANG, "work", timeout=6, retry_count=1)
    submitted = submit(svc, function, ["a", "b"])
    first = worker(svc, function, idle_seconds=600, prefetch=2, min_prefetch=2)
    second = worker(svc, function, idle_seconds=600)
    threads = run_workers(first)
    until(lambda: first.stats.received == 2, "the first worker holds both messages")
    threads += run_workers(second)
    try:
        items = wait_terminal(svc, submitted)
    finally:
        stop_workers([first, second], threads)
    assert [i.status for i in items] == ["timeout", "timeout"], [i.attempts for i in items]
    assert [i.execution_count for i in items] == [2, 2]
    reasons = [a.reason for i in items for a in i.attempts]
    assert reasons == ["timeout: still running after 6 s"] * 4


HOG = """
def work(mb):
    import subprocess, sys
    hog = f"import time; b = bytearray({mb} * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); time.sleep(60)"
    subprocess.run([sys.executable, "-c", hog], check=False)
    return "the hog finished"
"""


def test_the_memory_limit_counts_the_whole_process_tree_and_names_the_culprit(moto_services):
    svc = moto_services
    function = ready_function(svc, HOG, "work", timeout=120)
    (job,) = submit(svc, function, [300])
    worker(svc, function, memory_limit_mb=150).run()
    item = job_item(svc, job)
    assert item.status == "failure", item.attempts
    reason = item.error_reason
    assert reason.startswith("out of memory: peak") and "of 150 MiB limit" in reason
    assert "biggest: subprocess" in reason and "bytearray(300" in reason
    assert item.attempts[0].peak_memory_mb > 150


ORPHANS = """
def work(how):
    import os, subprocess, sys, time
    if how == "session":  # a detached grandchild in its own session
        return [subprocess.Popen(["sleep", "300"], start_new_session=True).pid]
    if how == "double-fork":  # setsid and a double fork: its parent exits at once
        out = subprocess.run(["sh", "-c", "setsid sleep 300 > /dev/null 2>&1 & echo $!"],
                             capture_output=True, text=True, check=True)
        return [int(out.stdout.strip())]
    if how == "then-die":  # starts a grandchild, then its own process dies
        print(subprocess.Popen(["sleep", "300"], start_new_session=True).pid, flush=True)
        time.sleep(1)
        os._exit(3)
"""


def running(pid):
    """True while ``pid`` is a live process (not gone, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_nothing_a_job_started_outlives_it(moto_services):
    svc = moto_services
    function = ready_function(svc, ORPHANS, "work", timeout=30)
    submitted = submit(svc, function, ["session", "double-fork", "then-die"])
    worker(svc, function).run()
    session, double, die = (job_item(svc, j) for j in submitted)
    assert session.status == double.status == "success"
    assert die.status == "failure" and die.exit_code == 3
    pids = json.loads(session.result) + json.loads(double.result)
    pids.append(int(die.attempts[0].log.split("\t")[1].split()[0]))
    assert [running(p) for p in pids] == [False, False, False], pids


CHATTY = """
def work(stop):
    import os, time
    i = 0
    while not os.path.exists(stop):  # prints until the test has read its log
        print("tick", i, flush=True)
        i += 1
        time.sleep(0.2)
    return i
"""


def test_the_log_of_a_running_job_can_be_read_while_it_runs(moto_services, tmp_path):
    from geobatch_core import layout

    svc = moto_services
    function = ready_function(svc, CHATTY, "work", timeout=120)
    stop = tmp_path / "stop"
    (job,) = submit(svc, function, [str(stop)])
    w = worker(svc, function, idle_seconds=600)
    threads = run_workers(w)
    try:
        until(lambda: jobs.job_log(svc, ALICE, job.id)[0], "a live log")
        lines, _ = jobs.job_log(svc, ALICE, job.id)  # (lines, offset of the next part)
        assert job_item(svc, job).status == "running"
        assert lines[0].log == "tick 0"
        stop.write_text("")
        (item,) = wait_terminal(svc, [job])
    finally:
        stop_workers([w], threads)
    assert item.status == "success"
    final = [line.log for line in jobs.job_log(svc, ALICE, job.id)[0]]
    assert final[: len(lines)] == [line.log for line in lines]
    assert len(final) == json.loads(item.result)
    assert not svc.blobs.exists(layout.live_log_key(function.id, item.job_key, 0, 1, 0))


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
    statuses = sorted(job_item(svc, j).status for j in submitted)
    assert statuses == ["pending"] * 5 + ["success"]
    visible, _ = svc.queue.depth(function.queue_url)
    assert visible == 5  # handed back at once, for the replacement worker


def test_a_worker_without_lifetime_left_claims_nothing(moto_services, monkeypatch):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work")
    submitted = submit(svc, function, ["a", "b"])
    monkeypatch.setenv("GEOBATCH_WORKER_LIFETIME_SECONDS", "0")  # as the job definition sets it
    stats = worker(svc, function).run()
    assert stats.received == 0 and stats.claimed == 0
    assert [job_item(svc, j).status for j in submitted] == ["pending", "pending"]


def test_held_messages_whose_lease_cannot_cover_a_job_are_not_claimed(moto_services):
    """SQS keeps a message invisible at most 12 h from its receipt: a message held (prefetched) too
    long for its job to finish within that goes back to the queue instead of being claimed."""
    import time

    from geobatch.wire import limits

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
    w._function = dataclasses.replace(function, timeout=86_400)
    assert w._lease_covers_a_job(time.monotonic())


def test_an_older_receive_can_neither_claim_judge_nor_record(moto_services):
    """The state machine's fence on its own (without the worker's lease bookkeeping): a receive
    older than the job's claim is Stale, whatever it tries."""
    from geobatch.wire.models import JobStatus
    from geobatch_core.services.execution import Outcome, Stale, claim, claim_token, record_outcome

    svc = moto_services
    function = ready_function(svc, SOURCE, "work", retry_count=1)
    (job,) = submit(svc, function, ["fenced"])
    key = job.id.rpartition("-")[2]
    url = function.queue_url
    first = svc.queue.receive(url, max_messages=1, wait_seconds=0, visibility_seconds=1)[0]
    assert claim(svc.jobs, svc.settings, function, key, first, "stopped").attempt == 1
    second = []
    until(
        lambda: (
            second.extend(svc.queue.receive(url, max_messages=1, wait_seconds=1, visibility_seconds=30))
            or second
        ),
        "the redelivery after the lease",
    )
    (second,) = second
    assert second.message_id == first.message_id and second.receive_count > first.receive_count
    taken = claim(svc.jobs, svc.settings, function, key, second, "live")
    assert taken.attempt == 2  # the first receive's lease ran out: its attempt is lost
    # The stopped worker resumes with its old receive:
    assert isinstance(claim(svc.jobs, svc.settings, function, key, first, "stopped"), Stale)
    late = Outcome(status=JobStatus.FAILURE, error_reason="late")
    assert isinstance(
        record_outcome(svc.jobs, svc.blobs, svc.settings, function, taken.job, 2, claim_token(first), late),
        Stale,
    )
    done = Outcome(status=JobStatus.SUCCESS, result=b'"ok"')
    record_outcome(svc.jobs, svc.blobs, svc.settings, function, taken.job, 2, claim_token(second), done)
    item = job_item(svc, job)
    assert item.status == "success" and item.execution_count == 2
    assert item.attempts[0].reason.startswith("worker lost")
