"""faasflow on a real Docker Swarm with a three-broker Kafka cluster (compose/stack.yml).

What a user of the stack relies on: the hello-world through a webhook; warm functions run
by workers that are containers themselves; two gateways that agree at once; workers added
under load sharing it; a worker and then a broker killed under load losing nothing; the
autoscaler adding workers for a burst and removing them after. ``make stack-test`` runs it
with more events (``FAASFLOW_STACK_LOAD=full``), and workers scaled by hand from 1 to 3.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.load import Background, Written, deliver, report, wait_until_final
from tests.integration.platform import REPO, wait_for
from tests.stack.conftest import BOOTSTRAP, FULL, NAME, URL, Stack, stack_script

pytestmark = [pytest.mark.stack, pytest.mark.timeout(1800 if FULL else 900)]

ECHO = "def main(args):\n    return args\n"
NAP = "import time\ndef main(args):\n    time.sleep(0.05)\n    return args\n"
# A function that waits on something (200 ms): what one worker can run of it at once (its
# max_concurrency, 4) bounds its throughput, not the machine's two cores.
WAIT = "import time\ndef main(args):\n    time.sleep(0.2)\n    return args\n"


def warm(stack: Stack, name: str, code: str = ECHO, source: str | None = None,
         min_warm: int = 1) -> None:
    stack.deploy(name, runtime="python", code=code, mode="warm", min_warm=min_warm)
    if source is not None:
        stack.subscribe(name, source)


def final(stack: Stack, event_id: str) -> dict[str, Any]:
    response = stack.api.get("/v1/invocations", params={"event_id": event_id, "wait": 60},
                             timeout=90)
    assert response.status_code == 200, response.text
    results = response.json()
    assert len(results) == 1, results
    return dict(results[0])


def test_the_hello_world_runs_through_a_webhook(stack: Stack) -> None:
    stack.deploy("hello", image="faasflow/hello:latest")
    stack.subscribe("hello", "hello")
    hook = stack.webhook("hello")

    sent = stack.anonymous.post(hook["url"], content=b"Swarm")

    assert sent.status_code == 202, sent.text
    result = final(stack, sent.json()["event_id"])
    assert result["status"] == "succeeded", result
    assert result["output"] == "Hello, Swarm!\n"


def test_a_warm_function_runs_in_a_worker_container(stack: Stack) -> None:
    """The worker is a container: its warm containers are its siblings on the node's
    engine, their sockets in the node's socket volume."""
    warm(stack, "greet", "def main(args):\n    return {'hi': args}\n", source="greet")
    hook = stack.webhook("greet")

    sent = stack.anonymous.post(hook["url"], json={"n": 1})

    result = final(stack, sent.json()["event_id"])
    assert result["status"] == "succeeded", result
    assert json.loads(result["output"]) == {"hi": {"n": 1}}
    siblings = stack.engine.containers.list(filters={"label": ["faasflow.mode=warm",
                                                                "faasflow.function=greet"]})
    assert siblings, "no warm container of greet on the node's engine"
    assert all(f"{NAME}_warm-sockets" in c.labels["faasflow.sockets"] for c in siblings)


RIGHT_AFTER = """
import json, sys, urllib.error, urllib.request

token = open("/run/secrets/token").read().strip()


def call(url, method, body):
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


here, there, rounds = "http://127.0.0.1:8080", f"http://{sys.argv[1]}:8080", int(sys.argv[2])
seen = []
for n in range(rounds):
    name = f"both{n}"
    deployed = call(f"{here}/v1/functions/{name}", "PUT",
                    {"runtime": "python", "code": "def main(args):\\n    return args\\n",
                     "mode": "warm"})
    subscribed = call(f"{there}/v1/subscriptions", "POST", {"function": name, "source": name})
    invoked = call(f"{there}/function/{name}", "POST", {"round": n})
    seen.append([deployed[0], subscribed[0], invoked])
print(json.dumps(seen))
"""


def test_a_function_deployed_through_one_gateway_is_at_once_usable_through_the_other(
    stack: Stack,
) -> None:
    """Deployed through one gateway, then at once (the next request of the same client,
    a millisecond later) subscribed and invoked through the other, round after round."""
    first, second = stack.containers("gateway")[:2]
    network = f"{NAME}_faasflow"
    address = second.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]

    code, output = first.exec_run(["python", "-c", RIGHT_AFTER, address, "10"])

    assert code == 0, output
    rounds = json.loads(output.decode().strip().splitlines()[-1])
    assert [r[:2] for r in rounds] == [[201, 201]] * 10, rounds
    assert [r[2] for r in rounds] == [[200, {"round": n}] for n in range(10)], rounds


def throughput(stack: Stack, source: str, events: int) -> float:
    """Events per second through the pipeline: ``events`` sent at once, from the first
    invocation queued to the last Result finished (the Results' own timings), all of them
    acknowledged and succeeded. A round of 50 first, so every worker's warm pool is up."""
    hook_url = URL + stack.webhook(source)["url"]
    for count in (50, events):
        sent = Background(hook_url, [f"event {i}".encode() for i in range(count)],
                          concurrency=32).wait()
        written = wait_until_final(BOOTSTRAP, "faasflow", sent.acknowledged, per_event=1,
                                   timeout_s=600)
        figures = report(f"{source}: {count} events", sent, written, functions=1)
        assert figures["lost"] == 0, figures
        assert figures["duplicated"] == 0, figures
        assert figures["acknowledged"] == count, figures
    ours = set(sent.acknowledged)
    timings = [r["timings"] for records in written.finals().values() for r in records
               if r["event_id"] in ours]
    began = min(datetime.fromisoformat(t["queued_at"]) for t in timings)
    ended = max(datetime.fromisoformat(t["finished_at"]) for t in timings)
    return events / (ended - began).total_seconds()


@pytest.mark.skipif(not FULL, reason="make stack-test: scaling by hand under load (the "
                    "autoscaler's burst covers scaling out in make test)")
def test_added_workers_share_the_load(stack: Stack) -> None:
    """Under load, workers go from 1 to 3 by `docker service scale` alone: the partitions
    rebalance, nothing is lost, nothing ends twice with a different state."""
    events = 1200 if FULL else 300
    stack.scale("autoscaler", 0)  # the counts are this test's to set
    try:
        rates = {}
        for workers in (1, 2, 3) if FULL else (1, 3):
            stack.scale("worker", workers)
            source = f"share{workers}"
            # no warm container before a worker runs it: each pool then says who ran it
            warm(stack, source, WAIT, source=source, min_warm=0)
            rates[workers] = throughput(stack, source, events)
            runners = {c.labels["faasflow.owner"] for c in stack.engine.containers.list(
                filters={"label": ["faasflow.mode=warm", f"faasflow.function={source}"]})}
            assert len(runners) == workers, f"{workers} workers, {len(runners)} ran {source}"
        print(f"\nSTACK throughput by workers (events/s): {rates}")
    finally:
        stack.scale("worker", 1)
        stack.scale("autoscaler", 1)


def test_scaling_the_workers_leaves_the_running_ones_alone(stack: Stack) -> None:
    """The first scale after a deploy replaced the running worker (the SDK sent the spec
    back with the engine's defaults filled in, a changed template for Swarm)."""
    stack.scale("autoscaler", 0)
    running = {c.id for c in stack.containers("worker")}
    try:
        stack.scale("worker", 2)
        time.sleep(5)  # a replaced task is stopped after its successor starts

        assert running < {c.id for c in stack.containers("worker")}
    finally:
        stack.scale("worker", 1)
        stack.scale("autoscaler", 1)


def test_a_worker_then_a_broker_killed_under_load_lose_nothing(stack: Stack) -> None:
    events = 4000 if FULL else 1200
    stack.scale("autoscaler", 0)
    stack.scale("worker", 2)
    try:
        warm(stack, "steady", ECHO, source="steady")
        hook_url = URL + stack.webhook("steady")["url"]
        load = Background(hook_url, [f"event {i}".encode() for i in range(events)],
                          concurrency=8, rate=100)
        time.sleep(3)
        stack.containers("worker")[0].kill()  # Swarm starts another in its place
        time.sleep(3)
        stack.scale("kafka-2", 0)  # down, and stays down until scaled back
        time.sleep(5)
        answered_meanwhile = asyncio_run_deliver(hook_url, 20)
        stack.scale("kafka-2", 1)
        sent = load.wait()

        written = wait_until_final(BOOTSTRAP, "faasflow", sent.acknowledged, per_event=1,
                                   timeout_s=600)
        figures = report("worker killed, then broker kafka-2 down", sent, written,
                         functions=1)
        print(f"STACK delays (s) from queued to final: {delays(written, sent.acknowledged)}")
        assert answered_meanwhile == {202: 20}, "ingest stopped with 2 of 3 brokers"
        assert figures["lost"] == 0, figures
        assert figures["duplicated"] == 0, figures
        assert figures["acknowledged"] >= events * 0.95, figures
    finally:
        stack.scale("kafka-2", 1)
        stack.scale("worker", 1)
        stack.scale("autoscaler", 1)


def delays(written: Written, events: list[str]) -> dict[str, float]:
    """How long the events' invocations took from queued to final: what a kill cost."""
    ours = set(events)
    took = sorted(
        (datetime.fromisoformat(r["timings"]["finished_at"])
         - datetime.fromisoformat(r["timings"]["queued_at"])).total_seconds()
        for records in written.finals().values() for r in records[-1:]
        if r["event_id"] in ours)
    return {"p50": round(took[len(took) // 2], 2), "p99": round(took[len(took) * 99 // 100], 2),
            "max": round(took[-1], 2), "over_5s": sum(1 for t in took if t > 5)}


def asyncio_run_deliver(url: str, count: int) -> dict[int, int]:
    """``count`` deliveries now: how they were answered, by status."""
    import asyncio

    sent = asyncio.run(deliver(url, [b"meanwhile"] * count, concurrency=4))
    answers = dict(sent.refused)
    if sent.acknowledged:
        answers[202] = len(sent.acknowledged)
    if sent.unanswered:
        answers[0] = sent.unanswered
    return answers


def test_the_autoscaler_adds_workers_for_a_burst_and_removes_them_after(
    stack: Stack,
) -> None:
    warm(stack, "burst", NAP, source="burst")
    hook_url = URL + stack.webhook("burst")["url"]
    assert len(stack.containers("worker")) == 1

    sent = Background(hook_url, [f"event {i}".encode() for i in range(3000)],
                      concurrency=32).wait()

    assert len(sent.acknowledged) == 3000
    grew = wait_for(lambda: stack.service("worker").attrs["Spec"]["Mode"]["Replicated"]
                    ["Replicas"] > 1, timeout_s=120, every_s=2)
    assert grew, "the autoscaler added no worker"
    written = wait_until_final(BOOTSTRAP, "faasflow", sent.acknowledged, per_event=1,
                               timeout_s=600)
    assert report("burst", sent, written, functions=1)["lost"] == 0
    shrank = wait_for(lambda: stack.service("worker").attrs["Spec"]["Mode"]["Replicated"]
                      ["Replicas"] == 1, timeout_s=180, every_s=3)
    assert shrank, "the autoscaler kept the workers it added"


def test_status_finds_the_deployed_stack_its_gateway_and_token(stack: Stack) -> None:
    done = subprocess.run([str(REPO / ".venv" / "bin" / "faasflow"), "status", "--json"],
                          env=stack.env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    services = {s["name"]: s for s in status["stacks"] if s["stack"] == NAME}
    assert services[f"{NAME}_gateway"]["replicas"] == 2
    assert services[f"{NAME}_gateway"]["running"] == 2
    assert {f"{NAME}_kafka-{n}" for n in (1, 2, 3)} <= set(services)
    assert status["gateway"] == URL
    assert status["token"] == stack.token
    assert status["health"]["status"] == "ok"


def test_a_new_token_rolls_onto_the_deployed_stack(stack: Stack) -> None:
    """``make stack`` again after the token changed (a rotation): the services move to it,
    the old one is refused. Swarm cannot change a secret; before, the deploy failed."""
    state = Path(stack.env["FAASFLOW_STATE_DIR"])
    old = stack.token
    (state / "token").write_text("rotated-" + old[::-1] + "\n")

    stack_script("up", stack.env)

    def answers(token: str) -> int:
        try:
            return stack.anonymous.get("/v1/functions", headers={
                "Authorization": f"Bearer {token}"}).status_code
        except httpx.HTTPError:
            return 0
    assert wait_for(lambda: answers(stack.token) == 200 and answers(old) == 401,
                    timeout_s=240, every_s=2), (answers(stack.token), answers(old))
    names = {secret.name for secret in stack.engine.secrets.list(
        filters={"label": f"com.docker.stack.namespace={NAME}"})}
    assert len(names) == 2, names  # the new token's and the signing secret's: none left over
