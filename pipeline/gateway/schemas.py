"""Request bodies of the HTTP API (pydantic lives at the edge only)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, SecretStr

from connectors.catalog import KINDS
from connectors.webhooks import Scheme
from connectors.webhooks.rotation import HEADER_NAME
from pipeline.records import Language, Mode

NAME = r"^[a-z0-9][a-z0-9._-]{0,99}$"
CONNECTOR_KINDS: list[JsonValue] = list(sorted(KINDS))  # checked by connectors.catalog


class FunctionIn(BaseModel):
    """An image function (``image``) or a code function (``runtime`` + ``code``)."""

    model_config = ConfigDict(extra="forbid")

    image: str | None = Field(default=None, min_length=1, max_length=512)
    mode: Mode | None = Field(default=None, description="cold (default for images) or warm")
    timeout_s: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, ge=6, le=65536)
    env: dict[str, str] = Field(default_factory=dict)
    public: bool = Field(default=True, description="invocable without credentials")
    runtime: Language | None = None
    code: str | None = Field(default=None, min_length=1, max_length=1024 * 1024)
    main: str = Field(default="main", pattern=r"^[A-Za-z_$][A-Za-z0-9_$]{0,99}$")
    min_warm: int = Field(default=0, ge=0, le=64, description="containers kept warm")
    max_concurrency: int = Field(default=4, ge=1, le=256, description="warm containers at most")
    idle_timeout_s: float = Field(default=300.0, gt=0, le=86400)
    network: bool = Field(default=False, description="give its containers a network")
    secrets: dict[str, str] = Field(
        default_factory=dict, description="environment variable → secret name")


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=64 * 1024)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    source: str = Field(pattern=NAME)
    scheme: Scheme = Field(default=Scheme.NONE, description="how deliveries are verified")
    secret: SecretStr | None = Field(
        default=None, min_length=1, max_length=512,
        description="the signing secret; generated when not given (signed schemes only)",
    )
    delivery_header: str | None = Field(
        default=None, pattern=f"^{HEADER_NAME.pattern}$",
        description="a header naming deliveries, for senders the scheme does not "
        "name deliveries for: a delivery named twice is published once",
    )


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: SecretStr | None = Field(default=None, min_length=1, max_length=512,
                                     description="the new secret; generated when not given")
    grace_s: float | None = Field(
        default=None, ge=0, description="how long the replaced secrets still verify "
        "(default: FAASFLOW_GATEWAY_WEBHOOK_ROTATION_GRACE_S; 0 revokes them at once)",
    )


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    function: str = Field(pattern=NAME)
    source: str = Field(pattern=NAME)


class ConnectorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    kind: str = Field(json_schema_extra={"enum": CONNECTOR_KINDS},
                      description="which connector; its config is checked by its kind")
    source: str = Field(pattern=NAME, description="the source its events are published to")
    config: dict[str, Any] = Field(default_factory=dict)
