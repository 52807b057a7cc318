"""IAM decisions for the worker tests, made by moto's own policy evaluator (moto.iam.access_control).

``decide(role_policy, boundary, request)`` evaluates one request the way IAM does for a role with a
permissions boundary: allowed only when the role's policy allows it, the boundary allows it, and
neither denies it. moto's evaluator (``IAMPolicy`` / ``IAMPolicyStatement``) does the matching of
actions and resources; what it lacks is bridged here, and only here:

1. moto never reads a permissions boundary when it enforces IAM (``collect_policies`` returns the
   role's own policies only), so role policy and boundary are evaluated one by one and combined.
2. moto evaluates only ``StringEquals`` conditions and treats every other operator as met; the
   policies here also use ``StringLike`` (``s3:prefix`` of ListBucket) and
   ``ForAllValues:StringEquals`` (``dynamodb:LeadingKeys``), evaluated below with IAM's rules.
3. moto treats a condition key missing from the request as met; IAM treats it as false (except
   for ``ForAllValues:``), e.g. a ListBucket without a prefix is not "under" a prefix.
4. moto answers DENIED for a statement whose condition is false; in IAM such a statement simply
   does not apply (otherwise one bucket's prefix condition would deny listing every other bucket).
5. moto turns a Resource pattern into a regular expression as it is ('.' matches any character);
   here only '*' and '?' are wildcards, as in IAM.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.iam import access_control
from moto.iam.access_control import IAMPolicy, PermissionResult

Values = str | list[str]


@dataclass(frozen=True)
class Request:
    """One AWS request as IAM sees it: action, resource ARN and the request's condition keys."""

    action: str
    resource: str
    context: Mapping[str, Values] = field(default_factory=dict)

    def __str__(self) -> str:
        extra = f" {dict(self.context)}" if self.context else ""
        return f"{self.action} {self.resource}{extra}"


def _wildcard(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _as_list(value: Values) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _condition_holds(operator: str, key: str, expected: Values, context: Mapping[str, Values]) -> bool:
    wanted = _as_list(expected)
    if operator == "ForAllValues:StringEquals":
        return all(v in wanted for v in _as_list(context.get(key, [])))
    if key not in context:
        return False
    actual = _as_list(context[key])
    if operator == "StringEquals":
        return any(v in wanted for v in actual)
    if operator == "StringLike":
        return any(_wildcard(p, v) for p in wanted for v in actual)
    raise AssertionError(f"condition operator {operator} is not bridged in tests/infra/iam_eval.py")


class _Statement(access_control.IAMPolicyStatement):
    """moto's statement evaluation with bridges 2-5 of the module docstring."""

    context: Mapping[str, Values] = {}

    def is_action_permitted(
        self,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> PermissionResult:
        conditions = self._statement.get("Condition") or {}
        for operator, keys in conditions.items():
            for key, expected in keys.items():
                if not _condition_holds(operator, key, expected, self.context):
                    return PermissionResult.NEUTRAL
        return super().is_action_permitted(action, resource, principal, None)

    def _check_conditions(self, incoming_condition_values: dict[str, str] | None) -> bool:
        return True  # decided above, with IAM's semantics

    @staticmethod
    def _match(pattern: str, string: str) -> re.Match[str] | None:
        return re.match(".*", string) if _wildcard(pattern, string) else None


@contextmanager
def _statements_with(context: Mapping[str, Values]) -> Iterator[None]:
    statement = type("Statement", (_Statement,), {"context": context})
    with mock.patch.object(access_control, "IAMPolicyStatement", statement):
        yield


def evaluate(document: Mapping[str, Any], request: Request) -> PermissionResult:
    """moto's answer for one policy document: PERMITTED, DENIED or NEUTRAL (implicit deny)."""
    with _statements_with(request.context):
        return IAMPolicy(json.dumps(document)).is_action_permitted(request.action, request.resource)


def decide(role_policy: Mapping[str, Any], boundary: Mapping[str, Any], request: Request) -> bool:
    """Whether IAM allows ``request`` to a role with this inline policy under this boundary."""
    results = [evaluate(role_policy, request), evaluate(boundary, request)]
    return all(r == PermissionResult.PERMITTED for r in results)
