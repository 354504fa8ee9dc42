"""HTTP polling: fetch a URL on an interval, emit an event only when its content changes.

Conditional requests (``If-None-Match`` / ``If-Modified-Since``) let the server answer 304
without a body; a 200 whose body hashes like the last one is no change either. The ETag,
Last-Modified, content hash and change count are the checkpoint, so a restart neither
re-emits the current content nor misses a change made while it was down.

Each change is numbered (``faasflowsequence``) and its event id derives from that number:
content that flips back to an earlier version (A→B→A→B) is a new event every time, and a
batch committed again is the same event.

A server that does not answer, or answers with an error, is polled again with backoff;
one that refuses the request as configured (401, 403: the headers are wrong) fails the
connector.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from connectors.base import Resumption, Sink, retrying
from pipeline.errors import PermanentError
from pipeline.records import Event, utc_now

log = logging.getLogger(__name__)

EVENT_TYPE = "dev.faasflow.http.changed"
DIGEST = "faasflowdigest"
SEQUENCE = "faasflowsequence"
REFUSED = frozenset({401, 403})
_NAMESPACE = uuid.UUID("0b8e5c1e-6f49-5d2a-8a53-2f0c7c0d4a11")


class UrlRefused(PermanentError):
    code = "url_refused"


class PollConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    interval_s: float = Field(default=60.0, ge=0.1, le=86400)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    headers: dict[str, str] = Field(default_factory=dict)


def event_id(name: str, sequence: int, digest: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{name}/{sequence}/{digest}"))


class HttpPoller:
    def __init__(self, name: str, source: str, config: PollConfig) -> None:
        self.name = name
        self.source = source
        self.config = config
        self._etag: str | None = None
        self._last_modified: str | None = None
        self._digest: str | None = None
        self._sequence = 0  # changes published so far

    async def run(self, sink: Sink) -> None:
        self._restore(await sink.resume())
        async with httpx.AsyncClient(timeout=self.config.timeout_s,
                                     follow_redirects=True) as client:
            while True:
                async for attempt in retrying(f"poller {self.name}", (httpx.HTTPError,),
                                              sink.report, base_s=min(1.0, self.config.interval_s),
                                              cap_s=300):
                    with attempt:
                        await self.poll_once(client, sink)
                sink.report(None)
                await asyncio.sleep(self.config.interval_s)

    async def poll_once(self, client: httpx.AsyncClient, sink: Sink) -> bool:
        """One conditional GET; True when it found (and committed) new content."""
        headers = dict(self.config.headers)
        if self._etag:
            headers["If-None-Match"] = self._etag
        if self._last_modified:
            headers["If-Modified-Since"] = self._last_modified
        response = await client.get(str(self.config.url), headers=headers)
        if response.status_code == 304:
            return False
        if response.status_code in REFUSED:
            raise UrlRefused(f"{self.config.url} answered {response.status_code} "
                             f"{response.reason_phrase}: check the connector's headers")
        response.raise_for_status()
        digest = hashlib.sha256(response.content).hexdigest()
        etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
        if digest == self._digest:
            self._etag, self._last_modified = etag, modified
            return False
        sequence = self._sequence + 1
        event = Event(
            id=event_id(self.name, sequence, digest),
            source=self.source,
            type=EVENT_TYPE,
            subject=str(self.config.url),
            data=response.content,
            datacontenttype=response.headers.get("content-type"),
            time=utc_now(),
            extensions={DIGEST: digest, SEQUENCE: str(sequence)},
        )
        await sink.commit([event], {"etag": etag, "last_modified": modified, "digest": digest,
                                    "sequence": sequence})
        self._etag, self._last_modified = etag, modified
        self._digest, self._sequence = digest, sequence
        log.info("poller %s: %s changed (event %s, change %d)", self.name, self.config.url,
                 event.id, sequence)
        return True

    def _restore(self, resumption: Resumption) -> None:
        checkpoint = resumption.checkpoint
        if checkpoint:
            self._etag = checkpoint.get("etag")
            self._last_modified = checkpoint.get("last_modified")
            self._digest = checkpoint.get("digest")
            self._sequence = int(checkpoint.get("sequence", 0))
        for event in resumption.published_since:  # published, but the checkpoint was lost
            self._digest = event.extensions.get(DIGEST, self._digest)
            self._sequence = max(self._sequence, int(event.extensions.get(SEQUENCE, 0)))
