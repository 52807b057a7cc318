"""Local mode is durable: a daemon killed (-9) or stopped mid-run loses nothing once restarted.

Each test runs a real daemon (``geobatch local up``) in a home of its own. Jobs write a product
object to local S3 besides their result and log; after the restart every job ends exactly once,
and what had finished before (results, logs, attempts, products) is all still there.
"""

from __future__ import annotations

import os
import signal
import socket
import uuid
from typing import Any

import boto3
import pytest

import geobatch as gb
from geobatch.local import stop_background
from geobatch.wire import env
from tests.e2e.conftest import daemon_up, wait_gone
from tests.support import wait_until

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]

JOBS = 24
PRODUCTS = "durable-products"


def squares_with_product(x):
    import time

    import boto3

    time.sleep(0.4)
    print(f"tile {x} done", flush=True)
    boto3.client("s3").put_object(Bucket="durable-products", Key=f"tiles/{x}.txt", Body=str(x * x).encode())
    return x * x


def s3_of(state: dict[str, Any]) -> Any:
    aws = state["aws_env"]
    return boto3.client(
        "s3",
        endpoint_url=aws["AWS_ENDPOINT_URL"],
        region_name=aws["AWS_DEFAULT_REGION"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def start_run(state: dict[str, Any], client: gb.Client | None) -> gb.Function:
    s3_of(state).create_bucket(Bucket=PRODUCTS)
    fn = gb.Function(
        squares_with_product,
        name=f"durable-{uuid.uuid4().hex[:6]}",
        maximum_concurrency=2,
        retry_count=2,
        timeout=60,
        data_access=gb.S3Access(write=[f"s3://{PRODUCTS}/tiles/*"]),
        client=client,
    )
    fn.save()
    assert fn.map([[i] for i in range(JOBS)]).is_success
    wait_until(lambda: fn.refresh().job_statistics.get("success", 0) >= 4, "4 jobs to succeed", poll=0.3)
    return fn


def finished(fn: gb.Function) -> dict[str, tuple[Any, str, list[Any]]]:
    done = fn.jobs.filter(gb.Job.status == gb.JobStatus.SUCCESS).collect()
    return {j.id: (j.result(), j.log(timestamps=False), [a.status for a in j.attempts]) for j in done}


def check_after_restart(fn: gb.Function, before: dict[str, Any], state: dict[str, Any]) -> None:
    fn.wait_for_completion()
    assert fn.job_statistics == {**{k: 0 for k in fn.job_statistics}, "success": JOBS}
    jobs = fn.jobs.collect()
    assert len(jobs) == JOBS  # nothing lost, nothing doubled
    for job in jobs:
        statuses = [a.status for a in job.attempts]
        assert statuses.count("success") == 1, (job.id, statuses)  # terminal exactly once
        assert all(s in ("success", "failure") for s in statuses), (job.id, statuses)
    for job_id, (result, log, attempts) in before.items():
        job = gb.Job.get(job_id, client=fn.client)
        assert (job.result(), job.log(timestamps=False), [a.status for a in job.attempts]) == (
            result,
            log,
            attempts,
        )
    s3 = s3_of(state)
    for i in range(JOBS):
        body = s3.get_object(Bucket=PRODUCTS, Key=f"tiles/{i}.txt")["Body"].read()
        assert body == str(i * i).encode()


def test_kill_9_of_the_daemon_mid_run_loses_nothing(daemon_home):
    state = daemon_up(daemon_home)
    fn = start_run(state, gb.Client(state["api_url"]))
    before = finished(fn)
    os.kill(state["pid"], signal.SIGKILL)
    wait_gone(state["pid"])
    again = daemon_up(daemon_home)
    assert again["pid"] != state["pid"]
    fn = gb.Function.get(fn.id, client=gb.Client(again["api_url"]))
    check_after_restart(fn, before, again)


def test_local_down_and_up_mid_run_loses_nothing_and_the_sdk_follows(daemon_home):
    state = daemon_up(daemon_home)
    client = gb.Client()  # no URL: local mode's, from the home's state file
    fn = start_run(state, client)
    before = finished(fn)
    assert stop_background(daemon_home)
    again = daemon_up(daemon_home)
    assert again["api_url"] != state["api_url"]
    # The same client (and so the monitor, which proxies through one) finds the new port itself.
    check_after_restart(fn, before, again)
    assert client.api_url == again["api_url"]


def identity(x):
    return x


def test_a_build_cut_off_by_a_daemon_crash_is_resumed_after_restart(daemon_home, monkeypatch):
    with socket.socket() as index:  # a package index that never answers: the build hangs in pip
        index.bind(("127.0.0.1", 0))
        index.listen(8)
        url = f"http://127.0.0.1:{index.getsockname()[1]}/simple"
        monkeypatch.setenv(env.LOCAL_PIP_ARGS, f"--index-url {url} --timeout 5 --retries 0")
        state = daemon_up(daemon_home)
        fn = gb.Function(identity, name="resumed", requirements=["numpy"], client=gb.Client(state["api_url"]))
        fn.save()
        assert fn.refresh().status == gb.FunctionStatus.BUILDING
        os.kill(state["pid"], signal.SIGKILL)
        wait_gone(state["pid"])
    monkeypatch.setenv(env.LOCAL_PIP_ARGS, "--no-index")
    again = daemon_up(daemon_home)
    fn = gb.Function.get(fn.id, client=gb.Client(again["api_url"]))
    wait_until(lambda: fn.refresh().status != gb.FunctionStatus.BUILDING, "the build to resume", poll=0.3)
    assert fn.status == gb.FunctionStatus.READY, fn.status_reason
    assert fn(5).wait_for_completion().result() == 5
