"""Alarms read metrics that user code cannot write.

User code runs with its worker's role (the shared worker role of the stack, or the Function's own
role under the permissions boundary). Neither may PutMetricData into a namespace an alarm reads,
or a job could silence the dead-letter alarm (or raise it) at will."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from geobatch_core import layout
from geobatch_core.adapters.worker_roles import WorkerRoles
from geobatch_core.records import FunctionRecord

pytestmark = pytest.mark.infra


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document.get("Statement", [])
    return found if isinstance(found, list) else [found]


def _metric_namespaces(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for st in statements:
        actions = st.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if st.get("Effect") == "Allow" and any(
            a in ("cloudwatch:PutMetricData", "cloudwatch:*", "*") for a in actions
        ):
            namespace = st.get("Condition", {}).get("StringEquals", {}).get("cloudwatch:namespace")
            out.add(namespace if isinstance(namespace, str) else "*any*")
    return out


def test_no_worker_role_can_write_the_metrics_alarms_read(default: Any) -> None:
    template = default.template_json
    alarm_namespaces = set()
    for alarm in default.resources("AWS::CloudWatch::Alarm").values():
        for metric in alarm["Properties"].get("Metrics", []):
            alarm_namespaces |= set(re.findall(r'FROM\s+"?([A-Za-z/]+)', str(metric.get("Expression", ""))))
            stat = metric.get("MetricStat", {}).get("Metric", {})
            if "Namespace" in stat:
                alarm_namespaces.add(stat["Namespace"])
        if "Namespace" in alarm["Properties"]:
            alarm_namespaces.add(alarm["Properties"]["Namespace"])
    assert "GeoBatch" in alarm_namespaces  # the DeadLetters alarm's query

    worker_statements: list[dict[str, Any]] = []
    for logical, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy") and "Worker" in logical:
            worker_statements += _statements(resource["Properties"]["PolicyDocument"])
    assert _metric_namespaces(worker_statements)  # the stack's shared worker role was found
    roles = WorkerRoles(
        None,
        name_prefix="gb",
        permissions_boundary_arn="arn:aws:iam::123456789012:policy/b",
        functions_table_arn="arn:aws:dynamodb:us-east-1:123456789012:table/f",
        jobs_table_arn="arn:aws:dynamodb:us-east-1:123456789012:table/j",
        bucket="bucket",
    )
    worker_statements += _statements(
        roles.policy(
            FunctionRecord(
                id="fn1", status="ready", queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/q"
            )
        )
    )
    writable = _metric_namespaces(worker_statements)
    assert writable == {layout.WORKER_METRICS_NAMESPACE}
    assert not writable & alarm_namespaces


def _dashboard_body(default: Any) -> str:
    dashboard = next(iter(default.resources("AWS::CloudWatch::Dashboard").values()))
    return json.dumps(dashboard["Properties"]["DashboardBody"]).replace('\\\\\\"', '"').replace('\\"', '"')


def test_the_dashboard_plots_the_worker_metrics_exactly_as_the_workers_publish_them(default: Any) -> None:
    """The workers publish ``layout.worker_metric_names()`` into their namespace with the one
    dimension ``function_id``, as statistic sets (asserted against moto in
    tests/core/test_worker_metrics.py). Every widget line over that namespace must search that very
    schema and ask a statistic a statistic set has (no percentiles), or it plots nothing."""
    body = _dashboard_body(default)
    namespace = layout.WORKER_METRICS_NAMESPACE
    schema = re.escape(f"{{{namespace},{layout.WORKER_METRICS_DIMENSION}}}")
    found = re.findall(schema + r' MetricName="([A-Za-z]+)"\', \'([A-Za-z0-9.]+)\'', body)
    assert {metric for metric, _ in found} == set(layout.worker_metric_names())
    assert {stat for _, stat in found} <= set(layout.WORKER_METRICS_STATISTICS), found
    # No other form of search reaches the workers' namespace (one that a schema above does not cover).
    assert body.count(namespace) == len(found), body
    # The API's submissions stay in the control plane's namespace, beside the alarms' metrics.
    assert 'Namespace="GeoBatch" MetricName="JobsSubmitted"' in body
