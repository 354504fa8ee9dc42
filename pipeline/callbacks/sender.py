"""The HTTP adapter of deliveries: one POST, to the address the guard checked.

``PinnedTransport`` resolves the URL's host once, refuses it unless every address is
allowed (``pipeline.callbacks.guard``), and connects to the first address itself: the
request goes to that IP with the original ``Host`` header, and for https the TLS name
(SNI and certificate check) stays the host name. Nothing resolves the name a second time,
so DNS rebinding cannot swap the address between check and connect. Redirects are not
followed (a 3xx is a failed attempt). Only this module imports httpx for callbacks, and
its errors become an ``Attempt`` with ``error`` set.
"""

from __future__ import annotations

import time
from typing import Protocol

import httpx

from pipeline.callbacks.guard import Refused, allowed_addresses
from pipeline.callbacks.records import Attempt
from pipeline.records import utc_now

USER_AGENT = "faasflow-callbacks"


class Sender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        """POST ``body``; the outcome, whatever happened (never raises for the target's
        faults)."""
        ...


class PinnedTransport(httpx.AsyncBaseTransport):
    """Connections are pooled per host name: after pinning, the pool sees only an IP, and
    a TLS connection made for one name must not carry a request for another."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._pools: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        where, addresses = await allowed_addresses(str(request.url), self._allow_private)
        request.url = request.url.copy_with(host=str(addresses[0]))
        if where.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": where.host}
        pool = self._pools.get(where.host)
        if pool is None:
            pool = self._pools[where.host] = httpx.AsyncHTTPTransport(retries=0)
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


class HttpSender:
    def __init__(self, allow_private: bool, timeout_s: float) -> None:
        self._client = httpx.AsyncClient(transport=PinnedTransport(allow_private),
                                         timeout=timeout_s, follow_redirects=False,
                                         headers={"User-Agent": USER_AGENT})

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        at, started = utc_now(), time.monotonic()
        try:
            response = await self._client.post(
                url, content=body, headers={**headers, "Content-Type": "application/json"})
        except Refused as exc:
            return Attempt(at, time.monotonic() - started, error=exc.message)
        except httpx.HTTPError as exc:
            return Attempt(at, time.monotonic() - started,
                           error=f"{type(exc).__name__}: {exc}"[:500])
        return Attempt(at, time.monotonic() - started, status_code=response.status_code)

    async def close(self) -> None:
        await self._client.aclose()
