"""moto's server with IAM enforced on every request, as the rehearsal runs it (its own process).

``python -m tests.rehearsal.iam_server PORT DECISIONS.jsonl`` starts moto's server on 127.0.0.1:PORT
with ``INITIAL_NO_AUTH_ACTION_COUNT`` from the environment (moto's "IAM-like access control": the
first N requests are free, every later one must be signed by a known access key and pass the
signature check). moto's own authorization is replaced by ``policy_eval`` on the request's real
resource ARNs and condition keys (see ``bridges.BRIDGES``), and every decision is appended to
DECISIONS.jsonl, so a test can show which principal was allowed or denied what.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from typing import Any
from urllib.parse import parse_qs, urlsplit

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.models import iam_backends
from moto.s3.models import FakeBucket
from werkzeug.exceptions import HTTPException

from tests.rehearsal import moto_fixes, policy_eval, request_checks
from tests.rehearsal.policy_eval import Check

_lock = threading.Lock()
_decisions_path = ""
# The IAM prefix of a service whose SigV4 signing name differs from it.
_SIGNING_TO_IAM = {"monitoring": "cloudwatch", "execute-api": "execute-api"}


def _record(entry: dict[str, Any]) -> None:
    with _lock, open(_decisions_path, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def _managed_documents(backend: Any, arns: list[str]) -> list[str]:
    documents = []
    for arn in arns:
        policy = backend.get_policy(arn)
        documents += [v.document for v in policy.versions if v.is_default]
    return documents


def principal_policies(access_key: Any, backend: Any) -> tuple[str, list[Any], list[Any] | None]:
    """The caller's ARN (user, or the role of an assumed-role session), its identity policies and its
    permissions boundary (``None`` when it has none)."""
    owner_role = getattr(access_key, "_owner_role_name", None)
    if owner_role:
        role = backend.get_role(owner_role)
        identity = list(role.policies.values()) + _managed_documents(backend, list(role.managed_policies))
        boundary_arn = role.permissions_boundary_arn
        principal = role.arn
    else:
        user = backend.get_user(access_key._owner_user_name)
        identity = list(user.policies.values()) + _managed_documents(backend, list(user.managed_policies))
        for group in backend.get_groups_for_user(user.name):
            identity += list(group.policies.values())
            identity += _managed_documents(backend, list(group.managed_policies))
        boundary_arn = getattr(user, "permissions_boundary", None) or None
        principal = user.arn
    boundary = policy_eval.statements(_managed_documents(backend, [boundary_arn])) if boundary_arn else None
    return principal, policy_eval.statements(identity), boundary


def _signed_headers(response: Any) -> tuple[dict[str, str], bool]:
    """The request's headers; a presigned URL's credential is moved into an Authorization header so
    moto can find its access key (moto's check reads only the header)."""
    headers = dict(response.headers)
    if "Authorization" in headers:
        return headers, False
    query = parse_qs(urlsplit(response.uri).query)
    credential = query.get("X-Amz-Credential", [""])[0]
    headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=-"
    if "X-Amz-Security-Token" in query:
        headers["X-Amz-Security-Token"] = query["X-Amz-Security-Token"][0]
    return headers, True


def authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    """Replaces ``ActionAuthenticatorMixin._authenticate_and_authorize_action``."""
    try:
        _authorize(self, iam_request_cls, resource)
    except HTTPException:
        raise
    except Exception:  # a defect of the rehearsal's authorizer: make it visible in the server log
        traceback.print_exc()
        raise


def _authorize(self: Any, iam_request_cls: type, resource: str) -> None:
    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return
    if self._get_action() == "ProcessCfnResponse":
        return  # moto's stand-in for a custom resource's presigned S3 ResponseURL: unsigned by design
    headers, presigned = _signed_headers(self)
    parsed = urlsplit(self.uri)
    path = self.raw_path + (f"?{parsed.query}" if parsed.query else "")
    request = iam_request_cls(
        account_id=self.current_account,
        method=self.method,
        path=path,
        # moto signs `body or data`: a GET's query parameters would become a payload the client never
        # signed (SignatureDoesNotMatch on e.g. API Gateway's GET /account).
        data=self.data if self.raw_body or self.method not in ("GET", "HEAD", "DELETE") else {},
        body=self.raw_body,
        headers=headers,
        action=self._get_action(),
    )
    if not presigned:
        request.check_signature()  # a presigned URL's signature is not verified (see BRIDGES)
    service, _, action = request._action.partition(":")
    service = _SIGNING_TO_IAM.get(service, service)
    backend = iam_backends[self.current_account]["aws"]
    principal, identity, boundary = principal_policies(request._access_key, backend)
    checks = request_checks.checks_for(self, service, action, resource)
    for check in checks:
        check = Check(check.action, check.resource, check.context, principal)
        resource_policy = request_checks.resource_policy(self, check)
        decision = policy_eval.evaluate(identity, boundary, resource_policy, check)
        trust = request_checks.trust_policy(self, check)
        if decision.allowed and trust is not None and policy_eval.decide(trust, check) != "allow":
            decision = policy_eval.Decision(False, "the role's trust policy does not allow the caller")
        _record(
            {
                "principal": principal,
                "session": getattr(request._access_key, "_session_name", ""),
                "action": check.action,
                "resource": check.resource,
                "allowed": decision.allowed,
                "reason": decision.reason,
            }
        )
        if not decision.allowed:
            _deny(request, service, principal, check, decision.reason)


_JSON_PROTOCOLS = ("json", "rest-json")
_ERROR_CODES = {"sqs": "AccessDenied"}


def _deny(request: Any, service: str, principal: str, check: Check, reason: str) -> None:
    """AccessDenied in the shape the service's protocol uses (moto's is XML for every service, which a
    JSON client cannot parse)."""
    import botocore.session
    from moto.core.exceptions import JsonRESTError

    try:
        protocol = botocore.session.get_session().get_service_model(service).metadata["protocol"]
    except Exception:
        protocol = "query"
    # A service with several protocols (CloudWatch: CBOR, JSON, query): the one this client chose.
    headers = {k.lower(): v for k, v in request._headers.items()} if hasattr(request, "_headers") else {}
    if headers.get("smithy-protocol") == "rpc-v2-cbor":
        protocol = "smithy-rpc-v2-cbor"
    elif "json" in headers.get("content-type", ""):
        protocol = "json"
    elif headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        protocol = "query"
    message = (
        f"User: {principal} is not authorized to perform: {check.action} on resource: {check.resource} "
        f"({reason})"
    )
    if protocol == "smithy-rpc-v2-cbor":  # CloudWatch's protocol in current botocore
        raise _CborDenied(_cbor_map({"__type": "AccessDenied", "message": message}))
    if protocol not in _JSON_PROTOCOLS:
        request._raise_access_denied()
    error = JsonRESTError(_ERROR_CODES.get(service, "AccessDeniedException"), message)
    error.code = 403
    raise error


class _CborDenied(HTTPException):
    code = 403


def _cbor_map(fields: dict[str, str]) -> bytes:
    """A CBOR map of short text strings (RFC 8949: major types 5 and 3), all a denial needs."""

    def text(value: str) -> bytes:
        data = value.encode()
        size = len(data)
        head = bytes([0x60 + size]) if size < 24 else bytes([0x79]) + size.to_bytes(2, "big")
        return head + data

    return bytes([0xA0 + len(fields)]) + b"".join(text(k) + text(v) for k, v in fields.items())


def _bucket_permission(self: FakeBucket, action: str, resource: str) -> Any:
    """moto checks a bucket policy before object requests, ignoring its conditions (so the stack's
    TLS-only Deny would deny everything); the rehearsal's authorizer evaluates bucket policies
    itself, with their conditions, in ``authorize``."""
    from moto.iam.access_control import PermissionResult

    return PermissionResult.NEUTRAL


def install(decisions_path: str) -> None:
    global _decisions_path
    _decisions_path = decisions_path
    moto_fixes.apply()
    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize  # type: ignore[method-assign]
    FakeBucket.get_permission = _bucket_permission  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    port, decisions = argv
    install(decisions)
    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", port])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
