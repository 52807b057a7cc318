"""The wire error taxonomy: every class declared with its status and code comes back from its body."""

from __future__ import annotations

import pytest

from geobatch.local import LocalModeNotInstalledError
from geobatch.operation import OperationFailedError
from geobatch.wire import errors

pytestmark = pytest.mark.unit

WIRE = [
    (errors.GeoBatchError, 500, "internal_error"),
    (errors.BadRequestError, 400, "bad_request"),
    (errors.ValidationError, 422, "validation_error"),
    (errors.NotFoundError, 404, "not_found"),
    (errors.ConflictError, 409, "conflict"),
    (errors.RequestInProgressError, 409, "request_in_progress"),
    (errors.PayloadTooLargeError, 413, "payload_too_large"),
    (errors.ThrottledError, 429, "throttled"),
    (errors.AuthError, 403, "forbidden"),
    (errors.ServiceError, 503, "service_unavailable"),
    (errors.ApiTimeoutError, 504, "api_timeout"),
    (errors.BuildFailedError, 409, "build_failed"),
    (errors.JobFailedError, 409, "job_not_successful"),
]


def test_the_registry_holds_the_wire_taxonomy_in_declaration_order():
    assert list(errors.ERRORS_BY_CODE.items()) == [(code, cls) for cls, _, code in WIRE]
    assert [(cls.status, cls.code) for cls, _, _ in WIRE] == [(s, c) for _, s, c in WIRE]


@pytest.mark.parametrize(("cls", "status", "code"), WIRE)
def test_an_error_body_comes_back_as_its_class(cls, status, code):
    raised = cls("it went wrong", [{"loc": ["x"], "msg": "bad"}])
    back = errors.error_from_body(status, raised.to_body())
    assert type(back) is cls
    assert (back.message, back.errors) == ("it went wrong", [{"loc": ["x"], "msg": "bad"}])


def test_an_unknown_code_falls_back_to_the_first_class_of_its_status():
    assert type(errors.error_from_body(409, {"code": "from_the_future"})) is errors.ConflictError
    assert type(errors.error_from_body(504, None)) is errors.ApiTimeoutError
    assert type(errors.error_from_body(418, {})) is errors.GeoBatchError


def test_sdk_side_errors_do_not_enter_the_wire_registry():
    # They set status/code as plain attributes: they never cross the wire, so a body cannot name them.
    for cls in (OperationFailedError, LocalModeNotInstalledError):
        assert cls.code not in errors.ERRORS_BY_CODE
