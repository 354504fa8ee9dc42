"""Connector kinds: each names a config model and a constructor. ``validate`` runs at the
API edge (bad config → 422), ``build`` in the worker (a definition that no longer
validates fails the connector)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from connectors import ethereum, http_poll
from connectors.base import Connector
from pipeline.errors import InvalidRequest
from pipeline.specs import ConnectorSpec


@dataclass(frozen=True, slots=True)
class Kind:
    config: type[BaseModel]
    create: Callable[[str, str, Any], Connector]


KINDS: dict[str, Kind] = {
    "http-poll": Kind(http_poll.PollConfig, http_poll.HttpPoller),
    "ethereum": Kind(ethereum.EthereumConfig, ethereum.EthereumConnector),
}


def validate(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as the kind's model normalizes it; ``InvalidRequest`` says what is wrong."""
    return _model(kind, config).model_dump(mode="json")


def build(spec: ConnectorSpec) -> Connector:
    """``InvalidRequest`` (permanent) when the definition no longer validates, as after an
    upgrade that changed its kind or its config."""
    return KINDS[spec.kind].create(spec.name, spec.source, _model(spec.kind, spec.config))


def _model(kind: str, config: Mapping[str, Any]) -> BaseModel:
    if kind not in KINDS:
        raise InvalidRequest(f"unknown connector kind {kind!r}: choose one of {sorted(KINDS)}")
    try:
        return KINDS[kind].config.model_validate(config)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidRequest(f"invalid {kind} config: {problems}") from None
