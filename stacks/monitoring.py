"""Monitoring: the CloudWatch dashboard a GeoBatch operator opens, alarms, and the alarm topic.

Job metrics are Powertools EMF metrics in the ``GeoBatch`` namespace with a ``function_id``
dimension (and Powertools' ``service`` dimension), so the dashboard aggregates them with SEARCH
expressions that match any dimension set. Alarms cannot use SEARCH; the DLQ alarm therefore uses
a Metrics Insights query over ``DeadLetterMessages``, which the scaler publishes every minute.
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

from stacks.config import GeoBatchConfig
from stacks.lambda_factory import METRICS_NAMESPACE

PERIOD = Duration.minutes(5)
WIDTH = 12


def _search(
    metric: str, stat: str, *, namespace: str = METRICS_NAMESPACE, extra: str = "", seconds: int = 300
) -> str:
    query = f'Namespace="{namespace}" MetricName="{metric}"' + (f" {extra}" if extra else "")
    return f"SEARCH('{query}', '{stat}', {seconds})"


def total(metric: str, label: str, *, stat: str = "Sum") -> cw.MathExpression:
    """The sum over all Functions of a GeoBatch metric."""
    return cw.MathExpression(expression=f"SUM({_search(metric, stat)})", label=label, period=PERIOD)


def per_function(metric: str, stat: str, label: str) -> cw.MathExpression:
    return cw.MathExpression(expression=_search(metric, stat), label=label, period=PERIOD)


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
        prefix = config.name_prefix
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
        self.topic = sns.Topic(
            self, "Alarms", display_name=f"GeoBatch {config.stage} alarms", master_key=key, enforce_ssl=True
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        action = cw_actions.SnsAction(self.topic)

        self.alarms: list[cw.Alarm] = []
        dlq = cw.MathExpression(
            expression=f'SELECT MAX(DeadLetterMessages) FROM "{METRICS_NAMESPACE}"',
            label="Messages in dead-letter queues",
            period=Duration.minutes(1),
        )
        self._alarm(
            "DeadLetters",
            dlq,
            threshold=0,
            periods=5,
            action=action,
            description="Jobs reached a dead-letter queue: their messages could not be processed "
            "(see the scaler's DeadLetterMessages metric per Function).",
        )
        if event_dead_letters is not None:
            self._alarm(
                "EventDeadLetters",
                event_dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD),
                threshold=0,
                periods=1,
                action=action,
                description="Build or Batch state events could not be handled (see the events DLQ); "
                "the scaler still reconciles stuck builds every minute.",
            )
        self._alarm(
            "Api5xx",
            rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
            threshold=5,
            periods=1,
            action=action,
            description="The GeoBatch API answered 5xx more than 5 times in 5 minutes.",
        )
        for function in functions:
            name = function.node.id
            self._alarm(
                f"{name}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=0,
                periods=1,
                action=action,
                description=f"The GeoBatch {name} Lambda raised errors.",
            )

        self.dashboard_name = f"GeoBatch-{config.stage}"
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=self.dashboard_name)
        graph = cw.GraphWidget
        queue_search = f"QueueName={prefix} NOT QueueName=dlq"
        self.dashboard.add_widgets(
            cw.TextWidget(
                markdown=f"# GeoBatch `{config.stage}`\nJobs, queues, workers, builds and the control "
                "plane. Per-Function lines are labelled by `function_id`.",
                width=24,
                height=2,
            ),
        )
        self.dashboard.add_widgets(
            graph(
                title="Jobs (all Functions)",
                width=WIDTH,
                left=[
                    total("JobsSubmitted", "submitted"),
                    total("JobsSucceeded", "succeeded"),
                    total("JobsFailed", "failed"),
                    total("JobsTimedOut", "timed out"),
                ],
            ),
            graph(
                title="Job duration percentiles (s) per Function",
                width=WIDTH,
                left=[
                    per_function("JobDuration", "p50", "p50"),
                    per_function("JobDuration", "p90", "p90"),
                    per_function("JobDuration", "p99", "p99"),
                ],
            ),
        )
        self.dashboard.add_widgets(
            graph(
                title="Queue depth (visible messages) per Function",
                width=WIDTH,
                left=[
                    cw.MathExpression(
                        expression=_search(
                            "ApproximateNumberOfMessagesVisible",
                            "Maximum",
                            namespace="AWS/SQS",
                            extra=queue_search,
                            seconds=60,
                        ),
                        label="visible",
                        period=Duration.minutes(1),
                    ),
                    cw.MathExpression(
                        expression=_search(
                            "ApproximateNumberOfMessagesNotVisible",
                            "Maximum",
                            namespace="AWS/SQS",
                            extra=queue_search,
                            seconds=60,
                        ),
                        label="in flight",
                        period=Duration.minutes(1),
                    ),
                ],
            ),
            graph(
                title="Age of oldest message (s) per queue",
                width=WIDTH,
                left=[
                    cw.MathExpression(
                        expression=_search(
                            "ApproximateAgeOfOldestMessage",
                            "Maximum",
                            namespace="AWS/SQS",
                            extra=queue_search,
                            seconds=60,
                        ),
                        label="age",
                        period=Duration.minutes(1),
                    ),
                ],
            ),
        )
        self.dashboard.add_widgets(
            graph(
                title="Running workers",
                width=WIDTH,
                left=[
                    total("RunningWorkers", "all Functions", stat="Maximum"),
                    per_function("RunningWorkers", "Maximum", "workers"),
                ],
            ),
            graph(
                title="Image builds and dead letters",
                width=WIDTH,
                left=[
                    total("BuildsSucceeded", "builds succeeded"),
                    total("BuildsFailed", "builds failed"),
                ],
                right=[dlq],
            ),
        )
        self.dashboard.add_widgets(
            graph(
                title="API requests and errors",
                width=WIDTH,
                left=[
                    rest_api.metric_count(period=PERIOD, statistic="Sum"),
                    rest_api.metric_client_error(period=PERIOD, statistic="Sum"),
                    rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
                ],
                right=[rest_api.metric_latency(period=PERIOD, statistic="p90")],
            ),
            graph(
                title="Lambda errors",
                width=WIDTH,
                left=[f.metric_errors(period=PERIOD, statistic="Sum", label=f.node.id) for f in functions],
            ),
        )
        self.dashboard.add_widgets(
            graph(
                title="Lambda duration p90 (ms)",
                width=WIDTH,
                left=[f.metric_duration(period=PERIOD, statistic="p90", label=f.node.id) for f in functions],
            ),
            graph(
                title="Lambda throttles",
                width=WIDTH,
                left=[f.metric_throttles(period=PERIOD, statistic="Sum", label=f.node.id) for f in functions],
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24),
        )
        self.dashboard_url = (
            f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards:name={self.dashboard_name}"
        )

    def _alarm(self, construct_id: str, metric: cw.IMetric, *, threshold: float, periods: int,
               action: cw.IAlarmAction, description: str) -> cw.Alarm:  # fmt: skip
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
        alarm.add_alarm_action(action)
        self.alarms.append(alarm)
        return alarm
