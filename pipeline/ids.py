"""Identifiers.

Invocation ids are derived, not drawn: the same event delivered twice to the same
function (a redelivery after a crash, a duplicate webhook) maps to the same invocation,
so its Result overwrites itself in the compacted results log instead of doubling. An
event is known by its ``source`` attribute and ``id`` together (as CloudEvents defines
identity), and by the faasflow source it came through: producers that pick the same id
never share a Result.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable

from pipeline.records import Event

_INVOCATION_NAMESPACE = uuid.UUID("6f1d7c2e-3b0a-5c8e-9a41-2f64d0b7e9a3")
_DELIVERY_NAMESPACE = uuid.UUID("0c3e8b57-95d4-5a1f-8e26-b4a7d91f3c60")
_BATCH_NAMESPACE = uuid.UUID("9b2f4e61-7c3d-5a08-b1e9-3d5c7a2f8e14")


def new_event_id() -> str:
    return str(uuid.uuid4())


def new_resource_id(prefix: str) -> str:
    """A short, URL-safe, unguessable id such as ``wh_1f3a…`` (webhook URLs are capabilities)."""
    return f"{prefix}_{secrets.token_hex(12)}"


def invocation_id(source: str, event: Event, function: str, replay_id: str = "") -> str:
    """The invocation of ``function`` for ``event``, which came through ``source``."""
    name = "\x00".join((source, event.source, event.id, function, replay_id))
    return uuid5(_INVOCATION_NAMESPACE, name)


def uuid5(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))`` in a quarter of its time (a replay derives an
    id per event): the same SHA-1, version and variant bits, without the ``UUID`` object."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def batch_invocation_id(source: str, events: Iterable[Event], function: str,
                        replay_id: str = "") -> str:
    """The invocation of ``function`` for a batch of events (in their order) that came
    through ``source``: the same batch gathered again after a crash is the same invocation;
    other boundaries make another one (see ``pipeline.batches``)."""
    name = "\x00".join((source, function, replay_id,
                        *(f"{e.source}\x01{e.id}" for e in events)))
    return str(uuid.uuid5(_BATCH_NAMESPACE, name))


def delivery_event_id(webhook_id: str, delivery_id: str) -> str:
    """The event id of a webhook delivery the sender named: the same delivery is the same
    event, even when two gateways race to publish it."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{webhook_id}\x00{delivery_id}"))
