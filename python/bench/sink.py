"""A counting ingestion sink for the benchmark, fast enough not to be the bottleneck.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length and chunked bodies, gzip) on
127.0.0.1 to accept the batch endpoints of every SDK in the benchmark, and counts events by
their ``"event":`` keys instead of parsing the JSON:

* Mixpanel protocol (groupscope and the ``mixpanel`` package): ``/track``, ``/import``,
  ``/engage``, ``/groups``, with ``data=`` form fields (raw or base64 JSON) or JSON bodies;
* PostHog: ``/batch/``; Segment: ``/v1/batch``.

``GET /count`` returns ``{"events": N, "requests": M}``; ``POST /reset`` sets both to zero.
Run it with ``python sink.py``; the first output line is ``listening on http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import urllib.parse
import zlib
from typing import Dict, Optional, Tuple

MIXPANEL_PATHS = ("/track", "/import", "/engage", "/groups")


class Counters:
    """Events and requests received since the last reset."""

    def __init__(self) -> None:
        self.events = 0
        self.requests = 0


def event_count(path: str, headers: Dict[str, str], body: bytes) -> int:
    """Return the number of events in one request body."""
    if headers.get("content-encoding") == "gzip":
        body = zlib.decompress(body, 31)
    if path.rstrip("/") in MIXPANEL_PATHS and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        fields = urllib.parse.parse_qs(body.decode("ascii"))
        data = fields.get("data", [""])[0].encode()
        if data[:1] not in (b"[", b"{"):
            data = base64.b64decode(data)
        body = data
    return body.count(b'"event":')


def reply_for(path: str, query: str, body: bytes) -> Tuple[str, bytes]:
    """Return the status line and body that each SDK expects on success."""
    stripped = path.rstrip("/")
    if stripped in MIXPANEL_PATHS:
        verbose = "verbose=1" in query or b"verbose=1" in body[-32:]
        return "200 OK", b'{"status":1,"error":null}' if verbose else b"1"
    if stripped == "/batch":
        return "200 OK", b'{"status":"Ok"}'
    if stripped == "/v1/batch":
        return "200 OK", b'{"success":true}'
    return "200 OK", b"{}"


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; parses requests from the byte stream as they complete."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.buffer = bytearray()
        self.transport: Optional[asyncio.Transport] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.handle_one():
            pass

    def handle_one(self) -> bool:
        header_end = self.buffer.find(b"\r\n\r\n")
        if header_end < 0:
            return False
        lines = bytes(self.buffer[:header_end]).decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()

        start = header_end + 4
        if "chunked" in headers.get("transfer-encoding", ""):
            parsed = self.chunked_body(start)
            if parsed is None:
                return False
            body, end = parsed
        else:
            end = start + int(headers.get("content-length", "0"))
            if len(self.buffer) < end:
                return False
            body = bytes(self.buffer[start:end])
        del self.buffer[:end]

        self.respond(method, target, headers, body)
        return True

    def chunked_body(self, start: int) -> Optional[Tuple[bytes, int]]:
        body = bytearray()
        position = start
        while True:
            line_end = self.buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(self.buffer[position:line_end]).split(b";")[0], 16)
            chunk_start = line_end + 2
            if len(self.buffer) < chunk_start + size + 2:
                return None
            if size == 0:
                trailer_end = self.buffer.find(b"\r\n", chunk_start)
                if trailer_end < 0:
                    return None
                return bytes(body), trailer_end + 2
            body += self.buffer[chunk_start : chunk_start + size]
            position = chunk_start + size + 2

    def respond(self, method: str, target: str, headers: Dict[str, str], body: bytes) -> None:
        path, _, query = target.partition("?")
        if method == "GET" and path == "/count":
            status, payload = "200 OK", json.dumps({"events": self.counters.events, "requests": self.counters.requests}).encode()
        elif method == "POST" and path == "/reset":
            self.counters.events = 0
            self.counters.requests = 0
            status, payload = "200 OK", b"{}"
        else:
            self.counters.requests += 1
            self.counters.events += event_count(path, headers, body)
            status, payload = reply_for(path, query, body)

        assert self.transport is not None
        self.transport.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload
        )


async def serve(port: int) -> None:
    counters = Counters()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpConnection(counters), "127.0.0.1", port)
    bound_port = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{bound_port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
