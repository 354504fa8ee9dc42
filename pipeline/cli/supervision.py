"""What the supervisor decides, as pure functions: when a child is unhealthy, how long to wait
before starting it again, how an exit is described, and what ``faasflow status`` shows.

Nothing here starts, signals or waits for a process; ``pipeline.cli.supervisor`` does, and
asks these functions. Times are wall-clock seconds (``time.time()``), as in health reports.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from tenacity import wait_exponential_jitter

from pipeline import health
from pipeline.cli.state import ComponentState, SupervisorState


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How the supervisor restarts its children.

    A child that exits is started again after ``backoff_s`` · 2ⁿ (plus up to ``jitter_s``,
    at most ``max_backoff_s``) for its n-th exit in a row; the count starts over once a
    child has been ready and running for ``reset_after_s``.
    """

    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    jitter_s: float = 1.0
    reset_after_s: float = 60.0
    check_interval_s: float = 1.0
    start_timeout_s: float = 120.0  # to become ready (or, for a worker, to report health)
    stale_after_s: float = health.STALE_AFTER_S  # a worker's report older than this: hung
    stall_grace_s: float = 30.0  # a worker saying "stalled" this long: restart it
    unanswered_grace_s: float = 20.0  # a gateway not answering /healthz this long: restart

    def wait(self) -> wait_exponential_jitter:
        """tenacity's strategy for the delay before the next start."""
        return wait_exponential_jitter(multiplier=self.backoff_s, max=self.max_backoff_s,
                                       jitter=self.jitter_s)

    def ran_well(self, ready_at: float | None, exited_at: float) -> bool:
        return ready_at is not None and exited_at - ready_at >= self.reset_after_s


@dataclass(frozen=True, slots=True)
class Observation:
    """What the supervisor last saw of one running child."""

    started_at: float
    ready: bool = False
    health: health.Health | None = None  # a worker's latest report
    stalled_since: float | None = None  # since when its reports say "stalled"
    answered_at: float | None = None  # when a gateway last answered /healthz (any status)


def unhealthy(name: str, seen: Observation, now: float, policy: RestartPolicy) -> str | None:
    """Why a child that is still alive must be killed and restarted, or None.

    A gateway that answers 503 (its broker is down) is not restarted: it answered, and a new
    one would not reach the broker either.
    """
    age = now - seen.started_at
    if name == "worker" and seen.health is not None:
        report_age = now - seen.health.at
        if report_age > policy.stale_after_s:
            return f"health report {report_age:.0f}s old (hung or stopped)"
        if seen.stalled_since is not None and now - seen.stalled_since > policy.stall_grace_s:
            problems = "; ".join(seen.health.problems) or "no progress"
            return f"stalled for {now - seen.stalled_since:.0f}s ({problems})"
        return None
    if name == "gateway":
        if seen.answered_at is None:
            return f"no answer on /healthz {age:.0f}s after start" \
                if age > policy.start_timeout_s else None
        silent = now - seen.answered_at
        return f"no answer on /healthz for {silent:.0f}s" \
            if silent > policy.unanswered_grace_s else None
    if not seen.ready and age > policy.start_timeout_s:
        return f"not ready {age:.0f}s after start"
    return None


def stalled_since(previous: float | None, report: health.Health | None) -> float | None:
    """Since when a worker's reports have said "stalled" without a break."""
    if report is None or report.status != "stalled":
        return None
    return previous if previous is not None else report.at


def exit_reason(returncode: int) -> str:
    """``exit code 3``, or the signal's name for a process killed by one."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


# What ``faasflow status`` shows

def supervisor_state(state: SupervisorState, *, lock_held: bool) -> str:
    """The supervisor's state: what it recorded while it holds its lock; once the lock is
    free, ``dead`` if it did not record a clean end (it was killed)."""
    if lock_held:
        return state.state
    return state.state if state.state in ("stopped", "failed") else "dead"


def component_state(recorded: ComponentState, *, supervised: bool, alive: bool) -> str:
    """A child's state from what its supervisor recorded and whether its process is alive.

    ``restarting`` covers a child that died an instant ago (its supervisor has not reaped it
    yet); ``unsupervised`` is one left running by a supervisor that died, which
    ``faasflow down`` stops.
    """
    if not supervised:
        return "unsupervised" if alive else "stopped"
    if recorded.state in ("starting", "running") and not alive:
        return "restarting"
    return recorded.state


def component_view(recorded: ComponentState, state: str, now: float) -> dict[str, object]:
    """One child, as ``faasflow status --json`` prints it."""
    running = state in ("starting", "running", "unsupervised")
    last_exit = recorded.last_exit
    return {
        "state": state,
        "pid": recorded.pid if running else None,
        "uptime_s": round(now - recorded.started_at, 1)
        if running and recorded.started_at is not None else None,
        "restarts": recorded.restarts,
        "last_exit": None if last_exit is None
        else {"reason": last_exit.reason, "at": last_exit.at,
              "ago_s": round(now - last_exit.at, 1)},
        "restart_in_s": round(max(0.0, recorded.restart_at - now), 1)
        if state == "restarting" and recorded.restart_at is not None else None,
        "probe": recorded.probe if state in ("starting", "running") else None,
    }
