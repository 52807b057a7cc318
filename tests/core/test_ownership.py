"""Ownership: sessions of one assumed role share its Functions, unless the stack is deployed with
``ownership="session"``; the API Lambda is called with real API Gateway events, on moto."""

from __future__ import annotations

import pytest

from geobatch.wire import env
from geobatch_api import identity
from stacks.config import ConfigError, GeoBatchConfig

pytestmark = pytest.mark.moto

ROLE = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DataScience_0123/{}"


def _create(api, principal):
    status, body = api("POST", "/functions", body={"name": "mine"}, principal=principal)
    assert status == 201, body
    return body["function"]["id"]


def test_sessions_of_one_role_share_by_default(api, monkeypatch) -> None:
    monkeypatch.delenv(env.OWNERSHIP, raising=False)
    fid = _create(api, ROLE.format("alice@example.com"))
    status, body = api("GET", f"/functions/{fid}", principal=ROLE.format("bob@example.com"))
    assert status == 200 and body["owner"] == "arn:aws:iam::123456789012:role/AWSReservedSSO_DataScience_0123"


def test_session_ownership_keeps_each_session_apart(api, monkeypatch) -> None:
    monkeypatch.setenv(env.OWNERSHIP, "session")
    alice, bob = ROLE.format("alice@example.com"), ROLE.format("bob@example.com")
    fid = _create(api, alice)
    assert api("GET", f"/functions/{fid}", principal=bob)[0] == 404
    assert api("GET", "/functions", principal=bob)[1]["data"] == []
    status, body = api("GET", f"/functions/{fid}", principal=alice)
    assert status == 200 and body["owner"] == alice


def test_ownership_is_a_checked_stack_option(monkeypatch) -> None:
    assert GeoBatchConfig().ownership == "role"
    assert GeoBatchConfig(ownership="session").ownership == "session"
    with pytest.raises(ConfigError, match="ownership"):
        GeoBatchConfig(ownership="tag")
    monkeypatch.setenv(env.OWNERSHIP, "bogus")
    with pytest.raises(Exception, match="GEOBATCH_OWNERSHIP"):
        identity.ownership_mode()
