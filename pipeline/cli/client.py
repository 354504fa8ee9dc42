"""A small client of the gateway's HTTP API, used by the CLI."""

from __future__ import annotations

from typing import Any

import httpx

from pipeline.settings import Settings


class GatewayError(Exception):
    """The gateway answered with an error, or did not answer."""


class Gateway:
    def __init__(self, settings: Settings, timeout_s: float = 75.0) -> None:
        self.url = settings.gateway.url()
        token = settings.auth_token()
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout_s = timeout_s

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request on a connection of its own (a CLI command makes one or two)."""
        try:
            with httpx.Client(base_url=self.url, headers=self._headers,
                              timeout=self._timeout_s) as http:
                response = http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise GatewayError(
                f"no gateway answers at {self.url} ({exc}); start it with 'faasflow up'"
            ) from exc
        if response.status_code >= 400 and not path.startswith("/function/"):
            raise GatewayError(_message(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None


def _message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        message = f"{error['message']} (HTTP {response.status_code})"
        fields = error.get("fields")
        if fields:
            message += "".join(f"\n  {f['field']}: {f['message']}" for f in fields)
        return message
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
