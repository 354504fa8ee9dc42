"""The one error tree of faasflow.

    FaasflowError
    ├── PermanentError            retrying cannot help; the caller must change something
    │   ├── NotFound              an unknown function, webhook, subscription or invocation
    │   ├── InvalidRequest        well-formed but unacceptable input (bad name, unknown image)
    │   ├── Conflict              the name is taken by something different
    │   ├── PayloadTooLarge       a body over the configured limit
    │   ├── Unauthorized          missing or wrong credentials
    │   │   └── VerificationFailed  a webhook delivery's signature or timestamp did not
    │   │                         check out (``check`` says which)
    │   └── Forbidden             the function does not allow this kind of call
    ├── RetryableError            a part is down or slow; the same call may succeed later
    │   ├── BrokerUnavailable     Kafka did not acknowledge in time
    │   └── RuntimeUnavailable    the Docker Engine did not answer
    └── Superseded                another run of the same invocation took over (after a
                                  crash or rebalance); that run's Result is the one to keep

Adapters translate their library's exceptions into these where the library is called;
the gateway maps them to HTTP statuses in one table (``pipeline.gateway.errors``).
"""

from __future__ import annotations


class FaasflowError(Exception):
    """Base of every error faasflow raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermanentError(FaasflowError):
    code = "permanent"


class NotFound(PermanentError):
    code = "not_found"


class InvalidRequest(PermanentError):
    code = "invalid"


class Conflict(PermanentError):
    code = "conflict"


class PayloadTooLarge(PermanentError):
    code = "payload_too_large"


class Unauthorized(PermanentError):
    code = "unauthorized"


class VerificationFailed(Unauthorized):
    """A webhook delivery was refused; ``check`` names the check that failed (such as
    ``missing_header`` or ``bad_signature``), never the value that was expected."""

    code = "verification_failed"

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


class Forbidden(PermanentError):
    code = "forbidden"


class RetryableError(FaasflowError):
    code = "unavailable"


class BrokerUnavailable(RetryableError):
    code = "broker_unavailable"


class RuntimeUnavailable(RetryableError):
    code = "runtime_unavailable"


class Superseded(FaasflowError):
    code = "superseded"
