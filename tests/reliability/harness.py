"""Drives the REAL worker loop (in threads; user code in the worker's child processes) against moto,
and checks the job invariants of docs/architecture.md afterwards."""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geobatch.wire import limits
from geobatch.wire.models import TERMINAL, JobBulkCreate, JobStatus
from geobatch_core.records import FunctionRecord, JobRecord
from geobatch_core.services import counters, dead_letters, functions, jobs
from geobatch_core.services.context import Services
from geobatch_core.services.execution import parse_message
from geobatch_worker.loop import Worker, WorkerConfig
from tests import support
from tests.reliability.faults import (
    FaultPlan,
    FaultyBlobStore,
    FaultyFunctionStore,
    FaultyJobStore,
    FaultyQueue,
    KillSwitch,
    WorkerKilled,
)

OWNER = "arn:aws:iam::123456789012:user/reliability"
# A fleet in which no job changed state for this long is stuck (every job here ends within a lease
# plus its timeout, a few seconds); a slow fleet on a loaded machine still changes something.
STALL_SECONDS = 120
TERMINAL_VALUES = {s.value for s in TERMINAL}

# One bundle serves every behaviour; the job's kwargs pick one.
ENTRY = f"""
import fcntl, os, tempfile, time

LOCKS = os.path.join(tempfile.gettempdir(), "geobatch-reliability-locks")

def main(kind, key, n=0):
    attempt = int(os.environ["GEOBATCH_ATTEMPT"])
    os.makedirs(LOCKS, exist_ok=True)
    lock = open(os.path.join(LOCKS, key), "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RuntimeError("overlap: another run of this job is running right now")
    if kind == "fork":
        os.fork()  # both copies return; only the runner may answer
    if kind == "stop_mid" and attempt == 1:
        time.sleep(120)  # its worker is stopped meanwhile; the timeout ends it
    if kind == "raise":
        raise RuntimeError("boom " + key)
    if kind == "exit":
        os._exit(3)
    if kind == "hang":
        time.sleep(120)
    if kind == "chatty":
        for i in range(25_000):
            print(f"line {{i}} " + "x" * 90)
        return key
    if kind == "big":
        return "y" * {limits.INLINE_RESULT_BYTES * 3}
    if kind == "oom":
        hog = b"x" * (400 * 1024 * 1024)
        time.sleep(5)
        return len(hog)
    if kind == "flaky" and attempt <= n:
        raise RuntimeError(f"flaky: attempt {{attempt}} fails")
    if kind == "slow":
        time.sleep(0.4)
    return {{"key": key, "attempt": attempt}}
"""


def ready_function(svc: Services, name: str, *, timeout: int, retry_count: int) -> FunctionRecord:
    """A Function with its bundle in S3, marked ready (the image build is tested elsewhere)."""
    return support.ready_function(
        svc, name=name, principal=OWNER, build=False, entry=ENTRY, timeout=timeout, retry_count=retry_count
    )


def submit(
    svc: Services, function: FunctionRecord, kinds: list[tuple[str, int]], reference: str
) -> list[JobRecord]:
    """Submit jobs with the given (kind, n) and return their records."""
    page = jobs.submit_jobs(
        svc,
        OWNER,
        JobBulkCreate(
            function_id=function.id,
            bulk_kwargs=[{"kind": k, "key": f"{reference}-{i}", "n": n} for i, (k, n) in enumerate(kinds)],
            reference_id=reference,
        ),
    )
    return [svc.jobs.get(function.id, j.id.rpartition("-")[2]) for j in page.data]


class KillableWorker(Worker):
    """The real worker; a job of kind ``die_mid`` / ``die_always`` kills it right as the job starts."""

    def __init__(self, *args: Any, plan: FaultPlan, switch: KillSwitch, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._plan, self._switch = plan, switch

    def _run_job(self, claimed: Any, message: Any) -> Any:
        key = claimed.job.job_key
        kind = self._plan.kinds.get(key)
        if kind == "stop_mid" and self._plan.first_time(key):
            # kill -STOP: every thread of this worker stops at its next AWS call while the job's child
            # runs on; kill -CONT once another worker has taken the job over after the lease.
            self._plan.count("worker stopped mid-job past its lease (STOP, then CONT)")
            self._switch.pause()
            threading.Thread(target=self._cont_after_takeover, args=(claimed,), daemon=True).start()
        if kind == "die_always" or (kind == "die_mid" and self._plan.first_time(key)):
            self._plan.count("worker killed mid-job (holding its batch)")
            self._switch.kill()
            assert self._runner is not None
            self._runner.close()  # the container's processes die with it
            raise WorkerKilled()
        return super()._run_job(claimed, message)

    def _cont_after_takeover(self, claimed: Any, most_seconds: float = 60.0) -> None:
        store = self.jobs._wrapped  # the real store: the paused wrapper would wait for itself
        job = claimed.job
        end = time.monotonic() + most_seconds
        while time.monotonic() < end:
            now = store.get(job.function_id, job.job_key, consistent=True)
            if now.status in TERMINAL_VALUES or int(now.execution_count or 0) > claimed.attempt:
                break
            time.sleep(0.2)
        else:
            # Nobody took over (e.g. the Function's other worker was stopped too, as kill -STOP on
            # both containers would leave it): this worker resumes still holding a live claim, and
            # the timeout it then records is the true outcome.
            self._plan.resumed_unclaimed.add(job.job_key)
            self._plan.count("worker resumed before any takeover")
        self._switch.resume()


@dataclass
class Fleet:
    """Keeps ``per_function`` live workers per Function, replacing dead ones as the scaler would."""

    svc: Services
    plan: FaultPlan
    function_ids: list[str]
    per_function: int = 2
    memory_limit_mb: float = 250
    prefetch: int = 3
    crashes: list[str] = field(default_factory=list)  # unexpected exceptions out of Worker.run
    kills: int = 0
    started: int = 0
    _threads: dict[str, list[tuple[threading.Thread, Worker]]] = field(default_factory=dict)

    def _start(self, fid: str) -> None:
        switch = KillSwitch()
        self.started += 1
        worker = KillableWorker(
            WorkerConfig(
                fid,
                self.svc.functions.get(fid).queue_url,
                f"w{self.started}",
                idle_seconds=600,  # the test decides when the fleet is done
                poll_seconds=1,
                prefetch=self.prefetch,
                memory_limit_mb=self.memory_limit_mb,
                function_check_seconds=1.0,
            ),
            functions=FaultyFunctionStore(self.svc.functions, self.plan, switch),
            jobs=FaultyJobStore(self.svc.jobs, self.plan, switch),
            queue=FaultyQueue(self.svc.queue, self.plan, switch),
            blobs=FaultyBlobStore(self.svc.blobs, self.plan, switch),
            settings=self.svc.settings,
            plan=self.plan,
            switch=switch,
        )

        def run() -> None:
            try:
                worker.run()
            except WorkerKilled:
                self.kills += 1
            except BaseException as exc:
                where = traceback.extract_tb(exc.__traceback__)[-1]  # which code raised it
                self.crashes.append(
                    f"{worker.config.worker_id}: {type(exc).__name__}: {exc} "
                    f"(at {where.filename}:{where.lineno})"
                )

        thread = threading.Thread(target=run, name=worker.config.worker_id, daemon=True)
        thread.start()
        self._threads.setdefault(fid, []).append((thread, worker))

    def tend(self) -> None:
        for fid in self.function_ids:
            alive = [(t, w) for t, w in self._threads.get(fid, []) if t.is_alive()]
            self._threads[fid] = alive
            for _ in range(self.per_function - len(alive)):
                self._start(fid)

    def run_until(
        self,
        done: Callable[[], bool],
        *,
        deadline: float | None = None,
        tick: Callable[[], None] = lambda: None,
    ) -> None:
        """Tend the fleet until ``done``. It fails when no job has changed for ``STALL_SECONDS`` (a
        stuck fleet, with its diagnosis), not at a wall-clock deadline a loaded machine misses while
        the fleet is still making progress; ``deadline`` (monotonic) is kept as an outer bound."""
        seen, changed, rounds = self._progress(), time.monotonic(), 0
        while deadline is None or time.monotonic() < deadline:
            self.tend()
            tick()
            for fid in self.function_ids:
                dead_letters.drain_dead_letters(self.svc, self.svc.functions.get(fid))  # the scaler's job
            if done():
                return
            rounds += 1
            now = self._progress() if rounds % 10 == 0 else seen  # a read of every job: every 5 s
            if now != seen:
                seen, changed = now, time.monotonic()
            elif time.monotonic() - changed > STALL_SECONDS:
                raise AssertionError(f"no job changed for {STALL_SECONDS} s: {self.diagnose()}")
            time.sleep(0.5)
        raise AssertionError(f"the fleet did not finish before the deadline: {self.diagnose()}")

    def _progress(self) -> tuple[tuple[str, int, str], ...]:
        """Each job's (key, attempts, status): what changes while the fleet works."""
        return tuple(
            (j.job_key, int(j.execution_count or 0), j.status)
            for fid in self.function_ids
            for j in all_jobs(self.svc, fid)
        )

    def diagnose(self) -> str:
        """What is still open, for the failure message."""
        lines = [f"crashes={self.crashes}"]
        for fid in self.function_ids:
            records = all_jobs(self.svc, fid)
            still_open = [j for j in records if j.status not in TERMINAL_VALUES]
            depth = self.svc.queue.depth(self.svc.functions.get(fid).queue_url)
            lines.append(f"{fid}: {Counter(j.status for j in records)} depth={depth}")
            lines += [
                f"  {j.job_key} {self.plan.kinds.get(j.job_key)} {j.status} "
                f"x{j.execution_count} {j.error_reason}"
                for j in still_open[:10]
            ]
        for ts in self._threads.values():
            for t, w in ts:
                if t.is_alive():
                    lines.append(f"  alive {t.name} stats={w.stats}")
        return "\n".join(lines)

    def stop(self) -> None:
        workers = [(t, w) for ts in self._threads.values() for t, w in ts]
        for _, w in workers:
            w.stopping.set()
        for t, _ in workers:
            t.join(timeout=30)
            if t.is_alive():
                import faulthandler
                import sys

                faulthandler.dump_traceback(sys.stderr)
            assert not t.is_alive(), f"worker {t.name} did not stop"

    def outcome_totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for ts in self._threads.values():
            for _, w in ts:
                total.update(w.stats.outcomes)
        return total


# --------------------------------------------------------------------------- invariants


def all_jobs(svc: Services, fid: str) -> list[JobRecord]:
    out: list[JobRecord] = []
    start = None
    while True:
        page, start = svc.jobs.query(fid, start=start, limit=500, newest_first=False)
        out.extend(page)
        if not start:
            return out


def queue_settled(svc: Services, fid: str) -> bool:
    """Every job terminal and the job queue empty (visible and in flight)."""
    function = svc.functions.get(fid)
    if any(j.status not in TERMINAL_VALUES for j in all_jobs(svc, fid)):
        return False
    return svc.queue.depth(function.queue_url) == (0, 0)


def check_invariants(svc: Services, function: FunctionRecord, checked: Counter[str]) -> list[str]:
    """The invariants of docs/architecture.md over one Function's jobs; the violations (empty: all hold)."""
    problems: list[str] = []
    fid = function.id
    records = all_jobs(svc, fid)
    by_key = {j.job_key: j for j in records}
    allowed = function.attempts_allowed
    for job in records:
        jid = job.id
        status = job.status
        checked[status] += 1
        if status not in TERMINAL_VALUES:
            problems.append(f"{jid} is {status}, not terminal")
        runs = int(job.execution_count or 0)
        if runs > allowed:
            problems.append(f"{jid} ran {runs} times; at most {allowed} allowed")
        attempts = job.attempts or []
        if len(attempts) != runs:
            problems.append(f"{jid} has {len(attempts)} attempt records for {job.execution_count} runs")
        if any(a.status == JobStatus.RUNNING.value for a in attempts) and status in TERMINAL_VALUES:
            problems.append(f"{jid} is {status} but an attempt record still says running")
        if status == JobStatus.SUCCESS.value:
            if job.result is None and job.result_key is None:
                problems.append(f"{jid} succeeded without a result")
            if job.result_key is not None and len(svc.blobs.get(job.result_key)) != job.result_size:
                problems.append(f"{jid}: the stored result is not the recorded size")
            if not attempts or attempts[-1].status != JobStatus.SUCCESS.value:
                problems.append(f"{jid} succeeded without a success attempt record")
            for a in attempts:
                if a.log_key and not svc.blobs.exists(a.log_key):
                    problems.append(f"{jid}: log {a.log_key} is missing")
    # The counts (moved with every job write, read in one request) against a recount of the jobs.
    counted = Counter(j.status for j in records)
    stats = {k: v for k, v in functions.job_statistics(svc, fid).items() if v}
    if stats != dict(counted):
        problems.append(f"job_statistics {stats} != statuses {dict(counted)}")
    report = counters.recount(svc.jobs, fid)
    if not report.exact or report.counted != dict(counted):
        problems.append(f"recount: {report}")
    # Messages left in the queue: none may belong to a terminal job once the workers drained it.
    for message in drain(svc, function.queue_url):
        key, _ = parse_message(message.body)
        left = by_key.get(key)
        if left is None or left.status in TERMINAL_VALUES:
            problems.append(f"a message for {'deleted' if left is None else 'terminal'} job {key} is left")
    # The DLQ may hold only jobs the table shows as failed (the scaler drains it and fails them).
    for message in drain(svc, function.dlq_url):
        key, _ = parse_message(message.body)
        dead = by_key.get(key)
        status_now = dead.status if dead is not None else None
        if status_now != JobStatus.FAILURE.value:
            problems.append(f"the DLQ holds job {key}, which is {status_now}")
    return problems


def drain(svc: Services, queue_url: str) -> list[Any]:
    seen: dict[str, Any] = {}
    for _ in range(50):
        batch = svc.queue.receive(queue_url, max_messages=10, wait_seconds=0, visibility_seconds=30)
        if not batch:
            break
        seen.update({m.message_id: m for m in batch})
    return list(seen.values())


def write_table(
    path: Path, title: str, injected: Counter[str], checked: Counter[str], extra: dict[str, Any]
) -> str:
    rows = [f"== {title} ==", "", f"{'fault injected':<58} {'count':>6}", "-" * 65]
    rows += [f"{k:<58} {v:>6}" for k, v in sorted(injected.items())]
    rows += ["", f"{'jobs checked, by final status':<58} {'count':>6}", "-" * 65]
    rows += [f"{k:<58} {v:>6}" for k, v in sorted(checked.items())]
    rows += [f"{'total':<58} {sum(checked.values()):>6}", ""]
    rows += [f"{k:<58} {v!s:>6}" for k, v in extra.items()]
    text = "\n".join(rows) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(text + "\n")
    print("\n" + text)
    return text


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, indent=1)
