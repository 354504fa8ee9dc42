"""OpenFaaS's gateway API (``/system/…``) on faasflow's functions: what faas-cli and
OpenFaaS users' curl commands send, mapped onto the same registry as ``/v1/functions``.

- ``envProcess`` is the function's ``command``, run per call (without it, the ``fprocess``
  the image sets for its watchdog; without that, the image's own command);
  ``limits.memory`` its memory (Kubernetes units); ``envVars.exec_timeout`` its timeout
  (as the classic watchdog reads it); ``secrets`` reach it as variables of their names;
  ``envVars``, ``labels`` and ``annotations`` are kept as given.
- The annotation ``topic: a,b`` subscribes the function to those sources, as OpenFaaS's
  Kafka connector does; changing it changes the subscriptions, deleting the function
  removes them.
- Invocation is ``/function/{name}`` and ``/async-function/{name}``
  (``pipeline.gateway.routes.invoke``, ``asynchronous``).
- Errors are plain text with their status, as OpenFaaS's gateway answers.
"""

from __future__ import annotations

import math
import platform
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from pipeline import __version__
from pipeline.control import ControlPlane
from pipeline.errors import Conflict, InvalidRequest, NotFound
from pipeline.gateway.answers import errors
from pipeline.gateway.deps import Authenticated, Control
from pipeline.gateway.errors import OTHER_CLIENT_ERRORS, PlainErrors, plain_answer
from pipeline.gateway.schemas import NAME
from pipeline.settings import RuntimeSettings
from pipeline.specs import FunctionSpec
from pipeline.topics import check_source

TOPIC_ANNOTATION = "topic"
PROVIDER = "faasflow"
# Kubernetes quantities (what OpenFaaS's providers parse): 128Mi, 1G, 0.5Gi, 134217728
QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
FACTORS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
MEMORY_MB = (6, 65536)  # the bounds of /v1/functions' memory_mb


def memory_mb(quantity: str) -> int:
    """A memory limit in whole MiB, rounded up: ``"128Mi"`` → 128, ``"1G"`` → 954."""
    found = QUANTITY.match(quantity.strip())
    if found is None:
        hint = " (in Kubernetes units 'm' is a thousandth: did you mean Mi?)" if (
            quantity.strip().endswith("m")) else ""
        raise InvalidRequest(f"memory {quantity!r} is not a quantity such as 128Mi or 1G{hint}")
    mb = math.ceil(float(found[1]) * FACTORS[found[2]] / 2**20)
    if not MEMORY_MB[0] <= mb <= MEMORY_MB[1]:
        raise InvalidRequest(f"memory {quantity!r} is {mb} MiB: give {MEMORY_MB[0]} to "
                             f"{MEMORY_MB[1]} MiB")
    return mb


DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                  "h": 3600.0}
TIMEOUT_VARIABLE = "exec_timeout"  # the watchdog's: how long the process may run


def duration_s(text: str) -> float:
    """A watchdog duration in seconds: Go's form (``30s``, ``1m30s``, ``500ms``) or a bare
    number of seconds."""
    text = text.strip()
    if text.replace(".", "", 1).isdigit():
        return float(text)
    parts = DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidRequest(f"{TIMEOUT_VARIABLE} {text!r} is not a duration such as 30s or 2m")
    return sum(float(n) * DURATION_UNITS[u] for n, u in parts)


def topics(annotations: Mapping[str, str] | None) -> list[str]:
    """The sources the ``topic`` annotation names (comma-separated), each checked."""
    names = (annotations or {}).get(TOPIC_ANNOTATION, "")
    return sorted({check_source(t.strip()) for t in names.split(",") if t.strip()})


class Resources(BaseModel):
    memory: str | None = Field(default=None, description="such as 128Mi or 1G")
    cpu: str | None = Field(default=None, description="accepted, not enforced per function")


class FunctionDeployment(BaseModel):
    """OpenFaaS's deployment document; fields it deprecated or faasflow has no use for
    (``namespace``, ``constraints``, ``requests``, ``registryAuth``, ``network``) are
    accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    service: str = Field(pattern=NAME, description="the function's name")
    image: str = Field(min_length=1, max_length=512, description="an image on this machine")
    namespace: str | None = None
    envProcess: str | None = Field(
        default=None, max_length=4096, description="the command run per call, instead of "
        "the image's own: it reads the body on stdin, writes the answer on stdout")
    envVars: dict[str, str] | None = None
    constraints: list[str] | None = None
    secrets: list[str] | None = Field(default=None, description="faasflow secrets, each "
                                      "given as the variable of its own name")
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = Field(
        default=None, description="`topic: a,b` runs the function for the events of those "
        "sources")
    limits: Resources | None = None
    requests: Resources | None = None
    readOnlyRootFilesystem: bool | None = Field(
        default=None, description="faasflow's root filesystems are always read-only "
        "(/tmp is writable)")

    def spec(self, defaults: RuntimeSettings) -> FunctionSpec:
        """The function to deploy (``ControlPlane.put_function`` fills in the rest)."""
        memory = self.limits.memory if self.limits and self.limits.memory else None
        try:
            command = tuple(shlex.split(self.envProcess)) if self.envProcess else None
        except ValueError as exc:
            raise InvalidRequest(f"envProcess: {exc}") from None
        timeout = duration_s((self.envVars or {}).get(TIMEOUT_VARIABLE) or "0")
        return FunctionSpec(
            name=self.service, image=self.image, image_digest="",
            timeout_s=timeout or defaults.default_timeout_s,  # (0: the watchdog's "none")
            memory_mb=memory_mb(memory) if memory else defaults.default_memory_mb,
            env=self.envVars or {}, secrets={name: name for name in self.secrets or ()},
            command=command or None, labels=self.labels or {},
            annotations=self.annotations or {})


class FunctionStatus(BaseModel):
    name: str
    image: str
    envProcess: str = Field(description="the command run per call; empty: the image's own")
    envVars: dict[str, str]
    secrets: list[str]
    labels: dict[str, str]
    annotations: dict[str, str]
    limits: Resources
    readOnlyRootFilesystem: bool
    invocationCount: int = Field(description="from the invocation index: may lag a moment")
    replicas: int = Field(description="1: a container starts per call (or from the warm "
                          "pool), so the function is always ready")
    availableReplicas: int
    createdAt: str


def status(spec: FunctionSpec, invocations: int) -> dict[str, Any]:
    """A function as OpenFaaS's ``FunctionStatus`` describes it."""
    return {
        "name": spec.name, "image": spec.image,
        "envProcess": shlex.join(spec.command) if spec.command else "",
        "envVars": dict(spec.env), "secrets": sorted(set(spec.secrets.values())),
        "labels": dict(spec.labels), "annotations": dict(spec.annotations),
        "limits": {"memory": f"{spec.memory_mb}Mi"}, "readOnlyRootFilesystem": True,
        "invocationCount": invocations, "replicas": 1, "availableReplicas": 1,
        "createdAt": spec.created_at,
    }


class VersionInfo(BaseModel):
    sha: str
    release: str


class ProviderInfo(BaseModel):
    provider: str
    orchestration: str
    version: VersionInfo


class GatewayInfo(BaseModel):
    provider: ProviderInfo
    version: VersionInfo
    arch: str


async def follow_topics(control: ControlPlane, name: str, before: list[str],
                        after: list[str]) -> None:
    """Subscribe ``name`` to the sources of its ``topic`` annotation, and unsubscribe it
    from those the annotation named before and no longer does (its other subscriptions,
    made through ``/v1/subscriptions``, are left alone)."""
    for source in after:
        await control.subscribe(name, source)
    for subscription in list(control.registry.subscriptions.values()):
        if (subscription.function == name and subscription.source in set(before) - set(after)
                and subscription.filter is None and not subscription.batching.batched):
            await control.unsubscribe(subscription.id)


async def watchdog_process(control: ControlPlane, image: str) -> tuple[str, ...] | None:
    """The process an OpenFaaS image's watchdog would fork per request (its ``fprocess``),
    which faasflow runs itself, instead of the watchdog; None for an image without one. An
    of-watchdog image in HTTP mode runs a server, not a process per request: refused."""
    env = await control.image_env(image)
    if env.get("mode") == "http":
        raise InvalidRequest(f"image {image!r} runs OpenFaaS's of-watchdog in http mode (a "
                             "server): give envProcess, a command that reads the request on "
                             "stdin and writes the answer on stdout")
    try:
        return tuple(shlex.split(env.get("fprocess", ""))) or None
    except ValueError as exc:
        raise InvalidRequest(f"image {image!r}: its fprocess: {exc}") from None


async def deploy(control: ControlPlane, body: FunctionDeployment) -> None:
    old = control.registry.functions.get(body.service)
    before, after = topics(old.annotations if old else None), topics(body.annotations)
    spec = body.spec(control.settings.runtime)
    if spec.command is None:
        spec = replace(spec, command=await watchdog_process(control, body.image))
    await control.put_function(spec)
    await follow_topics(control, body.service, before, after)


async def exists(control: ControlPlane, lookup: Callable[[str], object], key: str) -> bool:
    """Whether ``lookup`` finds ``key``, after reading the registry to its end if need be
    (a deploy made through another gateway a moment ago counts)."""
    try:
        await control.found(lookup, key)
    except NotFound:
        return False
    return True


class DeleteFunctionRequest(BaseModel):
    functionName: str = Field(min_length=1, max_length=100)


router = APIRouter(prefix="/system", tags=["openfaas"], route_class=PlainErrors,
                   dependencies=Authenticated,
                   responses={**errors(401), **OTHER_CLIENT_ERRORS})
REFUSED = {400: plain_answer("Invalid: the JSON, a field, an image not on this machine, "
                             "a secret that does not exist, a memory limit or a topic"),
           **errors(413), 503: plain_answer("Kafka or the Docker Engine is unavailable.")}


@router.post("/functions", status_code=202, response_class=Response,
             summary="Deploy a function (OpenFaaS)",
             responses={409: plain_answer("A function of that name exists: update it with PUT."),
                        **REFUSED})
async def deploy_function(body: FunctionDeployment, control: Control) -> Response:
    if await exists(control, control.registry.function, body.service):
        raise Conflict(f"function {body.service!r} already exists: PUT /system/functions "
                       "updates it")
    await deploy(control, body)
    return Response(status_code=202)


@router.put("/functions", response_class=Response, summary="Update a function (OpenFaaS)",
            responses={200: {"description": "Updated"},
                       404: plain_answer("No function by that name."), **REFUSED})
async def update_function(body: FunctionDeployment, control: Control) -> Response:
    await control.found(control.registry.function, body.service)
    await deploy(control, body)
    return Response(status_code=200)


@router.get("/functions", summary="List functions (OpenFaaS)",
            response_model=list[FunctionStatus], response_model_exclude_none=True)
async def list_openfaas_functions(control: Control) -> list[dict[str, Any]]:
    counts = await control.results.counts()
    return [status(f, counts.get(f.name, 0))
            for f in sorted(control.registry.functions.values(), key=lambda f: f.name)]


@router.delete("/functions", response_class=Response, summary="Delete a function (OpenFaaS)",
               responses={200: {"description": "Deleted, with its subscriptions"},
                          400: plain_answer("Invalid JSON, or no functionName."),
                          404: plain_answer("No function by that name."), **errors(413)})
async def delete_openfaas_function(body: DeleteFunctionRequest, control: Control) -> Response:
    await control.delete_function(body.functionName)
    return Response(status_code=200)


@router.get("/function/{name}", summary="A function's status (OpenFaaS)",
            response_model=FunctionStatus, response_model_exclude_none=True,
            responses={400: plain_answer("Invalid parameters."),
                       404: plain_answer("No function by that name.")})
async def function_status(name: str, control: Control) -> dict[str, Any]:
    spec = await control.found(control.registry.function, name)
    return status(spec, (await control.results.counts()).get(name, 0))


@router.get("/info", summary="The provider and its version (OpenFaaS)",
            response_model=GatewayInfo)
async def info() -> dict[str, Any]:
    version = {"sha": "", "release": __version__}
    return {"provider": {"provider": PROVIDER, "orchestration": "docker", "version": version},
            "version": version, "arch": platform.machine()}


SECRET_REFUSED = {**REFUSED, 400: plain_answer("Invalid: the JSON, a name or a value.")}


class SecretIn(BaseModel):
    """OpenFaaS's secret (``rawValue``, for bytes, is not supported: values are text)."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=NAME)
    value: str = Field(min_length=1, max_length=64 * 1024)


class SecretName(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=100)


class SecretDescription(BaseModel):
    name: str


@router.get("/secrets", summary="List secrets, names only (OpenFaaS)",
            response_model=list[SecretDescription])
async def list_openfaas_secrets(control: Control) -> list[dict[str, str]]:
    return [{"name": name} for name in sorted(control.registry.secrets)]


@router.post("/secrets", status_code=201, response_class=Response,
             summary="Create a secret (OpenFaaS)",
             responses={409: plain_answer("A secret of that name exists: PUT replaces it."),
                        **SECRET_REFUSED})
async def create_openfaas_secret(body: SecretIn, control: Control) -> Response:
    if await exists(control, control.registry.secret, body.name):
        raise Conflict(f"secret {body.name!r} already exists: PUT /system/secrets replaces it")
    await control.put_secret(body.name, body.value)
    return Response(status_code=201)


@router.put("/secrets", response_class=Response, summary="Replace a secret's value (OpenFaaS)",
            responses={200: {"description": "Replaced; warm containers using it restart"},
                       404: plain_answer("No secret by that name."), **SECRET_REFUSED})
async def update_openfaas_secret(body: SecretIn, control: Control) -> Response:
    await control.found(control.registry.secret, body.name)
    await control.put_secret(body.name, body.value)
    return Response(status_code=200)


@router.delete("/secrets", status_code=204, response_class=Response,
               summary="Delete a secret no function uses (OpenFaaS)",
               responses={404: plain_answer("No secret by that name."),
                          409: plain_answer("A function uses the secret."), **SECRET_REFUSED})
async def delete_openfaas_secret(body: SecretName, control: Control) -> Response:
    await control.delete_secret(body.name)
    return Response(status_code=204)
