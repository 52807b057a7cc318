"""Local mode's workers publish their job metrics the way they do in AWS: PutMetricData, here into
local mode's moto server (the workers' AWS_ENDPOINT_URL), where CloudWatch's API reads them back."""

from __future__ import annotations

import boto3
import pytest

from geobatch.wire import env
from geobatch_core import layout
from tests.support import wait_until, worker_metric

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]


def doubled(x):
    return 2 * x


def test_local_workers_publish_the_job_metrics_on_their_way_out(saved, local_stack):
    fn = saved(doubled, maximum_concurrency=2, timeout=60)
    fn.map([[i] for i in range(5)])
    fn.wait_for_completion(timeout=200)
    # A worker publishes at least once a minute and when it exits (idle): wait for the exit.
    wait_until(
        lambda: local_stack.executor.running_workers(local_stack.services.functions.get(fn.id)) == 0,
        "the workers to exit",
        poll=0.2,
    )
    aws = local_stack.aws_env()
    cloudwatch = boto3.client(
        "cloudwatch",
        endpoint_url=local_stack.moto_url,
        region_name=aws[env.AWS_REGION],
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
    )
    points = worker_metric(cloudwatch, fn.id, layout.JOB_ENDED_METRICS["success"])
    assert [p["Sum"] for p in points] == [5.0]
