"""The REST API: API Gateway (IAM/SigV4 auth on every method) → the API Lambda (Powertools resolver).

Every route is one proxy integration (``/`` and ``/{proxy+}``, method ANY); the Lambda routes and
validates requests with pydantic; API Gateway's request validator (on, for cdk-nag) has no body model
to check, only parameters.
API Gateway caps REST payloads at 10 MB; the Lambda enforces ``limits.MAX_REQUEST_BYTES``
(5.5 MB, under Lambda's 6 MB synchronous limit) and answers 413 with a message.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import GeoBatchConfig
from stacks.lambda_factory import LambdaFactory, retention
from stacks.nag import suppress

THROTTLE_RATE = 100  # requests per second, steady state, for the whole stage
THROTTLE_BURST = 200
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "time": "$context.requestTime",
    "caller": "$context.identity.caller",
    "userArn": "$context.identity.userArn",
    "sourceIp": "$context.identity.sourceIp",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integration.status",
    "error": "$context.error.message",
    "authError": "$context.authorize.error",
}


class Api(Construct):
    """REST API + API Lambda; ``url`` is the SDK's ``GEOBATCH_API_URL``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: GeoBatchConfig, factory: LambdaFactory
    ) -> None:
        super().__init__(scope, construct_id)
        self.function: lambda_.Function = factory.create(
            self,
            "Handler",
            handler="geobatch_api.app.handler",
            service="geobatch-api",
            description="GeoBatch REST API",
            memory_mb=1024,  # bulk submissions parse and validate up to 1000 jobs per request
            timeout=Duration.seconds(29),  # API Gateway's integration timeout
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"geobatch-{config.stage}",
            description="GeoBatch: Functions and Jobs (SigV4-signed requests only)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=False,  # the account-wide API Gateway logging role is not ours to change
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                throttling_rate_limit=THROTTLE_RATE,
                throttling_burst_limit=THROTTLE_BURST,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
                tracing_enabled=True,
                metrics_enabled=True,
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )
        validator = self.rest_api.add_request_validator(
            "Requests", validate_request_parameters=True, validate_request_body=True
        )
        integration = apigw.LambdaIntegration(self.function, proxy=True)
        proxy = self.rest_api.root.add_resource("{proxy+}")
        for resource in (self.rest_api.root, proxy):
            resource.add_method(
                "ANY",
                integration,
                authorization_type=apigw.AuthorizationType.IAM,
                request_validator=validator,
            )
        self.url = self.rest_api.url

        suppress(
            self.rest_api,
            [
                {
                    "id": "AwsSolutions-APIG3",
                    "reason": "Every method requires SigV4 (IAM) and the stage is throttled; "
                    "a WAF web ACL can be attached per deployment and is not part of the default cost.",
                },
                {
                    "id": "AwsSolutions-APIG6",
                    "reason": "Execution logging needs the account-wide API Gateway "
                    "CloudWatch role, which this stack does not own; access logs and X-Ray tracing are on.",
                },
                {
                    "id": "AwsSolutions-COG4",
                    "reason": "Callers are IAM principals (SigV4), not Cognito users: "
                    "AWS_IAM authorization is set on every method.",
                },
            ],
        )
