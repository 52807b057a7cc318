"""Monitoring: the CloudWatch dashboard a GeoBatch operator opens, alarms, and the alarm topic.

The control plane's metrics are Powertools EMF (Lambda extracts them) and the workers' job metrics
are PutMetricData from the worker (``geobatch_worker/metrics.py``), both with a ``function_id``
dimension; the dashboard's rows are in ``stacks/dashboard.py``. Alarms cannot use SEARCH; the DLQ
alarm therefore uses a Metrics Insights query over ``DeadLetterMessages``, which the scaler
publishes every minute. Alarms read only the control plane's namespace: workers may write metrics
only into ``layout.WORKER_METRICS_NAMESPACE``, and user code (its data role) none at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import dashboard
from stacks.config import GeoBatchConfig
from stacks.dashboard import PERIOD
from stacks.lambda_factory import METRICS_NAMESPACE


class Monitoring(Construct):
    """Dashboard, alarms and the (encrypted, TLS-only) alarm topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GeoBatchConfig,
        rest_api: apigw.RestApi,
        functions: Sequence[lambda_.Function],
        event_dead_letters: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._alarm_topic(config)
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []
        dead_letters = cw.MathExpression(
            expression=f'SELECT MAX(DeadLetterMessages) FROM "{METRICS_NAMESPACE}"',
            label="Messages in dead-letter queues",
            period=Duration.minutes(1),
        )
        self._add_alarms(dead_letters, rest_api, functions, event_dead_letters)
        self.dashboard_name = f"GeoBatch-{config.stage}"
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=self.dashboard_name)
        title = cw.TextWidget(
            markdown=f"# GeoBatch `{config.stage}`\nJobs, queues, workers, builds and the control "
            "plane. Per-Function lines are labelled by `function_id`.",
            width=24,
            height=2,
        )
        rows: list[list[cw.IWidget]] = [
            [title],
            dashboard.jobs_row(),
            dashboard.queues_row(config.name_prefix),
            dashboard.workers_row(dead_letters),
            dashboard.api_row(rest_api, functions),
            dashboard.lambda_rows(functions, self.alarms),
        ]
        for row in rows:
            self.dashboard.add_widgets(*row)
        self.dashboard_url = (
            f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards:name={self.dashboard_name}"
        )

    def _alarm_topic(self, config: GeoBatchConfig) -> sns.Topic:
        # A customer managed key: CloudWatch alarms cannot publish to a topic under the aws/sns key.
        key = kms.Key(self, "AlarmKey", enable_key_rotation=True, description="GeoBatch alarm topic")
        key.apply_removal_policy(RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        topic = sns.Topic(
            self, "Alarms", display_name=f"GeoBatch {config.stage} alarms", master_key=key, enforce_ssl=True
        )
        if config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        return topic

    def _add_alarms(
        self,
        dead_letters: cw.IMetric,
        rest_api: apigw.RestApi,
        functions: Sequence[lambda_.Function],
        event_dead_letters: sqs.IQueue | None,
    ) -> None:
        self._alarm(
            "DeadLetters",
            dead_letters,
            threshold=0,
            periods=5,
            description="Jobs reached a dead-letter queue: their messages could not be processed "
            "(see the scaler's DeadLetterMessages metric per Function).",
        )
        if event_dead_letters is not None:
            self._alarm(
                "EventDeadLetters",
                event_dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD),
                threshold=0,
                periods=1,
                description="Build or Batch state events could not be handled (see the events DLQ); "
                "the scaler still reconciles stuck builds every minute.",
            )
        self._alarm(
            "Api5xx",
            rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
            threshold=5,
            periods=1,
            description="The GeoBatch API answered 5xx more than 5 times in 5 minutes.",
        )
        for function in functions:
            name = function.node.id
            self._alarm(
                f"{name}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=0,
                periods=1,
                description=f"The GeoBatch {name} Lambda raised errors.",
            )

    def _alarm(
        self, construct_id: str, metric: cw.IMetric, *, threshold: float, periods: int, description: str
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)
        return alarm
