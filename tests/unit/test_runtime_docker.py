"""The runtime's pure parts: what a container's end means (cold and warm), the hardening
options, the host's reading of a warm runtime's reply, and the engine adapter's error mapping
when no engine answers."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import pytest

from pipeline.errors import RuntimeUnavailable
from pipeline.records import Failure, Status
from pipeline.runtime.base import capped
from pipeline.runtime.docker import hardening
from pipeline.runtime.engine import Ended, Engine, memory_kill_seen
from pipeline.runtime.verdicts import Verdict, broken_call, cold_verdict
from pipeline.runtime.warm import _output
from pipeline.settings import RuntimeSettings

from .support import function_spec

FUNCTION = function_spec("echo", timeout_s=2.5, memory_mb=64)


def cold(exit_code: int | None = 0, *, oom: bool = False, timed_out: bool = False,
         output_cut: bool = False, lost: str | None = None) -> Verdict:
    return cold_verdict(Ended(exit_code, oom), timed_out, output_cut, FUNCTION, lost)


def test_clean_exit_succeeds() -> None:
    assert cold(0) == Verdict(Status.SUCCEEDED)


def test_timeout_wins_over_everything_else() -> None:
    assert cold(None, oom=True, timed_out=True, output_cut=True, lost="gone") == Verdict(
        Status.TIMEOUT, Failure.TIMEOUT, "timed out after 2.5s and was killed")


def test_out_of_memory_names_the_limit() -> None:
    assert cold(137, oom=True) == Verdict(
        Status.FAILED, Failure.ERROR, "out of memory: exceeded its 64 MB limit")


@pytest.mark.parametrize("code", [1, 2, 139, 255])
def test_non_zero_exit_is_the_functions_error(code: int) -> None:
    assert cold(code) == Verdict(Status.FAILED, Failure.ERROR, f"exited with code {code}")


@pytest.mark.parametrize("code", [137, 143])
def test_a_cold_container_stopped_from_outside_is_unavailable(code: int) -> None:
    assert cold(code) == Verdict(Status.FAILED, Failure.UNAVAILABLE,
                                 f"stopped by the Docker Engine (exit code {code})")


def test_a_cold_container_lost_with_the_engine_or_removed_is_unavailable() -> None:
    assert cold(lost="the Docker Engine was lost") == Verdict(
        Status.FAILED, Failure.UNAVAILABLE, "the Docker Engine was lost")
    assert cold_verdict(None, False, False, FUNCTION) == Verdict(
        Status.FAILED, Failure.UNAVAILABLE, "its container was removed while it ran")


def test_cut_output_fails_even_on_a_clean_exit() -> None:
    assert cold(0, output_cut=True) == Verdict(
        Status.FAILED, Failure.ERROR, "output exceeded the size limit and was cut")


@pytest.mark.parametrize(("ended", "failure", "reason"), [
    (None, Failure.UNAVAILABLE, "its container was removed while it ran"),
    (Ended(0, False), Failure.UNAVAILABLE, "stopped by the Docker Engine (exit code 0)"),
    (Ended(143, False), Failure.UNAVAILABLE, "stopped by the Docker Engine (exit code 143)"),
    (Ended(137, False), Failure.UNAVAILABLE, "stopped by the Docker Engine (exit code 137)"),
    (Ended(137, True), Failure.ERROR, "out of memory: exceeded its 64 MB limit"),
    (Ended(1, False), Failure.ERROR, "the runtime crashed (exit code 1)"),
    (Ended(139, False), Failure.ERROR, "the runtime crashed (killed by SIGSEGV)"),
    (Ended(200, False), Failure.ERROR, "the runtime crashed (exit code 200)"),
    (Ended(None, False), Failure.ERROR, "the runtime broke the connection"),
])
def test_a_broken_warm_call_is_the_engines_or_the_functions(
        ended: Ended | None, failure: Failure, reason: str) -> None:
    assert broken_call(ended, 64) == Verdict(Status.FAILED, failure, reason)


@pytest.fixture
def options() -> dict[str, object]:
    return hardening(256, RuntimeSettings(pids_limit=64, cpus=0.5))


def test_container_has_no_network_and_a_read_only_root(options: dict[str, object]) -> None:
    assert options["network_mode"] == "none"
    assert options["read_only"] is True


def test_container_has_no_capabilities_or_privilege_gain(options: dict[str, object]) -> None:
    assert options["cap_drop"] == ["ALL"]
    assert options["security_opt"] == ["no-new-privileges"]


def test_container_memory_has_no_swap_on_top(options: dict[str, object]) -> None:
    assert options["mem_limit"] == "256m"
    assert options["memswap_limit"] == options["mem_limit"]


def test_container_pids_and_cpus_are_limited(options: dict[str, object]) -> None:
    assert options["pids_limit"] == 64
    assert options["nano_cpus"] == 500_000_000


def test_capped_cuts_only_over_the_limit() -> None:
    assert capped(b"abcdef", 4) == (b"abcd", True)
    assert capped(b"abcd", 4) == (b"abcd", False)


@pytest.mark.parametrize(("reply", "output"), [
    ({"output": '{"message":"é"}', "logs": ""}, '{"message":"é"}'.encode()),
    ({"output_base64": "/wA=", "logs": ""}, b"\xff\x00"),
    # a runtime baked into an image before "output" answered the parsed result
    ({"result": {"message": "é"}, "logs": ""}, '{"message":"é"}'.encode()),
    ({"result": "text", "logs": ""}, b"text"),
])
def test_the_host_takes_the_warm_output_as_the_runtime_wrote_it(
        reply: dict[str, object], output: bytes) -> None:
    assert _output(reply) == output


def test_no_engine_is_runtime_unavailable(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        # docker-py leaves the socket of a failed connection to the garbage collector
        warnings.simplefilter("ignore", ResourceWarning)
        with pytest.raises(RuntimeUnavailable, match="unreachable"):
            Engine(base_url=f"unix://{tmp_path}/no-docker.sock")
        gc.collect()


class _LateOomApi:
    """An engine that reports a SIGKILLed container, and marks it OOM-killed only on the
    ``marked_after``-th look, as dockerd does when the containerd OOM event comes late."""

    def __init__(self, marked_after: int) -> None:
        self.looks = 0
        self.marked_after = marked_after

    def wait(self, ident: str, timeout: float) -> None:
        pass

    def inspect_container(self, ident: str) -> dict[str, object]:
        self.looks += 1
        return {"State": {"Running": False, "ExitCode": 137,
                          "OOMKilled": self.looks >= self.marked_after}}


@pytest.mark.parametrize("marked_after", [2, 5])
def test_an_oom_kill_marked_late_is_still_an_oom_kill(marked_after: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """CI saw a warm call's OOM kill reported as an engine stop: 0.3 s after the exit,
    dockerd had not yet marked it. The engine looks again for a while."""
    monkeypatch.setattr("pipeline.runtime.engine.OOM_EVENT_POLL_S", 0.01)
    engine = Engine.__new__(Engine)
    api = _LateOomApi(marked_after)
    engine._client = type("Client", (), {"api": api})()
    assert engine.ended("c0ffee", 0.1) == Ended(exit_code=137, oom_killed=True)
    assert broken_call(engine.ended("c0ffee", 0.1), 64).error == (
        "out of memory: exceeded its 64 MB limit")


def test_a_sigkill_never_marked_oom_is_a_stop_after_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pipeline.runtime.engine.OOM_EVENT_POLL_S", 0.01)
    monkeypatch.setattr("pipeline.runtime.engine.OOM_EVENT_WAIT_S", 0.05)
    engine = Engine.__new__(Engine)
    engine._client = type("Client", (), {"api": _LateOomApi(marked_after=10**6)})()
    assert engine.ended("c0ffee", 0.1) == Ended(exit_code=137, oom_killed=False)


def test_a_container_killed_here_is_not_waited_on_for_an_oom_mark() -> None:
    """A cold run killed at its deadline is a timeout: looking for an OOM mark would only
    add to its duration (the chaos test bounds it at timeout + 1 s)."""
    engine = Engine.__new__(Engine)
    api = _LateOomApi(marked_after=10**6)
    engine._client = type("Client", (), {"api": api})()
    assert engine.ended("c0ffee", 0.1, killed_here=True) == Ended(137, oom_killed=False)
    assert api.looks == 1


@pytest.mark.parametrize(("actions", "for_memory"), [
    ({"start", "oom"}, True),  # the mark came as an event, if not (yet) on the container
    ({"start"}, True),  # no one sent a kill: the kernel did
    ({"start", "kill"}, False),  # docker kill, or the end of docker stop
    ({"start", "kill", "oom"}, True),
    (set(), False),  # the start fell out of the engine's event buffer: it cannot tell
    ({"kill"}, False),
])
def test_a_sigkill_is_for_memory_only_when_the_engine_sent_none(actions: set[str],
                                                                for_memory: bool) -> None:
    assert memory_kill_seen(actions) is for_memory


def test_output_that_never_stops_is_cut_at_the_deadline() -> None:
    """A function printing without end (here a process writing frames as fast as it can):
    its deadline holds while output keeps coming, not only when the stream goes quiet (a
    socket's timeout bounds a wait for data, and there is always data). Failed before: the
    read ran on until the writer stopped."""
    import socket
    import subprocess
    import sys
    import time
    from types import SimpleNamespace
    from typing import cast

    from pipeline.runtime.docker import _Capture
    from pipeline.runtime.engine import Attached

    ours, theirs = socket.socketpair()
    shout = ("import socket, sys, time\n"
             "s = socket.socket(fileno=int(sys.argv[1]))\n"
             "frame = bytes([1, 0, 0, 0]) + (1 << 16).to_bytes(4, 'big') + b'x' * (1 << 16)\n"
             "end = time.monotonic() + 20\n"
             "while time.monotonic() < end:\n"
             "    s.sendall(frame)\n")
    writer = subprocess.Popen([sys.executable, "-c", shout, str(theirs.fileno())],
                              pass_fds=[theirs.fileno()], stderr=subprocess.DEVNULL)
    theirs.close()
    capture = _Capture(output_limit=1 << 20, log_limit=1 << 20)
    try:
        ours.recv(1, socket.MSG_PEEK)  # the writer is writing
        t0 = time.perf_counter()
        ended = capture.read(cast(Attached, SimpleNamespace(sock=ours)), t0 + 0.5)
        took = time.perf_counter() - t0
    finally:
        writer.kill()
        writer.wait(5)
        ours.close()
    assert ended is False
    assert took < 3.0
    assert capture.output_cut


@pytest.mark.parametrize("ref", [
    "faasflow/echo:latest", "echo", "faasflow-fn/n1a2b3c4:3f9a", "localhost:5000/team/fn:v1.2",
    "registry.example.com/a/b/c", "ghcr.io/openfaas/alpine:3.20",
    "faasflow/echo@sha256:" + "a" * 64, "sha256:" + "0123456789ab" * 5 + "0123",
    "0123456789ab", "my_image__x-y.z:TAG_1",
])
def test_an_image_as_docker_names_one_is_a_reference(ref: str) -> None:
    from pipeline.runtime.engine import image_reference

    assert image_reference(ref) == ref


@pytest.mark.parametrize("ref", [
    "../json", "images/../../containers/json", "", "Upper", "a b", "echo:", "echo:tag:x",
    "/echo", "echo/", "echo?x=1", "echo#frag", "x" * 600, "echo@sha256:short",
])
def test_anything_else_is_refused_before_it_reaches_the_engine(ref: str) -> None:
    """Found by the fuzz test: an OpenFaaS deploy of image "../json"-like names made the
    Engine answer another endpoint (a list), and the gateway a 500."""
    from pipeline.runtime.engine import Refused, image_reference

    with pytest.raises(Refused, match="not an image reference"):
        image_reference(ref)
