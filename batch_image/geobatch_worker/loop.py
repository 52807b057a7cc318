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
from pathlib import Path
from typing import Any

from geobatch.wire import errors, limits
from geobatch.wire.models import FunctionStatus
from geobatch_core.ports import BlobStore, FunctionStore, JobStore, Message, Queue
from geobatch_core.records import FunctionRecord
from geobatch_core.services.context import Services, Settings
from geobatch_core.services.execution import (
    Ack,
    Claimed,
    Defer,
    Stale,
    claim,
    claim_token,
    parse_message,
    record_outcome,
)
from geobatch_worker.config import SETTLE_SECONDS, WorkerConfig, WorkerStats
from geobatch_worker.contain import Containment
from geobatch_worker.heartbeat import Heartbeat
from geobatch_worker.held import HeldMessages
from geobatch_worker.jobrun import job_environment, outcome_of, settle
from geobatch_worker.lease import NO_LEASE
from geobatch_worker.livelog import LiveLog
from geobatch_worker.metrics import JobMetrics
from geobatch_worker.runner import LOST, Runner
from geobatch_worker.support import TRANSIENT, required, retry, unpack_bundle

log = logging.getLogger("geobatch.worker")


class Worker(Heartbeat):
    _function: FunctionRecord  # read first thing by run(), again by each Function check

    def __init__(
        self,
        config: WorkerConfig,
        *,
        functions: FunctionStore,
        jobs: JobStore,
        queue: Queue,
        blobs: BlobStore,
        settings: Settings,
        metrics: JobMetrics | None = None,
    ):
        self.config = config
        self.functions = functions
        self.jobs = jobs
        self.queue = queue
        self.blobs = blobs
        self.settings = settings
        self.stats = WorkerStats()
        # The job metrics (published to CloudWatch by a thread of their own); none when not given.
        self.metrics = metrics if metrics is not None else JobMetrics(None)
        self.stopping = threading.Event()
        self._held = HeldMessages(queue, config.queue_url, settings.lost_worker_seconds)
        self._current: tuple[str, Message] | None = None
        self._cancel = threading.Event()
        self._workdir = tempfile.TemporaryDirectory(prefix="geobatch-worker-")
        self._runner: Runner | None = None
        self._born = time.monotonic()
        # Workers started together (one array job) retire over a spread, not all in the same minute.
        self._lifetime_share = random.uniform(0.9, 1.0)  # nosec B311

    @classmethod
    def for_services(cls, config: WorkerConfig, svc: Services, metrics: JobMetrics | None = None) -> Worker:
        """A worker on the state ports of ``svc`` (local mode, tests and benchmarks)."""
        return cls(
            config,
            functions=svc.functions,
            jobs=svc.jobs,
            queue=svc.queue,
            blobs=svc.blobs,
            settings=svc.settings,
            metrics=metrics,
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
        contained = Containment(
            self._function, os.environ, workdir=self._workdir.name, worker_id=self.config.worker_id
        )
        self._runner = Runner(
            self._unpack_bundle(),
            required(self._function.entrypoint, "entrypoint"),
            memory_limit_mb=self.config.memory_limit_mb,
            log_dir=self._workdir.name,
            startup_seconds=self.config.startup_seconds,
            child_env=contained.environ,
            sealed=contained.sealed,
            sample_seconds=self.config.sample_seconds,
        )
        heartbeat = threading.Thread(target=self._heartbeat, daemon=True)
        heartbeat.start()
        self.metrics.start()
        try:
            self._loop()
        finally:
            self.stopping.set()
            try:
                self._runner.close()
                contained.close()
                self._workdir.cleanup()
            finally:
                self.metrics.close()  # every job is settled by now: the last flush delays none
        return self.stats

    def _unpack_bundle(self) -> str:
        data = self._retry(self.blobs.get, required(self._function.bundle_key, "bundle_key"))
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
        return self._function.status == FunctionStatus.READY.value

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

    def _timeout(self) -> float:
        return float(required(self._function.timeout, "timeout"))

    def _lease_covers_a_job(self, received: float) -> bool:
        """Whether a message received at ``received`` can still stay invisible for a whole job."""
        # min(): a Function saved before the cap would otherwise hand back even fresh messages forever.
        timeout = min(self._timeout(), limits.MAX_TIMEOUT_SECONDS)
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
        settle(self.queue, self.config.queue_url, self._held, acks, defers, self._retry)

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
        if job.payload is not None:
            payload = job.payload
        else:
            payload = self._retry(self.blobs.get, required(job.args_key, "args_key")).decode()
        env = job_environment(self._function, job, claimed.attempt)
        self._cancel.clear()
        self._current = (job.job_key, message)
        self._publish_lease()
        live = LiveLog(self.jobs, self.blobs, job, claimed.attempt, claim_token(message))
        try:
            result = self._runner.run(
                payload,
                env,
                timeout=self._timeout(),
                cancel=self._cancel,
                log_name=f"{job.job_key}.{claimed.attempt}",
                tick=live,
            )
        finally:
            self._current = None
            self._runner.lease.set(NO_LEASE)
        if result.status == LOST:
            # Our lease ran out (we were stopped or cut off): another worker may own the job now, so
            # this worker neither records nor settles anything about it.
            log.warning("lost the lease on job %s; leaving it to its next receive", job.job_key)
            self.stats.outcomes[LOST] = self.stats.outcomes.get(LOST, 0) + 1
            return Stale("lease lost")
        outcome = outcome_of(result)
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
            self.metrics.record(self.config.function_id, action.reason, outcome.runtime)
        return action
