"""A warm function redeployed, and called at once: by the redrive of a dead letter its
previous version left, and by a new event. Each call must end (a final Result, soon) and
run the new version: a redeploy must never leave a call waiting on a pool that was replaced.

(Written for a redrive seen ``running`` for 30 s on the dashboard right after a redeploy. No
call of the worker hung here, in 144 rounds: the run had ended; the dashboard's page had
missed it — ``pipeline.index.tail``.)"""

from __future__ import annotations

import base64
import time
from functools import partial
from typing import Any

from tests.integration.platform import Platform, wait_for

ROUNDS = 8
BOUND_S = 20.0
FINAL = {"succeeded", "failed", "timeout"}


def broken(version: int) -> str:
    return f"def main(args):\n    raise ValueError('v{version} refuses ' + args)\n"


def fixed(version: int) -> str:
    return f"def main(args):\n    return 'v{version}: ' + args\n"


def output(result: dict[str, Any]) -> str:
    if "output_base64" in result:
        return base64.b64decode(result["output_base64"]).decode()
    return str(result.get("output", ""))


def final(platform: Platform, invocation_id: str, redrive: int) -> dict[str, Any] | None:
    found = platform.api.get(f"/v1/invocations/{invocation_id}")
    if found.status_code != 200:
        return None
    result: dict[str, Any] = found.json()
    done = result["status"] in FINAL and result.get("redrive", 0) == redrive
    return result if done else None


def test_calls_right_after_a_redeploy_end_on_the_new_version(
        platform: Platform, unique: str) -> None:
    platform.deploy(unique, None, runtime="python", code=fixed(0), mode="warm")
    hook = platform.webhook(f"{unique}-hook", unique)
    platform.subscribe(unique, unique)
    (first,) = platform.results(platform.deliver(hook, b"warm-up"))
    assert (first["status"], output(first)) == ("succeeded", "v0: warm-up")

    for n in range(1, ROUNDS + 1):
        platform.deploy(unique, None, runtime="python", code=broken(n), mode="warm")
        (refused,) = platform.results(platform.deliver(hook, f"letter {n}".encode()))
        assert refused["status"] == "failed", (n, refused)
        assert f"v{n} refuses" in (refused["error"] or ""), (n, refused)

        platform.deploy(unique, None, runtime="python", code=fixed(n), mode="warm")
        started = time.monotonic()
        done = platform.api.post("/v1/deadletters/redrive", json={"function": unique}).json()
        assert done["redriven"] == [refused["invocation_id"]], (n, done)
        event = platform.deliver(hook, f"event {n}".encode())

        (fresh,) = platform.results(event, wait_s=BOUND_S)
        redriven = wait_for(partial(final, platform, refused["invocation_id"], 1),
                            timeout_s=BOUND_S - (time.monotonic() - started))
        stuck = platform.api.get(f"/v1/invocations/{refused['invocation_id']}").json()
        assert redriven is not None, (n, "the redriven call did not end", stuck)
        assert fresh["status"] in FINAL, (n, "the new event's call did not end", fresh)
        assert (fresh["status"], output(fresh)) == ("succeeded", f"v{n}: event {n}"), n
        assert (redriven["status"], output(redriven)) == ("succeeded", f"v{n}: letter {n}"), n
