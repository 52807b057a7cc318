"""IAM policy evaluation as AWS does it for one account: the rehearsal's authorizer.

moto's own check (``moto.iam.access_control``) authenticates requests but authorizes only S3, SQS,
IAM and STS against a resource (every other service is checked against ``"*"``, so a policy scoped
to a table ARN is denied), ignores condition keys and never applies a permissions boundary. This
module evaluates a request the way IAM's evaluation logic does within one account: an explicit
Deny in any policy wins; otherwise the identity policies must allow it and, when the principal has
a permissions boundary, the boundary must allow it too. Wildcards are matched with moto's own
``IAMPolicyStatement._match``. An unknown condition operator fails closed (never silently allows).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moto.iam.access_control import IAMPolicyStatement

Context = Mapping[str, Sequence[str]]  # condition key (lowercase) -> values present in the request


@dataclass(frozen=True)
class Check:
    """One authorization question: may the caller do ``action`` on ``resource`` in ``context``?"""

    action: str
    resource: str
    context: Context = field(default_factory=dict)
    principal: str = ""  # the caller's user or role ARN (a resource policy's Principal names it)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _match(pattern: str, value: str) -> bool:
    return IAMPolicyStatement._match(pattern, value) is not None


def _match_action(pattern: str, action: str) -> bool:
    # Action names are case-insensitive in IAM.
    return _match(pattern.lower(), action.lower())


def _like(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


_SINGLE = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringNotEquals": lambda expected, actual: actual != expected,
    "StringEqualsIgnoreCase": lambda expected, actual: actual.lower() == expected.lower(),
    "StringLike": _like,
    "StringNotLike": lambda expected, actual: not _like(expected, actual),
    "ArnEquals": lambda expected, actual: actual == expected,
    "ArnLike": _like,
    "Bool": lambda expected, actual: actual.lower() == str(expected).lower(),
}
_NEGATED = {"StringNotEquals", "StringNotLike"}


class UnsupportedCondition(Exception):
    """A policy uses a condition operator this evaluator does not know (it then denies)."""


def _condition_holds(operator: str, key: str, expected: list[str], context: Context) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    actual = list(context.get(key.lower(), ()))
    if base == "Null":
        return (not actual) == (str(expected[0]).lower() == "true")
    if base not in _SINGLE:
        raise UnsupportedCondition(operator)
    test = _SINGLE[base]
    if not actual:
        # A missing key: ForAllValues holds vacuously (as in AWS), IfExists holds, negated operators
        # hold, everything else does not.
        return qualifier == "ForAllValues" or if_exists or base in _NEGATED
    if qualifier == "ForAllValues":
        return all(any(test(str(e), a) for e in expected) for a in actual)
    if base in _NEGATED:
        return all(test(str(e), a) for e in expected for a in actual)
    return any(test(str(e), a) for e in expected for a in actual)


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Context) -> bool:
    return all(
        _condition_holds(operator, key, [str(v) for v in _as_list(values)], context)
        for operator, pairs in conditions.items()
        for key, values in pairs.items()
    )


def _principal_matches(principal: Any, caller: str) -> bool:
    if principal is None:
        return True  # an identity policy: it is the caller's own
    if principal == "*":
        return True
    # The account root as principal delegates to identity policies: it grants no one by itself.
    names = _as_list(principal.get("AWS", [])) if isinstance(principal, Mapping) else []
    return any(name in ("*", caller) for name in names)


def _statement_applies(statement: Mapping[str, Any], check: Check) -> bool:
    if not _principal_matches(statement.get("Principal"), check.principal):
        return False
    if "NotAction" in statement:
        if any(_match_action(p, check.action) for p in _as_list(statement["NotAction"])):
            return False
    elif not any(_match_action(p, check.action) for p in _as_list(statement.get("Action", []))):
        return False
    if "NotResource" in statement:
        if any(_match(p, check.resource) for p in _as_list(statement["NotResource"])):
            return False
    elif not any(_match(p, check.resource) for p in _as_list(statement.get("Resource", "*"))):
        return False
    return _conditions_hold(statement.get("Condition") or {}, check.context)


def statements(documents: Iterable[str | Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for document in documents:
        parsed = json.loads(document) if isinstance(document, str) else document
        found += _as_list(parsed.get("Statement", []))
    return found


def decide(statements_: Sequence[Mapping[str, Any]], check: Check) -> str:
    """``"deny"`` (explicit), ``"allow"`` or ``"neutral"`` (implicit deny) for one set of policies."""
    allowed = False
    for statement in statements_:
        if _statement_applies(statement, check):
            if statement.get("Effect") == "Deny":
                return "deny"
            allowed = True
    return "allow" if allowed else "neutral"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def evaluate(
    identity: Sequence[Mapping[str, Any]],
    boundary: Sequence[Mapping[str, Any]] | None,
    resource_policy: Sequence[Mapping[str, Any]],
    check: Check,
) -> Decision:
    """Same-account evaluation: explicit deny anywhere, else identity ∩ boundary (a resource policy
    that allows the principal also grants, but never past a boundary)."""
    try:
        by_identity = decide(identity, check)
        by_boundary = decide(boundary, check) if boundary is not None else "allow"
        by_resource = decide(resource_policy, check)
    except UnsupportedCondition as exc:
        return Decision(False, f"unsupported condition operator {exc} (the rehearsal denies it)")
    if "deny" in (by_identity, by_boundary, by_resource):
        return Decision(False, "explicitly denied")
    if by_boundary != "allow":
        return Decision(False, "not allowed by the permissions boundary")
    if by_identity == "allow" or by_resource == "allow":
        return Decision(True, "allowed")
    return Decision(False, "no identity policy allows it")
