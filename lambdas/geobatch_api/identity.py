"""Who owns what a request creates: the caller's IAM principal, from the API Gateway event.

By default every session of an assumed role is one owner (the role), so a team sharing a role
shares its Functions. A stack deployed with ``ownership="session"`` (the ``GEOBATCH_OWNERSHIP``
environment of the API Lambda) makes each role session its own owner instead: two IAM Identity
Center users of one permission set (whose session names are their user names) then see only
their own Functions and jobs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from geobatch.wire import env, errors

OWNERSHIP_MODES = ("role", "session")


def ownership_mode(environ: Mapping[str, str] | None = None) -> str:
    mode = (environ if environ is not None else os.environ).get(env.OWNERSHIP, "role") or "role"
    if mode not in OWNERSHIP_MODES:
        raise errors.ServiceError(f"{env.OWNERSHIP}={mode!r} is not one of {', '.join(OWNERSHIP_MODES)}")
    return mode


def owner_of(arn: str, mode: str = "role") -> str:
    """The owner of the signed principal ``arn`` (an assumed-role session is its role, or itself)."""
    if ":assumed-role/" not in arn:
        return arn
    account = arn.split(":")[4]
    role, _, session = arn.split(":assumed-role/")[1].partition("/")
    if mode == "session" and session:
        return f"arn:aws:sts::{account}:assumed-role/{role}/{session}"
    return f"arn:aws:iam::{account}:role/{role}"


def principal_of_event(event: Mapping[str, Any]) -> str:
    identity = (event.get("requestContext") or {}).get("identity") or {}
    arn = identity.get("userArn") or ""
    if not arn:
        raise errors.AuthError("the request is not signed: sign it with AWS SigV4 (the geobatch SDK does)")
    return owner_of(arn, ownership_mode())
