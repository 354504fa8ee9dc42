"""The running gateway against its own OpenAPI document: schemathesis with every check
(server errors; status codes, content types, schemas and headers as documented; invalid
input refused, valid input accepted; credentials enforced; 405s with Allow), with
credentials and without.

``make test`` runs ``FAASFLOW_FUZZ_EXAMPLES`` (10) examples per operation and phase with
the bearer token, and a third of that with no credentials (what that adds is their
enforcement, the same on every operation); ``make fuzz`` (``FAASFLOW_FUZZ=full``) runs many
more, and Basic credentials too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import KafkaContainer, free_port
from tests.integration.platform import REPO, TOKEN, Platform

EXAMPLES = int(os.environ.get("FAASFLOW_FUZZ_EXAMPLES", "10"))
RUN_TIMEOUT_S = float(os.environ.get("FAASFLOW_FUZZ_TIMEOUT_S", "300"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
CREDENTIALS = {
    "bearer": ["--header", f"Authorization: Bearer {TOKEN}"],
    "basic": ["--auth", f"admin:{TOKEN}"],
    "anonymous": [],
}
FULL = os.environ.get("FAASFLOW_FUZZ") == "full"
EXAMPLES_WITH = {"bearer": EXAMPLES, "basic": EXAMPLES,
                 "anonymous": EXAMPLES if FULL else max(EXAMPLES // 3, 1)}


@pytest.fixture(scope="module")
def fuzzed(kafka: KafkaContainer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A gateway with topics of its own, and little room for side effects: no worker (so
    nothing the fuzzer subscribes runs), one warm container at most, short timeouts."""
    running = Platform(kafka.bootstrap, f"z{uuid.uuid4().hex[:10]}", free_port(),
                       tmp_path_factory.mktemp("fuzz"))
    running.env.update({
        "FAASFLOW_KAFKA_PARTITIONS": "1",  # every webhook or subscription makes a topic
        "FAASFLOW_RUNTIME_MAX_WARM_CONTAINERS": "1",
        "FAASFLOW_RUNTIME_MAX_TIMEOUT_S": "5",
    })
    running.start_gateway()
    yield running
    running.stop()


def server_errors(platform: Platform) -> int:
    """5xx answers the gateway counted (its own metrics, not the fuzzer's view)."""
    total = 0.0
    for line in platform.api.get("/metrics").text.splitlines():
        if line.startswith("faasflow_http_requests_total{") and 'status="5' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def schemathesis(platform: Platform, report: Path, examples: int,
                 *options: str) -> tuple[dict[str, Any], str]:
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color",
         "run", f"{platform.url}/openapi.json", "--checks", "all",
         "--max-examples", str(examples), "--continue-on-failure", "--request-timeout", "30",
         "--report", "json", "--report-json-path", str(report), *options],
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.integration.fuzz_hooks",
             "PYTHONPATH": str(REPO)},
        cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )
    return json.loads(report.read_text()), run.stdout[-6000:] + run.stderr[-2000:]


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
@pytest.mark.parametrize("credentials", ["bearer", "basic", "anonymous"] if FULL
                         else ["bearer", "anonymous"])
def test_the_gateway_answers_as_its_document_says(
    fuzzed: Platform, credentials: str, tmp_path: Path
) -> None:
    errors_before = server_errors(fuzzed)

    report, output = schemathesis(fuzzed, tmp_path / "report.json", EXAMPLES_WITH[credentials],
                                  *CREDENTIALS[credentials])

    cases = report["test_cases"]
    failures = {f["code"]: f["count"] for f in report["failures"]}
    print(f"fuzz ({credentials}): {cases['generated']} cases, "
          f"{server_errors(fuzzed) - errors_before} answered 5xx, failures {failures or 0}, "
          f"seed {report['seed']}")
    assert report["complete"], output
    assert not report["errors"], output
    assert cases["generated"] > 0
    assert not failures, output
    assert server_errors(fuzzed) == errors_before, fuzzed.log("gateway")[-4000:]
