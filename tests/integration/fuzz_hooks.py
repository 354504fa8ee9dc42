"""Schemathesis hooks for the fuzz test (loaded through ``SCHEMATHESIS_HOOKS``)."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis import Case, HookContext


@schemathesis.hook
def before_call(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    """No code functions: the fuzzer may deploy anything, but only images, and it has none
    (an image not on this machine is a 422), so it never starts a container. A code
    function would start containers, warm ones even without being invoked."""
    if (case.method, case.path) == ("PUT", "/v1/functions/{name}") and isinstance(case.body,
                                                                                 dict):
        case.body.pop("runtime", None)
