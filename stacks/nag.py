"""cdk-nag v3 acknowledgments (the v2 ``NagSuppressions`` API is gone in cdk-nag 3).

v3 records acknowledgments with CDK's ``Validations.of(construct).acknowledge`` and matches them
per *finding*: a rule with one finding per resource is acknowledged by its id
(``AwsSolutions-L1``), a rule with several findings (``AwsSolutions-IAM5``) by each finding id
(``AwsSolutions-IAM5[Resource::arn:...]``). An acknowledgment covers the construct's subtree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import jsii
from aws_cdk import Acknowledgment, Aspects, IAspect, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str, *, findings: Iterable[str] = ()) -> None:
    """Acknowledge ``rule_id`` on ``scope`` (or each ``rule_id[finding]`` when findings are given)."""
    finding_list = list(findings)
    ids = [f"{rule_id}[{finding}]" for finding in finding_list] if finding_list else [rule_id]
    Validations.of(scope).acknowledge(*(Acknowledgment(id=i, reason=reason) for i in ids))


def suppress(scope: IConstruct, rules: Iterable[dict[str, object]]) -> None:
    """``acknowledge`` each ``{"id", "reason", "findings"?}``.

    ``AwsSolutions-IAM5`` is acknowledged per finding: the findings of the policies under ``scope``
    are listed at synthesis (by an aspect), after every grant has been added."""
    for rule in rules:
        if rule["id"] == "AwsSolutions-IAM5":
            Aspects.of(scope).add(_AcknowledgeWildcards(scope.node.path, str(rule["reason"])))
        else:
            findings = rule.get("findings") or ()
            assert isinstance(findings, list | tuple)
            acknowledge(scope, str(rule["id"]), str(rule["reason"]), findings=[str(f) for f in findings])


@jsii.implements(IAspect)
class _AcknowledgeWildcards:
    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason

    def visit(self, node: IConstruct) -> None:
        if node.node.path == self.path:  # the aspect visits the whole subtree; act once, at its root
            acknowledge_wildcards(node, self.reason)


def _nag_string(value: Any) -> str:
    """A resolved CloudFormation value spelled as in cdk-nag finding ids (``<Id.Arn>``, ``<AWS::Region>``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return f"<{arg}>"
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if fn == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([^}]+)\}", r"<\1>", arg)
        if fn == "Fn::Join":
            return str(arg[0]).join(_nag_string(part) for part in arg[1])
    return json.dumps(value)


def wildcard_findings(scope: IConstruct) -> set[str]:
    """``AwsSolutions-IAM5`` finding ids of the IAM policies under ``scope`` (wildcard actions/resources)."""
    findings: set[str] = set()
    stack = Stack.of(scope)
    for node in scope.node.find_all():
        documents: list[Any] = []
        if isinstance(node, iam.CfnPolicy | iam.CfnManagedPolicy):
            documents.append(node.policy_document)
        elif isinstance(node, iam.CfnRole):
            documents += [p.policy_document if hasattr(p, "policy_document") else p["policyDocument"]
                          for p in (node.policies or [])]  # fmt: skip
        for document in documents:
            resolved = stack.resolve(document)
            for statement in resolved.get("Statement", []):
                if statement.get("Effect") != "Allow":
                    continue
                for action in _as_list(statement.get("Action")):
                    if "*" in _nag_string(action):
                        findings.add(f"Action::{_nag_string(action)}")
                for resource in _as_list(statement.get("Resource")):
                    if "*" in _nag_string(resource):
                        findings.add(f"Resource::{_nag_string(resource)}")
    return findings


def acknowledge_wildcards(scope: IConstruct, reason: str) -> None:
    """Acknowledge the IAM5 findings of the policies under ``scope``; call it once all grants exist."""
    findings = sorted(wildcard_findings(scope))
    if findings:
        acknowledge(scope, "AwsSolutions-IAM5", reason, findings=findings)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
