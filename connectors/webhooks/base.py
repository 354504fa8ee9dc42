"""The webhook verification port: one ``Verifier`` per signature scheme.

    verify(headers, body, secrets, now) ──► the delivery id the sender named (or None)
                                       └──► VerificationFailed(check, message)

A verifier is pure: it reads the request's headers and raw body, the webhook's currently
valid secrets and the current time, keeps no state and reads no clock. Deduplication,
secret storage and rotation happen around it (``pipeline.receiver``, ``rotation``).

Signatures are checked before timestamps, so only a sender that holds the secret learns
that its clock is off; a forger only ever hears "bad signature".
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Protocol

from pipeline.errors import VerificationFailed

Headers = Mapping[str, str]
"""Request headers with lower-case names (``lower_case`` makes them so)."""

TOLERANCE_S = 300
"""How far a signed timestamp may be from the receiver's clock, either way."""


class Scheme(StrEnum):
    STANDARD = "standard"
    GITHUB = "github"
    STRIPE = "stripe"
    NONE = "none"


class Check(StrEnum):
    """Which check refused a delivery; the 401 body says it as ``error.check``."""

    MISSING_HEADER = "missing_header"
    MALFORMED_HEADER = "malformed_header"
    BAD_SIGNATURE = "bad_signature"
    STALE_TIMESTAMP = "stale_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"


class Verifier(Protocol):
    scheme: Scheme
    signed: bool
    """False only for ``none``: no secret, every delivery is accepted."""

    def verify(
        self, headers: Headers, body: bytes, secrets: Sequence[str], now: float
    ) -> str | None:
        """The delivery id the request names, or None if the scheme names none.

        Accepts the delivery when a signature in it matches any of ``secrets`` (compared
        in constant time) and, for timestamped schemes, the signed timestamp is within
        ``TOLERANCE_S`` of ``now``; raises ``VerificationFailed`` otherwise."""
        ...

    def sign(self, body: bytes, secret: str, now: float, delivery_id: str) -> dict[str, str]:
        """The headers a sender adds to deliver ``body`` (used by the CLI and tests)."""
        ...

    def new_secret(self) -> str:
        """A fresh secret in the form the scheme's senders expect."""
        ...

    def check_secret(self, secret: str) -> str:
        """``secret`` if the scheme can use it; ``InvalidRequest`` says why not."""
        ...


def lower_case(headers: Iterable[tuple[str, str]] | Headers) -> dict[str, str]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return {name.lower(): value for name, value in pairs}


def require(headers: Headers, name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise VerificationFailed(Check.MISSING_HEADER, f"the {name} header is missing")
    return value


def malformed(name: str, why: str) -> VerificationFailed:
    return VerificationFailed(Check.MALFORMED_HEADER, f"the {name} header is malformed: {why}")


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def any_matches(expected: Iterable[bytes], given: Sequence[bytes]) -> bool:
    """Whether a given signature equals an expected one; each pair is compared with
    ``hmac.compare_digest``, so the time taken does not tell how much of one matched."""
    return any(hmac.compare_digest(e, g) for e in expected for g in given)


def bad_signature(header: str) -> VerificationFailed:
    return VerificationFailed(
        Check.BAD_SIGNATURE, f"no signature in the {header} header matches a secret of this webhook"
    )


def parse_timestamp(raw: str, header: str) -> int:
    """Unix seconds, as every timestamped scheme sends them."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise malformed(header, "expected a Unix timestamp in seconds")
    return int(raw)


def check_timestamp(timestamp: int, now: float, header: str) -> None:
    if timestamp < now - TOLERANCE_S:
        raise VerificationFailed(
            Check.STALE_TIMESTAMP,
            f"the {header} timestamp is more than {TOLERANCE_S} s in the past",
        )
    if timestamp > now + TOLERANCE_S:
        raise VerificationFailed(
            Check.FUTURE_TIMESTAMP,
            f"the {header} timestamp is more than {TOLERANCE_S} s in the future",
        )
