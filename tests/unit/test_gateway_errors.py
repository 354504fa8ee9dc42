from __future__ import annotations

import pytest

from pipeline import errors
from pipeline.gateway.errors import error_body, status_of


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.NotFound, 404),
        (errors.InvalidRequest, 422),
        (errors.PayloadTooLarge, 413),
        (errors.Unauthorized, 401),
        (errors.Forbidden, 403),
        (errors.BrokerUnavailable, 503),
        (errors.RuntimeUnavailable, 503),
    ],
)
def test_status_of_each_error(error: type[errors.FaasflowError], status: int) -> None:
    assert status_of(error("x")) == status


def test_a_subclass_gets_its_parents_status() -> None:
    class NoSuchImage(errors.InvalidRequest):
        pass

    assert status_of(NoSuchImage("x")) == 422


def test_unmapped_retryable_error_is_unavailable() -> None:
    assert status_of(errors.RetryableError("x")) == 503


def test_unmapped_permanent_error_is_a_bad_request() -> None:
    assert status_of(errors.PermanentError("x")) == 400


def test_error_body_shape() -> None:
    assert error_body("not_found", "no such function", name="f") == {
        "error": {"code": "not_found", "message": "no such function", "name": "f"}
    }
