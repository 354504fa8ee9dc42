"""What the end of a run means: its status, the ``Failure`` a retry policy reads, and the
reason the user reads. Pure: the runners ask the engine how a container ended, and these
functions decide what that says.

The one distinction that matters for retries: a container ended by the engine's (or an
operator's) hand — ``docker stop`` and a dockerd restart send SIGTERM, ``docker kill`` and the
end of a stop's grace send SIGKILL, ``docker rm -f`` removes it — is UNAVAILABLE, to be
retried; a container ended by its function — an exit code, a crash, the memory limit — is
ERROR, the function's own.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from pipeline.records import Failure, Status
from pipeline.runtime.engine import EXIT_KILLED, Ended
from pipeline.specs import FunctionSpec

EXIT_TERMINATED = 143  # 128 + SIGTERM


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    failure: Failure | None = None  # None when it succeeded
    error: str | None = None


def stopped_from_outside(exit_code: int, oom_killed: bool) -> bool:
    """Whether a container's main process ended by the engine's (or an operator's) hand:
    SIGTERM, or SIGKILL that was not the kernel's for memory. Nothing inside the container
    can SIGKILL its PID 1, and nothing but ``docker stop`` sends it SIGTERM."""
    return exit_code == EXIT_TERMINATED or (exit_code == EXIT_KILLED and not oom_killed)


def cold_verdict(ended: Ended | None, timed_out: bool, output_cut: bool,
                 function: FunctionSpec, lost: str | None = None) -> Verdict:
    """A cold run's end, its output read; ``lost`` says why the engine could not tell how
    the container ended. (One that still runs has timed out: it is killed at its deadline.)"""
    if timed_out:
        return Verdict(Status.TIMEOUT, Failure.TIMEOUT,
                       f"timed out after {function.timeout_s:g}s and was killed")
    if lost is not None:
        return Verdict(Status.FAILED, Failure.UNAVAILABLE, lost)
    if ended is None or ended.oom_killed:
        return _gone_or_out_of_memory(ended, function.memory_mb)
    code = ended.exit_code
    if code is not None and stopped_from_outside(code, ended.oom_killed):
        return Verdict(Status.FAILED, Failure.UNAVAILABLE,
                       f"stopped by the Docker Engine (exit code {code})")
    if code != 0:
        return Verdict(Status.FAILED, Failure.ERROR, f"exited with code {code}")
    if output_cut:
        return Verdict(Status.FAILED, Failure.ERROR, "output exceeded the size limit and was cut")
    return Verdict(Status.SUCCEEDED)


def broken_call(ended: Ended | None, memory_mb: int) -> Verdict:
    """A warm call whose connection the runtime broke, given how its container stands.
    Our runtimes exit 0 on SIGTERM, so 0 mid-call is a stop too; a runtime that ended
    otherwise was crashed by its function (``os._exit``, a segfault), or killed for memory;
    one that broke the connection and lives on was broken by its function too."""
    if ended is None or ended.oom_killed:
        return _gone_or_out_of_memory(ended, memory_mb)
    code = ended.exit_code
    if code is None:
        return Verdict(Status.FAILED, Failure.ERROR, "the runtime broke the connection")
    if code == 0 or stopped_from_outside(code, ended.oom_killed):
        return Verdict(Status.FAILED, Failure.UNAVAILABLE,
                       f"stopped by the Docker Engine (exit code {code})")
    return Verdict(Status.FAILED, Failure.ERROR, f"the runtime crashed ({_exit(code)})")


def _gone_or_out_of_memory(ended: Ended | None, memory_mb: int) -> Verdict:
    if ended is None:
        return Verdict(Status.FAILED, Failure.UNAVAILABLE, "its container was removed while it ran")
    return Verdict(Status.FAILED, Failure.ERROR,
                   f"out of memory: exceeded its {memory_mb} MB limit")


def _exit(code: int) -> str:
    try:
        return f"killed by {signal.Signals(code - 128).name}" if code > 128 else f"exit code {code}"
    except ValueError:
        return f"exit code {code}"
