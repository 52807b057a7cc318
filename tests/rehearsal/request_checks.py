"""What IAM checks for one request: the action(s), the resource ARN(s) and the condition keys.

moto authorizes most services against ``"*"``; AWS authorizes against the resource the request
names (a table, a queue, a job queue and job definition, a role, a log stream) with the request's
condition keys (``dynamodb:LeadingKeys``, ``s3:prefix``, ``iam:PermissionsBoundary``,
``iam:PassedToService``, ``cloudwatch:namespace``). This module derives them from the request as
moto's server received it, for the services and calls the GeoBatch Lambdas and worker make; any
other request is checked against ``"*"`` (which only an unscoped statement allows).
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.rehearsal import policy_eval
from tests.rehearsal.policy_eval import Check

# The transport is plain HTTP to 127.0.0.1; in AWS every SDK call is TLS (see BRIDGES).
_ALWAYS = {"aws:securetransport": ["true"]}


def _params(response: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        k: v[0] if isinstance(v, list) and v else v for k, v in response.querystring.items()
    }
    body = response.raw_body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            params.update(json.loads(body))
    return params


def _ctx(**keys: Any) -> dict[str, list[str]]:
    context = dict(_ALWAYS)
    for key, value in keys.items():
        if value is None:
            continue
        context[key.replace("__", ":").lower()] = [
            str(v) for v in (value if isinstance(value, list) else [value])
        ]
    return context


def _arn(response: Any, service: str, resource: str, region: str | None = None) -> str:
    region = response.region if region is None else region
    return f"arn:aws:{service}:{region}:{response.current_account}:{resource}"


# ------------------------------------------------------------------ DynamoDB


def _hash_key(response: Any, table: str) -> str | None:
    from moto.dynamodb.models import dynamodb_backends

    try:
        return dynamodb_backends[response.current_account][response.region].get_table(table).hash_key_attr
    except Exception:  # an unknown table: DynamoDB itself answers ResourceNotFound
        return None


def _leading_key(response: Any, table: str, item: dict[str, Any] | None) -> list[str] | None:
    name = _hash_key(response, table)
    if not name or not item or name not in item:
        return None
    value = item[name]
    return [str(next(iter(value.values())))]


def _query_leading_key(response: Any, params: dict[str, Any]) -> list[str] | None:
    name = _hash_key(response, params["TableName"])
    expression = params.get("KeyConditionExpression", "")
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    for left, placeholder in re.findall(r"([#\w]+)\s*=\s*(:\w+)", expression):
        if names.get(left, left) == name and placeholder in values:
            return [str(next(iter(values[placeholder].values())))]
    return None


def _dynamodb(response: Any, action: str, params: dict[str, Any]) -> list[Check]:
    if action == "TransactWriteItems":
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        checks = []
        for entry in params.get("TransactItems", []):
            ((kind, body),) = entry.items()
            item = body.get("Key") or body.get("Item")
            table = body["TableName"]
            checks.append(
                Check(
                    f"dynamodb:{kinds[kind]}",
                    _arn(response, "dynamodb", f"table/{table}"),
                    _ctx(dynamodb__LeadingKeys=_leading_key(response, table, item)),
                )
            )
        return checks
    if action in ("BatchWriteItem", "BatchGetItem"):
        return [
            Check(f"dynamodb:{action}", _arn(response, "dynamodb", f"table/{table}"), _ctx())
            for table in params.get("RequestItems", {})
        ]
    table = params.get("TableName")
    if not table:
        return [Check(f"dynamodb:{action}", "*", _ctx())]
    resource = f"table/{table}" + (f"/index/{params['IndexName']}" if params.get("IndexName") else "")
    if action == "Query":
        keys = _query_leading_key(response, params)
    else:
        keys = _leading_key(response, table, params.get("Key") or params.get("Item"))
    return [
        Check(f"dynamodb:{action}", _arn(response, "dynamodb", resource), _ctx(dynamodb__LeadingKeys=keys))
    ]


# ------------------------------------------------------------------ Batch, IAM, the rest


def _batch_definition_arn(response: Any, definition: str) -> str:
    if definition.startswith("arn:"):
        return definition
    return _arn(response, "batch", f"job-definition/{definition}")


def _batch(response: Any, action: str, params: dict[str, Any]) -> list[Check]:
    names = {
        "submitjob": "SubmitJob",
        "registerjobdefinition": "RegisterJobDefinition",
        "deregisterjobdefinition": "DeregisterJobDefinition",
        "terminatejob": "TerminateJob",
        "canceljob": "CancelJob",
        "listjobs": "ListJobs",
        "describejobs": "DescribeJobs",
        "describejobdefinitions": "DescribeJobDefinitions",
        "describejobqueues": "DescribeJobQueues",
        "describecomputeenvironments": "DescribeComputeEnvironments",
    }
    name = f"batch:{names.get(action.lower(), action)}"
    if name == "batch:SubmitJob":
        queue = params.get("jobQueue", "")
        queue_arn = queue if queue.startswith("arn:") else _arn(response, "batch", f"job-queue/{queue}")
        definition = _batch_definition_arn(response, params.get("jobDefinition", ""))
        return [Check(name, definition, _ctx()), Check(name, queue_arn, _ctx())]
    if name == "batch:RegisterJobDefinition":
        checks = [Check(name, _batch_definition_arn(response, params.get("jobDefinitionName", "")), _ctx())]
        container = params.get("containerProperties") or {}
        for role in (container.get("jobRoleArn"), container.get("executionRoleArn")):
            if role:  # passing a role to Batch needs iam:PassRole on it
                checks.append(Check("iam:PassRole", role, _ctx(iam__PassedToService="batch.amazonaws.com")))
        return checks
    if name == "batch:DeregisterJobDefinition":
        return [Check(name, _batch_definition_arn(response, params.get("jobDefinition", "")), _ctx())]
    if name in ("batch:TerminateJob", "batch:CancelJob"):
        return [Check(name, _arn(response, "batch", f"job/{params.get('jobId', '')}"), _ctx())]
    return [Check(name, "*", _ctx())]


def _iam_role_arn(response: Any, name: str, path: str | None = None) -> str:
    from moto.iam.models import iam_backends

    if path is None:
        try:
            return str(iam_backends[response.current_account]["aws"].get_role(name).arn)
        except Exception:
            path = "/"
    return f"arn:aws:iam::{response.current_account}:role{path}{name}"


def _iam(response: Any, action: str, params: dict[str, Any]) -> list[Check]:
    role = params.get("RoleName")
    if not role:
        return [Check(f"iam:{action}", "*", _ctx())]
    if action == "CreateRole":
        arn = _iam_role_arn(response, role, params.get("Path", "/"))
        return [
            Check("iam:CreateRole", arn, _ctx(iam__PermissionsBoundary=params.get("PermissionsBoundary")))
        ]
    context = {}
    if action in ("PutRolePolicy", "DeleteRolePolicy", "AttachRolePolicy"):
        from moto.iam.models import iam_backends

        try:
            boundary = iam_backends[response.current_account]["aws"].get_role(role).permissions_boundary_arn
        except Exception:
            boundary = None
        context = {"iam__PermissionsBoundary": boundary}
    return [Check(f"iam:{action}", _iam_role_arn(response, role), _ctx(**context))]


def _lambda(response: Any, action: str) -> list[Check]:
    match = re.search(r"/functions/([^/]+)", unquote(urlsplit(response.uri).path))
    name = match.group(1) if match else "*"
    arn = name if name.startswith("arn:") else _arn(response, "lambda", f"function:{name}")
    iam_action = {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction"}.get(action, action)
    return [Check(f"lambda:{iam_action}", arn, _ctx())]


def _logs(response: Any, action: str, params: dict[str, Any]) -> list[Check]:
    group, stream = params.get("logGroupName"), params.get("logStreamName")
    if not group:
        return [Check(f"logs:{action}", "*", _ctx())]
    resource = f"log-group:{group}" + (f":log-stream:{stream}" if stream else ":*")
    return [Check(f"logs:{action}", _arn(response, "logs", resource), _ctx())]


def _simple(response: Any, service: str, action: str, params: dict[str, Any]) -> list[Check]:
    """CodeBuild, ECR, EventBridge, CloudWatch: one resource named by a parameter."""
    if service == "codebuild":
        project = params.get("projectName") or (params.get("ids") or [":"])[0].split("/")[-1].split(":")[0]
        return [Check(f"codebuild:{action}", _arn(response, "codebuild", f"project/{project}"), _ctx())]
    if service == "ecr" and params.get("repositoryName"):
        return [
            Check(f"ecr:{action}", _arn(response, "ecr", f"repository/{params['repositoryName']}"), _ctx())
        ]
    if service == "events" and action == "PutEvents":
        buses = {e.get("EventBusName") or "default" for e in params.get("Entries", [])} or {"default"}
        return [Check("events:PutEvents", _arn(response, "events", f"event-bus/{b}"), _ctx()) for b in buses]
    if service == "cloudwatch":
        return [Check(f"cloudwatch:{action}", "*", _ctx(cloudwatch__namespace=params.get("Namespace")))]
    return [Check(f"{service}:{action}", "*", _ctx())]


def checks_for(response: Any, service: str, action: str, moto_resource: str) -> list[Check]:
    params = _params(response)
    if service == "s3":
        query = parse_qs(urlsplit(response.uri).query)
        prefix = query.get("prefix", [None])[0] if action == "ListBucket" else None
        s3_action = {"HeadObject": "GetObject", "HeadBucket": "ListBucket"}.get(action, action)
        return [Check(f"s3:{s3_action}", moto_resource, _ctx(s3__prefix=prefix))]
    if service == "sqs":
        resource = moto_resource
        if resource == "*" and (params.get("QueueName") or params.get("QueueUrl")):
            # A queue that does not exist yet (CreateQueue, or GetQueueUrl of a missing one).
            name = params.get("QueueName") or str(params["QueueUrl"]).rstrip("/").split("/")[-1]
            resource = _arn(response, "sqs", name)
        # The batch calls are authorized as their single-message actions (SQS's documented behaviour).
        action = {
            "SendMessageBatch": "SendMessage",
            "DeleteMessageBatch": "DeleteMessage",
            "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
        }.get(action, action)
        return [Check(f"sqs:{action}", resource, _ctx())]
    if service == "sts":
        return [Check(f"sts:{action}", moto_resource, _ctx())]
    if service == "iam":
        return _iam(response, action, params)
    if service == "dynamodb":
        return _dynamodb(response, action, params)
    if service == "batch":
        return _batch(response, action, params)
    if service == "lambda":
        return _lambda(response, action)
    if service == "logs":
        return _logs(response, action, params)
    return _simple(response, service, action, params)


def resource_policy(response: Any, check: Check) -> list[Any]:
    """The resource-based policy AWS evaluates with the request: the bucket policy for S3."""
    if not check.action.startswith("s3:") or not check.resource.startswith("arn:aws:s3:::"):
        return []
    from moto.s3.models import s3_backends

    bucket_name = check.resource.removeprefix("arn:aws:s3:::").split("/")[0]
    try:
        bucket = s3_backends[response.current_account]["aws"].get_bucket(bucket_name)
    except Exception:
        return []
    if not bucket.policy:
        return []
    return policy_eval.statements([bucket.policy.decode()])


def trust_policy(response: Any, check: Check) -> list[Any] | None:
    """For ``sts:AssumeRole`` by a role's session (role chaining, as the worker assumes its Function's
    data role): the target role's trust policy, which AWS requires to allow the caller. None for
    other requests, and for the deploy admin, which stands in for the service principals (BRIDGES)."""
    if check.action != "sts:AssumeRole" or ":role/" not in check.principal:
        return None
    from moto.iam.models import iam_backends

    try:
        role = iam_backends[response.current_account]["aws"].get_role_by_arn(check.resource)
    except Exception:
        return []
    return policy_eval.statements([role.assume_role_policy_document])
