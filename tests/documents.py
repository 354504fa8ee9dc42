"""A document served over HTTP that a test changes, answering conditional GETs like a
real server: what the HTTP poller polls, in unit and integration tests alike."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Document:
    def __init__(self, body: bytes = b"version 1") -> None:
        self.body = body
        self.status: int | None = None  # answer this status instead of the document
        self.requests = 0
        self.not_modified = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/doc"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        document = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                document.requests += 1
                if document.status is not None:
                    self.send_response(document.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = document.body
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    document.not_modified += 1
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
