"""The rows of the GeoBatch CloudWatch dashboard, each a function of what it plots.

The control plane's metrics have a ``function_id`` dimension and Powertools' ``service`` dimension,
so their widgets aggregate them with SEARCH expressions that match any dimension set. The API
publishes ``JobsSubmitted`` into ``GeoBatch``; the workers publish the ended jobs and their duration
into ``layout.WORKER_METRICS_NAMESPACE`` with ``function_id`` as their one dimension
(``geobatch_worker/metrics.py``), as statistic sets: their widgets search exactly that schema and ask
only the statistics CloudWatch derives from statistic sets (no percentiles).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_

from geobatch_core import layout
from stacks.lambda_factory import METRICS_NAMESPACE

__all__ = [
    "PERIOD",
    "WIDTH",
    "api_row",
    "jobs_row",
    "lambda_rows",
    "per_function",
    "queues_row",
    "search",
    "total",
    "worker_metric",
]

PERIOD = Duration.minutes(5)
WIDTH = 12
Row = list[cw.IWidget]


def search(
    metric: str, stat: str, *, namespace: str = METRICS_NAMESPACE, extra: str = "", seconds: int = 300
) -> str:
    """A SEARCH expression over ``metric`` in ``namespace`` with any dimensions."""
    query = f'Namespace="{namespace}" MetricName="{metric}"' + (f" {extra}" if extra else "")
    return f"SEARCH('{query}', '{stat}', {seconds})"


def total(
    metric: str, label: str, *, stat: str = "Sum", namespace: str = METRICS_NAMESPACE
) -> cw.MathExpression:
    """The sum over all Functions of a GeoBatch metric."""
    expression = f"SUM({search(metric, stat, namespace=namespace)})"
    return cw.MathExpression(expression=expression, label=label, period=PERIOD)


def per_function(
    metric: str, stat: str, label: str, *, namespace: str = METRICS_NAMESPACE
) -> cw.MathExpression:
    """One line per Function of a GeoBatch metric."""
    return cw.MathExpression(expression=search(metric, stat, namespace=namespace), label=label, period=PERIOD)


def worker_metric(metric: str, stat: str) -> str:
    """A SEARCH over a worker metric (one line per Function), exactly as the workers publish it:
    its namespace, its one dimension, a statistic that statistic sets have."""
    if metric not in layout.worker_metric_names() or stat not in layout.WORKER_METRICS_STATISTICS:
        raise ValueError(f"workers publish no {stat} of {metric!r} (geobatch_worker/metrics.py)")
    schema = f"{{{layout.WORKER_METRICS_NAMESPACE},{layout.WORKER_METRICS_DIMENSION}}}"
    return f"SEARCH('{schema} MetricName=\"{metric}\"', '{stat}', {int(PERIOD.to_seconds())})"


def jobs_row() -> Row:
    """Jobs submitted (by the API) and ended (by the workers, in their own namespace), and how long
    the ended jobs ran."""
    ended = layout.JOB_ENDED_METRICS
    duration = layout.JOB_DURATION_METRIC

    def ended_total(status: str, label: str) -> cw.MathExpression:
        return cw.MathExpression(
            expression=f"SUM({worker_metric(ended[status], 'Sum')})", label=label, period=PERIOD
        )

    def per_function_duration(stat: str, label: str) -> cw.MathExpression:
        return cw.MathExpression(expression=worker_metric(duration, stat), label=label, period=PERIOD)

    return [
        cw.GraphWidget(
            title="Jobs (all Functions)",
            width=WIDTH,
            left=[
                total("JobsSubmitted", "submitted"),
                ended_total("success", "succeeded"),
                ended_total("failure", "failed"),
                ended_total("timeout", "timed out"),
            ],
        ),
        cw.GraphWidget(
            title="Job duration (s) per Function: average and longest",
            width=WIDTH,
            left=[per_function_duration("Average", "average"), per_function_duration("Maximum", "longest")],
        ),
    ]


def _queue_metric(metric: str, label: str, queue_search: str) -> cw.MathExpression:
    expression = search(metric, "Maximum", namespace="AWS/SQS", extra=queue_search, seconds=60)
    return cw.MathExpression(expression=expression, label=label, period=Duration.minutes(1))


def queues_row(prefix: str) -> Row:
    """Queue depth and the age of the oldest message of the Functions' queues (not the DLQs)."""
    queue_search = f"QueueName={prefix} NOT QueueName=dlq"
    return [
        cw.GraphWidget(
            title="Queue depth (visible messages) per Function",
            width=WIDTH,
            left=[
                _queue_metric("ApproximateNumberOfMessagesVisible", "visible", queue_search),
                _queue_metric("ApproximateNumberOfMessagesNotVisible", "in flight", queue_search),
            ],
        ),
        cw.GraphWidget(
            title="Age of oldest message (s) per queue",
            width=WIDTH,
            left=[_queue_metric("ApproximateAgeOfOldestMessage", "age", queue_search)],
        ),
    ]


def workers_row(dead_letters: cw.IMetric) -> Row:
    """Running workers, image builds and dead letters."""
    return [
        cw.GraphWidget(
            title="Running workers",
            width=WIDTH,
            left=[
                total("RunningWorkers", "all Functions", stat="Maximum"),
                per_function("RunningWorkers", "Maximum", "workers"),
            ],
        ),
        cw.GraphWidget(
            title="Image builds and dead letters",
            width=WIDTH,
            left=[total("BuildsSucceeded", "builds succeeded"), total("BuildsFailed", "builds failed")],
            right=[dead_letters],
        ),
    ]


def api_row(rest_api: apigw.RestApi, functions: Sequence[lambda_.Function]) -> Row:
    """API requests, errors and latency, and the Lambdas' errors."""
    return [
        cw.GraphWidget(
            title="API requests and errors",
            width=WIDTH,
            left=[
                rest_api.metric_count(period=PERIOD, statistic="Sum"),
                rest_api.metric_client_error(period=PERIOD, statistic="Sum"),
                rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
            ],
            right=[rest_api.metric_latency(period=PERIOD, statistic="p90")],
        ),
        cw.GraphWidget(
            title="Lambda errors",
            width=WIDTH,
            left=[f.metric_errors(period=PERIOD, statistic="Sum", label=f.node.id) for f in functions],
        ),
    ]


def lambda_rows(functions: Sequence[lambda_.Function], alarms: Sequence[cw.IAlarm]) -> Row:
    """The Lambdas' duration and throttles, and the state of every alarm."""
    return [
        cw.GraphWidget(
            title="Lambda duration p90 (ms)",
            width=WIDTH,
            left=[f.metric_duration(period=PERIOD, statistic="p90", label=f.node.id) for f in functions],
        ),
        cw.GraphWidget(
            title="Lambda throttles",
            width=WIDTH,
            left=[f.metric_throttles(period=PERIOD, statistic="Sum", label=f.node.id) for f in functions],
        ),
        cw.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24),
    ]
