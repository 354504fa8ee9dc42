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


OPENWHISK_ACTION = "/api/v1/namespaces/{namespace}/actions/{name}"


@schemathesis.hook("before_call")
def openwhisk_images_only(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    """The same for OpenWhisk's actions: a code kind becomes ``blackbox`` (whose image the
    fuzzer cannot name), so no action is ever made."""
    if ((case.method, case.path) == ("PUT", OPENWHISK_ACTION) and isinstance(case.body, dict)
            and isinstance(case.body.get("exec"), dict)):
        case.body["exec"]["kind"] = "blackbox"
