"""Pacing of AWS Batch SubmitJob: the Batch adapter against moto's Batch behind a stand-in that
throttles as AWS does above 50 calls a second, with the account-wide bucket in moto's DynamoDB.

Time is a fake clock that the pacer's sleeps advance, so the test measures calls per second of
that clock, never the wall clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from geobatch.wire import env
from geobatch.wire.errors import ThrottledError
from geobatch_core import layout
from geobatch_core.adapters import provision
from geobatch_core.adapters.batch import BatchExecutor
from geobatch_core.adapters.dynamodb import DynamoJobStore
from geobatch_core.records import FunctionRecord
from geobatch_core.services import pacing
from geobatch_core.services.pacing import SubmitPacer
from tests.infra import moto_resources

pytestmark = pytest.mark.infra
REGION = "us-west-2"
AWS_LIMIT = 50  # SubmitJob calls per second per account


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ThrottlingBatch:
    """moto's Batch client, except that SubmitJob fails as AWS fails it (TooManyRequestsException,
    HTTP 429) past ``AWS_LIMIT`` calls in a second, or for the next ``refuse`` calls (another tool
    of the account using the budget)."""

    def __init__(self, batch: Any, clock: FakeClock) -> None:
        self._batch = batch
        self._clock = clock
        self.accepted: list[datetime] = []
        self.throttled = 0
        self.refuse = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def submit_job(self, **request: Any) -> Any:
        now = self._clock()
        recent = [t for t in self.accepted if now - t < timedelta(seconds=1)]
        if self.refuse or len(recent) >= AWS_LIMIT:
            self.refuse = max(0, self.refuse - 1)
            self.throttled += 1
            raise ClientError(
                {
                    "Error": {"Code": "TooManyRequestsException", "Message": "Too Many Requests"},
                    "ResponseMetadata": {"HTTPStatusCode": 429},
                },
                "SubmitJob",
            )
        self.accepted.append(now)
        return self._batch.submit_job(**request)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with moto_resources.moto_aws(monkeypatch, REGION):
        session = boto3.session.Session(region_name=REGION)
        provision.create_tables(session.client("dynamodb"), "functions", "jobs")
        clock = FakeClock()
        yield {
            "clock": clock,
            "batch": ThrottlingBatch(session.client("batch"), clock),
            "jobs": DynamoJobStore(session.client("dynamodb"), "jobs"),
            "queue": moto_resources.batch_job_queue(session),
        }


def executor(aws: dict[str, Any]) -> BatchExecutor:
    """One scaler invocation's executor: its own pacer object, the account's one bucket."""
    clock = aws["clock"]
    return BatchExecutor(
        aws["batch"],
        job_queue=aws["queue"],
        job_definition_prefix="geobatch-dev",
        worker_role_arn="arn:aws:iam::123456789012:role/worker",
        execution_role_arn="arn:aws:iam::123456789012:role/worker-execution",
        environment={env.FUNCTIONS_TABLE: "functions", env.JOBS_TABLE: "jobs", env.BUCKET: "data"},
        pacer=SubmitPacer(aws["jobs"], clock=clock, sleep=clock.sleep, jitter=lambda: 1.0),
    )


def function(executor: BatchExecutor, n: int) -> FunctionRecord:
    """A ready Function registered with the executor (its job definition), as the store keeps it."""
    built = FunctionRecord(
        id=f"fn-{n:04d}", status="ready", image_uri="img", cpus=1.0, memory=2048, timeout=900, queue_url="q"
    )
    return FunctionRecord.from_item({**built.to_item(), **executor.register(built)})


def busiest_second(times: list[datetime]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t - start < timedelta(seconds=1)) for i, start in enumerate(times))


def test_the_stand_in_is_mocked_batch_with_aws_throttling(aws: dict[str, Any]) -> None:
    """The stand-in answers what moto answers, and its throttle is the error botocore raises for
    AWS's 429, which the adapter maps to ThrottledError when nothing paces it."""
    unpaced = executor(aws)
    unpaced.pacer = None
    fn = function(unpaced, 0)
    unpaced.start_workers(fn, 3)
    summaries = aws["batch"].list_jobs(jobQueue=aws["queue"], jobStatus="SUCCEEDED")["jobSummaryList"]
    (parent,) = [j for j in summaries if ":" not in j["jobId"]]  # moto's no-docker Batch ends jobs at once
    assert aws["batch"].describe_jobs(jobs=[parent["jobId"]])["jobs"][0]["arrayProperties"]["size"] == 3
    aws["batch"].refuse = 1
    with pytest.raises(ThrottledError, match="AWS Batch throttled"):
        unpaced.start_workers(fn, 2)


def test_two_scaler_invocations_share_one_budget_under_50_per_second(aws: dict[str, Any]) -> None:
    first, second = executor(aws), executor(aws)
    functions = [function(first, n) for n in range(240)]
    for n, fn in enumerate(functions):  # two overlapping passes, one Function each in turn
        (first if n % 2 else second).start_workers(fn, 2)
    batch = aws["batch"]
    assert len(batch.accepted) == 240 and batch.throttled == 0
    assert busiest_second(batch.accepted) <= pacing.BURST + pacing.SUBMITS_PER_SECOND <= AWS_LIMIT
    # Each pacer alone would have allowed the whole rate: together they kept to one.
    elapsed = (max(batch.accepted) - min(batch.accepted)).total_seconds()
    assert elapsed >= (240 - pacing.BURST) / pacing.SUBMITS_PER_SECOND - 0.01
    summaries = aws["batch"].list_jobs(jobQueue=aws["queue"], jobStatus="SUCCEEDED")["jobSummaryList"]
    assert len([j for j in summaries if ":" not in j["jobId"]]) == 240  # every array job reached moto


def test_throttling_backs_off_for_every_invocation_and_submits_once(aws: dict[str, Any]) -> None:
    first, second = executor(aws), executor(aws)
    fn = function(first, 1)
    aws["batch"].refuse = 3  # the account's other callers use the budget for a moment
    first.start_workers(fn, 4)
    assert aws["batch"].throttled == 3 and len(aws["batch"].accepted) == 1
    assert first.pacer is not None and first.pacer.waited >= sum(
        min(pacing.BACKOFF_MAX_SECONDS, pacing.BACKOFF_BASE_SECONDS * 2**a) for a in range(3)
    )
    # A throttle empties the shared bucket: at once, every other invocation waits for a token too.
    clock = aws["clock"]
    SubmitPacer(aws["jobs"], clock=clock, sleep=lambda _: None, jitter=lambda: 0.0).throttled(0)
    bucket = aws["jobs"].get_row(layout.PACING_PARTITION, "batch-submit", consistent=True)  # a row: no job
    assert int(bucket["milli_tokens"]) == 0
    second.start_workers(function(second, 2), 1)
    assert second.pacer is not None and second.pacer.waited > 0


def test_persistent_throttling_is_a_throttled_error_for_the_next_pass(aws: dict[str, Any]) -> None:
    paced = executor(aws)
    aws["batch"].refuse = pacing.THROTTLE_RETRIES
    with pytest.raises(ThrottledError):
        paced.start_workers(function(paced, 3), 2)
    assert aws["batch"].accepted == []
