"""What an Ethereum connector is told: the endpoint, how deep is final, which logs to emit."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from eth_utils import is_checksum_address, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, field_validator

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TOPIC = re.compile(r"^0x[0-9a-fA-F]{64}$")


class EthereumConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="the node's JSON-RPC endpoint: ws(s):// subscribes to new "
                     "heads, http(s):// polls for them")
    confirmations: int = Field(default=12, ge=0, le=10_000,
                               description="how many blocks deep a block is final")
    addresses: list[str] = Field(default_factory=list,
                                 description="emit the logs of these contracts")
    topics: list[str] = Field(default_factory=list,
                              description="emit the logs whose first topic is one of these")
    emit_pending: bool = Field(default=False,
                               description="also emit unconfirmed blocks and logs, as pending")
    poll_interval_s: float = Field(default=1.0, ge=0.05, le=3600)
    start_block: int | None = Field(default=None, ge=0,
                                    description="the first block (default: the head at the "
                                    "first start)")
    batch_blocks: int = Field(default=500, ge=1, le=10_000,
                              description="blocks fetched per range query when catching up")
    max_reorg_depth: int = Field(default=64, ge=1, le=10_000,
                                 description="final blocks remembered, to retract them when a "
                                 "reorg deeper than the confirmations replaces them")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            raise ValueError("must be an http(s):// or ws(s):// URL")
        return value

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        checked = []
        for value in values:
            if not _ADDRESS.match(value):
                raise ValueError(f"{value!r} is not a 20-byte hex address")
            mixed = value[2:] != value[2:].lower() and value[2:] != value[2:].upper()
            if mixed and not is_checksum_address(value):
                raise ValueError(f"{value!r} has a wrong checksum (EIP-55)")
            checked.append(to_checksum_address(value))
        return list(dict.fromkeys(checked))

    @field_validator("topics")
    @classmethod
    def _topics(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _TOPIC.match(value):
                raise ValueError(f"{value!r} is not a 32-byte hex topic")
        return list(dict.fromkeys(v.lower() for v in values))

    @property
    def subscribes(self) -> bool:
        return urlsplit(self.url).scheme in ("ws", "wss")

    @property
    def wants_logs(self) -> bool:
        """Logs are emitted only for the contracts or topics named: all logs of a public
        chain would be thousands of events a block."""
        return bool(self.addresses or self.topics)
