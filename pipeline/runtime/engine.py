"""The Docker Engine adapter: faasflow's one docker SDK client, and the one place where its
errors are mapped. The cold runner, the warm runner and ``fn build`` all go through it.

    what the SDK raises                              what callers see
    the engine unreachable, a timeout, HTTP 5xx      RuntimeUnavailable
    HTTP 404: no such container or image             Missing
    another HTTP 4xx: the engine refuses the call    Refused (no such executable in the
                                                     image, a name in use, a bad option)

``Missing`` and ``Refused`` never leave ``pipeline.runtime`` (and the image builder): the
runners turn them into outcomes. The Swarm service methods raise faasflow's own errors:
``NotFound`` for no such service, ``InvalidRequest`` for an engine that is not a Swarm
manager (HTTP 503) or a service that is not replicated. Every method blocks; callers run
them in a worker thread.
Errors are logged as text: a log record holding the exception would keep its traceback alive,
and with it the socket docker-py leaves unclosed when a connection fails.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, NotFound

from pipeline import errors
from pipeline.errors import RuntimeUnavailable

log = logging.getLogger(__name__)

EXIT_KILLED = 137  # 128 + SIGKILL
OOM_EVENT_WAIT_S = 2.0  # at most, looking every OOM_EVENT_POLL_S
OOM_EVENT_POLL_S = 0.1
MEMORY_KILL_EVENTS = ("start", "kill", "oom")


class Missing(Exception):
    """The container or image does not exist (or no longer)."""


class Refused(Exception):
    """The engine refused the request (HTTP 4xx): retrying the same call cannot help."""


# An image as Docker names one: [registry[:port]/]path[:tag][@digest], or an image id. The
# grammar of Docker's reference package (distribution/reference), so that nothing else
# reaches the Engine's URL paths ("../json" would ask another endpoint).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"(?:(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@{_DIGEST})?"
    rf"|(?:sha256:)?[0-9a-f]{{12,64}})")


def image_reference(ref: str) -> str:
    """``ref`` when it names an image as Docker does; ``Refused`` saying so otherwise."""
    if len(ref) > 512 or not IMAGE_REFERENCE.fullmatch(ref):
        raise Refused("not an image reference ([registry/]name[:tag][@digest])")
    return ref


@dataclass(frozen=True, slots=True)
class Ended:
    """How a container stands after a wait: ``exit_code`` None means it still runs."""

    exit_code: int | None
    oom_killed: bool


@contextmanager
def mapped(doing: str) -> Iterator[None]:
    """Translate the docker SDK's (and its transport's) errors into ours."""
    try:
        yield
    except NotFound as exc:
        raise Missing(f"{doing}: {exc.explanation or exc}") from exc
    except APIError as exc:
        if exc.is_client_error():
            raise Refused(f"{doing}: {exc.explanation or exc}") from exc
        raise RuntimeUnavailable(f"Docker Engine error {doing}: {exc}") from exc
    except (DockerException, requests.RequestException, OSError) as exc:
        raise RuntimeUnavailable(f"Docker Engine unreachable {doing}: {exc}") from exc


class Attached:
    """One attached stream of a container: the raw socket under docker's wrapper."""

    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper
        self.sock: socket.socket = wrapper._sock

    def close(self) -> None:
        """Close the socket and its wrapper (closing the wrapper alone leaves the socket to
        the garbage collector)."""
        self.sock.close()
        self._wrapper.close()


class Engine:
    """The docker SDK client, with each call's errors mapped (see the module docstring)."""

    def __init__(self, timeout_s: float = 60.0, base_url: str | None = None) -> None:
        with mapped("connecting"):
            self._client = (docker.DockerClient(base_url=base_url, timeout=timeout_s)
                            if base_url else docker.from_env(timeout=timeout_s))

    def close(self) -> None:
        self._client.close()

    def ping(self) -> None:
        with mapped("answering a ping"):
            self._client.ping()

    # images

    def image_id(self, ref: str) -> str | None:
        """The content id of a local image, or None when there is none."""
        try:
            with mapped(f"looking up image {ref}"):
                return str(self._client.api.inspect_image(image_reference(ref))["Id"])
        except Missing:
            return None

    def image_config(self, ref: str) -> dict[str, Any]:
        """The image's ``Config`` (Labels, Entrypoint, Cmd…); ``Missing`` when it is gone."""
        with mapped(f"inspecting image {ref}"):
            return dict(self._client.api.inspect_image(image_reference(ref))["Config"] or {})

    def tag(self, image: str, ref: str) -> None:
        repository, _, tag = ref.rpartition(":")
        with mapped(f"tagging {ref}"):
            self._client.api.tag(image, repository, tag)

    def build(self, context: bytes, tag: str, labels: Mapping[str, str] | None
              ) -> Iterator[dict[str, Any]]:
        """Build with the classic builder from a tar ``context``; the engine's progress
        records, decoded, as they come."""
        with mapped(f"building {tag}"):
            yield from self._client.api.build(
                fileobj=io.BytesIO(context), custom_context=True, tag=tag,
                labels=dict(labels) if labels else None, rm=True, forcerm=True, decode=True,
            )

    # containers

    def create(self, image: str, name: str, *, user: str, environment: Mapping[str, str],
               labels: Mapping[str, str], host: Mapping[str, Any],
               entrypoint: list[str] | None = None, stdin: bool = False) -> str:
        """Create a container (not started); its id. ``host`` holds the host options
        (``create_host_config`` arguments). With ``stdin``, its stdin is attachable and
        reaches EOF once the attached stream closes."""
        api = self._client.api
        with mapped(f"creating {name}"):
            config = api.create_container_config(
                image, None, user=user, entrypoint=entrypoint, stdin_open=stdin,
                environment=dict(environment), labels=dict(labels),
                host_config=api.create_host_config(**host),
            )
            if stdin:
                config["StdinOnce"] = True
            return str(api.create_container_from_config(config, name=name)["Id"])

    def attach(self, ident: str, *, stdin: bool) -> Attached:
        """The container's stdin, or its multiplexed stdout and stderr."""
        params = {"stdin": 1, "stream": 1} if stdin else {"stdout": 1, "stderr": 1, "stream": 1}
        with mapped(f"attaching to {ident[:12]}"):
            return Attached(self._client.api.attach_socket(ident, params=params))

    def start(self, ident: str) -> None:
        with mapped(f"starting {ident[:12]}"):
            self._client.api.start(ident)

    def kill(self, ident: str) -> None:
        """SIGKILL; a container that exited or went meanwhile is fine."""
        with suppress(Missing, Refused), mapped(f"killing {ident[:12]}"):
            self._client.api.kill(ident)

    def ended(self, ident: str, wait_s: float, *, killed_here: bool = False) -> Ended | None:
        """Wait up to ``wait_s`` for the container to stop, then how it stands; None when it
        no longer exists. ``killed_here``: this process SIGKILLed it (at its deadline), so
        no OOM mark is waited for. Raises only ``RuntimeUnavailable``: the engine could not
        tell."""
        api = self._client.api
        try:
            with mapped(f"inspecting {ident[:12]}"):
                # A wait that times out raises like an unreachable engine: the inspect after
                # it tells the two apart.
                with suppress(requests.RequestException):
                    api.wait(ident, timeout=max(wait_s, 0.001))
                state = api.inspect_container(ident)["State"]
                # dockerd marks an OOM kill from a containerd event of its own, which can
                # come after the exit (0.3 s was not always enough on a loaded host): look
                # again for a while before calling a SIGKILL a stop
                deadline = time.monotonic() + (0 if killed_here else OOM_EVENT_WAIT_S)
                while _killed_not_yet_oom(state) and time.monotonic() < deadline:
                    time.sleep(OOM_EVENT_POLL_S)
                    state = api.inspect_container(ident)["State"]
                if not killed_here and _killed_not_yet_oom(state):
                    state = {**state, "OOMKilled": self.killed_for_memory(ident, state)}
        except Missing:
            return None
        except Refused as exc:
            raise RuntimeUnavailable(str(exc)) from None
        running = bool(state.get("Running"))
        return Ended(exit_code=None if running else int(state.get("ExitCode", -1)),
                     oom_killed=bool(state.get("OOMKilled")))

    def killed_for_memory(self, ident: str, state: Mapping[str, Any]) -> bool:
        """Whether a container that ended by SIGKILL, with no OOM mark, was killed by the
        kernel: dockerd can miss or be late with the mark (seen on a loaded host), but every
        kill through the engine (``docker kill``, the end of ``docker stop``) leaves a
        ``kill`` event. So: no ``kill`` event since the container started, and its own
        ``start`` event still in the engine's (bounded) event buffer to prove the window
        complete, means the kernel killed it, and a kernel SIGKILL is for memory."""
        started = _epoch(str(state.get("StartedAt", "")))
        if started is None:
            return False
        with mapped(f"reading the events of {ident[:12]}"):
            seen = {str(event.get("Action") or event.get("status", "")).split(":")[0]
                    for event in self._client.api.events(
                        since=f"{started - 1:.0f}", until=f"{time.time():.9f}", decode=True,
                        filters={"container": ident, "event": list(MEMORY_KILL_EVENTS)})}
        return memory_kill_seen(seen)

    def containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Containers, running or not, carrying all of ``labels``."""
        with mapped("listing containers"):
            return list(self._client.api.containers(all=True, filters={"label": _filters(labels)}))

    def container_mounts(self, ident: str) -> list[dict[str, Any]]:
        """The container's ``Mounts`` (Type, Source: the host path, Destination…)."""
        with mapped(f"inspecting {ident[:12]}"):
            return list(self._client.api.inspect_container(ident).get("Mounts") or [])

    def remove_container(self, ident: str) -> None:
        """Force-remove; one already gone is fine. Best effort: an engine error is logged,
        never raised (whatever stays behind, the orphan cleanup finds)."""
        try:
            with mapped(f"removing container {ident[:12]}"):
                self._client.api.remove_container(ident, force=True)
        except Missing:
            pass
        except (Refused, RuntimeUnavailable) as exc:
            log.warning("could not remove container %s: %s", ident[:12], str(exc))

    # services (Docker Swarm; the engine must be a manager)

    def service_replicas(self, name: str) -> int:
        """The replica count the replicated service ``name`` asks for (its spec, not how
        many of its tasks run at the moment)."""
        with _swarm(name, f"inspecting service {name}"):
            spec = self._client.services.get(name).attrs["Spec"]
        return _replicas(name, spec)

    def scale_service(self, name: str, replicas: int) -> None:
        """Set the replica count of the replicated service ``name``; the rest of its spec,
        and its running tasks, stay as they are (``docker service scale``)."""
        with _swarm(name, f"scaling service {name} to {replicas}"):
            service = self._client.services.get(name)
            spec = service.attrs["Spec"]
            _replicas(name, spec)
            # The spec goes back as read, with only the count changed. The SDK's
            # Service.scale re-reads it with the engine's defaults filled in (a restart
            # policy, a DNS config), and Swarm replaced every running task for that changed
            # template: the first scale after a deploy restarted each worker.
            self._client.api.update_service(
                service.id, service.version, name=spec["Name"], labels=spec.get("Labels"),
                mode={"Replicated": {"Replicas": replicas}},
                task_template=spec["TaskTemplate"], update_config=spec.get("UpdateConfig"),
                rollback_config=spec.get("RollbackConfig"),
                endpoint_spec=spec.get("EndpointSpec"))

    def stack_services(self) -> list[StackService]:
        """The services of every stack deployed on this engine's Swarm (none when it is in
        no Swarm or not a manager): ``faasflow status`` shows them."""
        with mapped("listing stack services"):
            if self._client.info().get("Swarm", {}).get("ControlAvailable") is not True:
                return []
            found = []
            for service in self._client.services.list(filters={"label": STACK_LABEL}):
                spec = service.attrs["Spec"]
                running = sum(1 for task in service.tasks({"desired-state": "running"})
                              if task.get("Status", {}).get("State") == "running")
                found.append(StackService(
                    spec["Labels"][STACK_LABEL], spec["Name"],
                    spec.get("Mode", {}).get("Replicated", {}).get("Replicas"), running))
        return sorted(found, key=lambda s: (s.stack, s.name))


@dataclass(frozen=True, slots=True)
class StackService:
    stack: str
    name: str
    replicas: int | None  # None: a global service (one task per node)
    running: int


STACK_LABEL = "com.docker.stack.namespace"


@contextmanager
def _swarm(service: str, doing: str) -> Iterator[None]:
    """``mapped``, with the two answers of Swarm calls made plain."""
    try:
        with mapped(doing):
            yield
    except Missing as exc:
        raise errors.NotFound(f"no Swarm service {service} ({doing}); "
                              "'docker service ls' lists them") from exc
    except RuntimeUnavailable as exc:
        cause = exc.__cause__
        if (isinstance(cause, APIError) and cause.status_code == 503
                and "not a swarm manager" in str(cause.explanation or "").lower()):
            raise errors.InvalidRequest(
                f"{doing}: this Docker Engine is not a Swarm manager; run this on a manager "
                "node, or point DOCKER_HOST at one") from exc
        raise


def _replicas(service: str, spec: Mapping[str, Any]) -> int:
    replicated = (spec.get("Mode") or {}).get("Replicated")
    if replicated is None:
        raise errors.InvalidRequest(f"Swarm service {service} is not replicated (mode "
                                    f"{', '.join(spec.get('Mode') or {}) or 'unknown'})")
    return int(replicated.get("Replicas", 1))


def _filters(labels: Mapping[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in labels.items()]


def memory_kill_seen(actions: set[str]) -> bool:
    """From a SIGKILLed container's events since it started: killed for memory when the
    engine marked an ``oom``, or when it sent no ``kill`` and the ``start`` shows the window
    whole (the engine keeps a bounded number of events)."""
    return "oom" in actions or ("start" in actions and "kill" not in actions)


def _epoch(rfc3339: str) -> float | None:
    """Seconds since the epoch of an engine time (nanoseconds dropped); None for a zero or
    unreadable one."""
    try:
        at = datetime.fromisoformat(rfc3339[:19]).replace(tzinfo=UTC)
    except ValueError:
        return None
    return at.timestamp() if at.year > 1 else None


def _killed_not_yet_oom(state: Mapping[str, Any]) -> bool:
    return (not state.get("Running") and state.get("ExitCode") == EXIT_KILLED
            and not state.get("OOMKilled"))
