"""A small client of the gateway's HTTP API, used by the CLI.

It speaks HTTP/1.1 through the standard library's ``http.client``: a command makes one or
two requests to a gateway it knows the address of, and importing httpx (with its
dependencies) took longer than the rest of ``faasflow fn list`` (``bench cli_startup``).
"""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    from email.message import Message


class GatewayError(Exception):
    """The gateway answered with an error, or did not answer."""


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int
    headers: Message  # its get() ignores the case of header names
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode(self.headers.get_content_charset() or "utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class Gateway:
    def __init__(self, url: str, token: str | None, timeout_s: float = 75.0) -> None:
        self.url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout_s = timeout_s

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None, content: bytes = b"",
                headers: dict[str, str] | None = None) -> Response:
        """One request on a connection of its own (a CLI command makes one or two).
        ``timeout_s`` bounds connecting and each read and write, as httpx's did."""
        import http.client  # here: `faasflow --help` needs no HTTP (nor ssl, which it imports)

        sent = dict(self._headers)
        if json is not None:  # encoded as httpx encoded it
            content = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"),
                                    allow_nan=False).encode()
            sent["Content-Type"] = "application/json"
        sent |= headers or {}
        target = f"{path}?{urlencode(params)}" if params else path
        address = urlsplit(self.url)
        connection = http.client.HTTPConnection(address.hostname or "", address.port,
                                                timeout=self._timeout_s)
        try:
            connection.request(method, target, body=content or None, headers=sent)
            answer = connection.getresponse()
            response = Response(answer.status, answer.headers, answer.read())
        except (OSError, http.client.HTTPException) as exc:
            raise GatewayError(
                f"no gateway answers at {self.url} ({exc}); start it with 'faasflow up'"
            ) from exc
        finally:
            connection.close()
        if response.status_code >= 400 and not path.startswith("/function/"):
            raise GatewayError(_message(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None


def _message(response: Response) -> str:
    try:
        error = response.json()["error"]
        message = f"{error['message']} (HTTP {response.status_code})"
        fields = error.get("fields")
        if fields:
            message += "".join(f"\n  {f['field']}: {f['message']}" for f in fields)
        return message
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
