"""The worker loop: receive → run → ack or retry, until the queue stays empty.

One worker runs one job at a time. It holds a small batch of messages and keeps them invisible
with a heartbeat until each is settled (acknowledged or deferred); on the first SIGTERM it finishes
the current job and hands the unstarted messages back to the queue at once.

The worker tracks how long each held message stays invisible (its lease). A message whose lease
ran out (the worker was stopped, or SQS was out of reach) is dropped unsettled: another worker may
have it now. The running job's lease is published to the user-code child, which ends itself before
the lease does, so a job never runs twice at once.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geobatch.wire import data_access, env, errors, limits, statistics
from geobatch.wire.env import UNSIGNED_S3
from geobatch.wire.models import FunctionStatus, JobStatus
from geobatch_core.ports import BlobStore, FunctionStore, Item, JobStore, Message, Queue
from geobatch_core.services.context import Services, Settings
from geobatch_core.services.execution import (
    Ack,
    Claimed,
    Defer,
    Outcome,
    Stale,
    claim,
    claim_token,
    parse_message,
    record_outcome,
)
from geobatch_worker.heartbeat import Heartbeat
from geobatch_worker.held import HeldMessages
from geobatch_worker.lease import NO_LEASE
from geobatch_worker.livelog import LiveLog
from geobatch_worker.metrics import emit_job_metrics
from geobatch_worker.runner import LOST, STARTUP_SECONDS, Runner, RunResult
from geobatch_worker.support import TRANSIENT, retry, unpack_bundle

log = logging.getLogger("geobatch.worker")


@dataclass
class WorkerConfig:
    function_id: str
    queue_url: str
    worker_id: str
    idle_seconds: float = 60.0
    poll_seconds: int = 20
    prefetch: int = 10  # most messages held at once (SQS's batch maximum)
    min_prefetch: int = 1  # the batch a worker starts with; it grows while the queue stays deep
    memory_limit_mb: float | None = None
    function_check_seconds: float = 10.0
    startup_seconds: float = STARTUP_SECONDS  # spawn + imports of the user-code child, apart from the timeout
    sample_seconds: float = statistics.SAMPLE_SECONDS  # how often a job's CPU/memory/network is sampled
    # Past this many seconds the worker claims no new job and exits, before AWS Batch's attempt
    # timeout (lifetime + one job timeout + a margin) could kill it mid-job; the scaler replaces it.
    # The job definition sets it; None (local mode) means no limit.
    lifetime_seconds: float | None = field(default_factory=lambda: _lifetime_from_env(os.environ))


def _lifetime_from_env(environ: Mapping[str, str]) -> float | None:
    value = environ.get(env.WORKER_LIFETIME_SECONDS)
    return float(value) if value else None


# A message stays invisible at most 12 h from its receipt however often its lease is extended; a
# held message whose job could not finish (timeout + settling) within that is handed back unclaimed
# and received afresh, rather than claimed and re-delivered while it still runs.
SETTLE_SECONDS = 600


@dataclass
class WorkerStats:
    received: int = 0
    claimed: int = 0
    acked: int = 0
    retried: int = 0
    dropped: int = 0
    stale: int = 0  # receives another worker had overtaken (this worker's lease had run out)
    outcomes: dict[str, int] = field(default_factory=dict)


class Worker(Heartbeat):
    def __init__(
        self,
        config: WorkerConfig,
        *,
        functions: FunctionStore,
        jobs: JobStore,
        queue: Queue,
        blobs: BlobStore,
        settings: Settings,
    ):
        self.config = config
        self.functions = functions
        self.jobs = jobs
        self.queue = queue
        self.blobs = blobs
        self.settings = settings
        self.stats = WorkerStats()
        self.stopping = threading.Event()
        self._held = HeldMessages(queue, config.queue_url, settings.lost_worker_seconds)
        self._current: tuple[str, Message] | None = None
        self._cancel = threading.Event()
        self._function: Item = {}
        self._workdir = tempfile.TemporaryDirectory(prefix="geobatch-worker-")
        self._runner: Runner | None = None
        self._born = time.monotonic()
        # Workers started together (one array job) retire over a spread, not all in the same minute.
        self._lifetime_share = random.uniform(0.9, 1.0)  # nosec B311

    @classmethod
    def for_services(cls, config: WorkerConfig, svc: Services) -> Worker:
        """A worker on the state ports of ``svc`` (local mode, tests and benchmarks)."""
        return cls(
            config,
            functions=svc.functions,
            jobs=svc.jobs,
            queue=svc.queue,
            blobs=svc.blobs,
            settings=svc.settings,
        )

    # ------------------------------------------------------------------ lifecycle

    def install_signal_handlers(self) -> None:
        def on_term(signum: int, frame: Any) -> None:
            if self.stopping.is_set():
                raise KeyboardInterrupt  # a second signal: stop now
            log.info("SIGTERM: finishing the current job, returning the rest")
            self.stopping.set()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)

    def run(self) -> WorkerStats:
        try:
            self._function = self._retry(self.functions.get, self.config.function_id)
        except errors.NotFoundError:
            log.info("Function %s is gone; nothing to do", self.config.function_id)
            return self.stats
        self._runner = Runner(
            self._unpack_bundle(),
            self._function["entrypoint"],
            memory_limit_mb=self.config.memory_limit_mb,
            log_dir=self._workdir.name,
            startup_seconds=self.config.startup_seconds,
            sample_seconds=self.config.sample_seconds,
        )
        heartbeat = threading.Thread(target=self._heartbeat, daemon=True)
        heartbeat.start()
        try:
            self._loop()
        finally:
            self.stopping.set()
            self._runner.close()
            self._workdir.cleanup()
        return self.stats

    def _unpack_bundle(self) -> str:
        data = self._retry(self.blobs.get, self._function["bundle_key"])
        return unpack_bundle(data, Path(self._workdir.name) / "bundle")

    def _retry(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        return retry(call, *args, **kwargs)

    def _dispatchable(self) -> bool:
        try:
            self._function = self._retry(self.functions.get, self.config.function_id)
        except errors.NotFoundError:
            return False
        except TRANSIENT:
            return True  # cannot tell now: keep going, the next check will know
        return self._function["status"] == FunctionStatus.READY.value

    # ------------------------------------------------------------------ loop

    def _loop(self) -> None:
        idle_since = time.monotonic()
        checked = time.monotonic()
        batch = max(1, min(self.config.min_prefetch, self.config.prefetch))
        while not self.stopping.is_set():
            if self._lifetime_spent():
                log.info("lifetime of %ss spent: claiming no more jobs", self.config.lifetime_seconds)
                return
            if time.monotonic() - checked > self.config.function_check_seconds:
                checked = time.monotonic()
                if not self._dispatchable():
                    log.info("Function %s is not ready any more; stopping", self.config.function_id)
                    return
            sent = time.monotonic()
            try:
                messages = self._retry(
                    self.queue.receive,
                    self.config.queue_url,
                    max_messages=batch,
                    wait_seconds=self.config.poll_seconds,
                    visibility_seconds=self.settings.lost_worker_seconds,
                )
            except errors.NotFoundError:
                return  # the queue was deleted with its Function
            except TRANSIENT:
                continue  # nothing received, nothing lost: poll again
            if not messages:
                if time.monotonic() - idle_since > self.config.idle_seconds:
                    return
                continue
            self.stats.received += len(messages)
            # Take more per receive while the queue fills whole batches (fewer requests per job),
            # fewer as it runs dry, so the last jobs spread over all workers instead of one
            # worker holding them while the others idle.
            batch = min(self.config.prefetch, 2 * batch) if len(messages) == batch else len(messages)
            self._process_batch(messages, sent)
            idle_since = time.monotonic()

    def _lifetime_spent(self) -> bool:
        lifetime = self.config.lifetime_seconds
        return lifetime is not None and time.monotonic() - self._born >= lifetime * self._lifetime_share

    def _lease_covers_a_job(self, received: float) -> bool:
        """Whether a message received at ``received`` can still stay invisible for a whole job."""
        # min(): a Function saved before the cap would otherwise hand back even fresh messages forever.
        timeout = min(float(self._function["timeout"]), limits.MAX_TIMEOUT_SECONDS)
        needed = time.monotonic() - received + timeout + SETTLE_SECONDS
        return needed <= limits.SQS_MAX_LEASE_SECONDS

    def _process_batch(self, messages: list[Message], received: float) -> None:
        """``received``: when the receive was sent (our leases on the batch count from then)."""
        self._held.hold(messages, received + self.settings.lost_worker_seconds)
        acks: list[str] = []
        defers: list[tuple[str, int]] = []
        try:
            for message in messages:
                # Unstarted messages go back to the queue at once (the finally below).
                if self.stopping.is_set() or self._lifetime_spent() or not self._lease_covers_a_job(received):
                    break
                if self._held.lease(message) is not None:
                    self._handle(message, acks, defers)
        finally:
            self._settle(acks, defers)

    def _settle(self, acks: list[str], defers: list[tuple[str, int]]) -> None:
        """Acknowledge, defer and return what we still hold; messages stay held (their leases
        extended) until this point, so a deferred job cannot come back early to another worker."""
        live = set(self._held.take_live())
        settled = set(acks) | {r for r, _ in defers}
        acks = [r for r in acks if r in live]
        defers = [(r, s) for r, s in defers if r in live]
        unstarted = [(r, 0) for r in live if r not in settled]
        # A failed ack or deferral loses nothing: the message returns after its lease and the job
        # state machine drops it (terminal job) or retries it (its job went back to pending).
        try:
            if acks:
                self._retry(self.queue.delete_batch, self.config.queue_url, acks)
            if defers or unstarted:
                self._retry(self.queue.change_visibility_batch, self.config.queue_url, defers + unstarted)
        except errors.NotFoundError:
            pass  # the queue was deleted with its Function: there is nothing left to settle
        except TRANSIENT as exc:
            log.error("could not settle %d messages: %s", len(acks) + len(defers), exc.message)

    def _handle(self, message: Message, acks: list[str], defers: list[tuple[str, int]]) -> None:
        try:
            job_key, _run = parse_message(message.body)
        except (ValueError, KeyError):
            log.warning("dropping a malformed message %s", message.message_id)
            acks.append(message.receipt)
            return
        try:
            decision = self._retry(
                claim, self.jobs, self.settings, self._function, job_key, message, self.config.worker_id
            )
        except TRANSIENT as exc:
            log.error("could not claim job %s: %s; it comes back in 1 s", job_key, exc.message)
            defers.append((message.receipt, 1))
            return
        if isinstance(decision, Ack):
            self.stats.dropped += 1
            acks.append(message.receipt)
            return
        if isinstance(decision, Defer):
            defers.append((message.receipt, decision.seconds))
            return
        if isinstance(decision, Stale):
            self.stats.stale += 1
            self._held.drop(message)  # not ours any more: neither acknowledge nor return it
            return
        self.stats.claimed += 1
        if self._held.lease(message) is None:
            # Stopped between the lease check and the claim: the claim stands, but the message may be
            # another worker's by now, so the job is not run here; its next receive judges it lost.
            return
        try:
            action = self._run_job(decision, message)
        except TRANSIENT as exc:
            # The job is ours (running) but its outcome could not be stored. Leave the message alone:
            # unextended, it reappears after the lease and the lost-worker path records this attempt.
            log.error("could not record job %s: %s; it returns after the lease", job_key, exc.message)
            self._held.drop(message)
            return
        if isinstance(action, Ack):
            self.stats.acked += 1
            acks.append(message.receipt)
        elif isinstance(action, Defer):
            self.stats.retried += 1
            defers.append((message.receipt, action.seconds))
        else:
            self._held.drop(message)  # Stale: the job was taken over (our lease ran out)

    def _run_job(self, claimed: Claimed, message: Message) -> Any:
        job = claimed.job
        assert self._runner is not None
        if "payload" in job:
            payload = job["payload"]
        else:
            payload = self._retry(self.blobs.get, job["args_key"]).decode()
        env = {**(self._function.get("environment") or {}), **(job.get("environment") or {})}
        env["GEOBATCH_JOB_ID"] = f"{job['function_id']}-{job['job_key']}"
        env["GEOBATCH_ATTEMPT"] = str(claimed.attempt)
        # The Function's public locations, which user code reads unsigned (see env.UNSIGNED_S3).
        env[UNSIGNED_S3] = data_access.unsigned_value(self._function.get("data_access"))
        self._cancel.clear()
        self._current = (job["job_key"], message)
        self._publish_lease()
        live = LiveLog(self.jobs, self.blobs, job, claimed.attempt, claim_token(message))
        try:
            result = self._runner.run(
                payload,
                env,
                timeout=float(self._function["timeout"]),
                cancel=self._cancel,
                log_name=f"{job['job_key']}.{claimed.attempt}",
                tick=live,
            )
        finally:
            self._current = None
            self._runner.lease.set(NO_LEASE)
        if result.status == LOST:
            # Our lease ran out (we were stopped or cut off): another worker may own the job now, so
            # this worker neither records nor settles anything about it.
            log.warning("lost the lease on job %s; leaving it to its next receive", job["job_key"])
            self.stats.outcomes[LOST] = self.stats.outcomes.get(LOST, 0) + 1
            return Stale("lease lost")
        outcome = _outcome(result)
        self.stats.outcomes[result.status] = self.stats.outcomes.get(result.status, 0) + 1
        action = self._retry(
            record_outcome,
            self.jobs,
            self.blobs,
            self.settings,
            self._function,
            job,
            claimed.attempt,
            claim_token(message),
            outcome,
            worker_id=self.config.worker_id,
        )
        if not isinstance(action, Stale):
            live.discard()
        if isinstance(action, Ack):  # the job ended: its reason is the status it ended in
            emit_job_metrics(self.config.function_id, action.reason, outcome.runtime)
        return action


def _outcome(result: RunResult) -> Outcome:
    """The Outcome to record of a runner's result."""
    return Outcome(
        status=JobStatus(result.status),
        exit_code=result.exit_code,
        error_reason=result.error,
        runtime=result.runtime,
        result=result.result,
        result_meta=result.result_meta,
        log=result.log,
        peak_memory_mb=result.peak_memory_mb,
        cpu_seconds=round(result.cpu_seconds, 3) if result.cpu_seconds is not None else None,
        statistics=result.statistics,
    )
