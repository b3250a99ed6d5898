"""Shared fixtures: a loopback ingestion sink and the reference server.

The sink is a real HTTP server on 127.0.0.1 that decodes every request the way Mixpanel's
ingestion API reads it (gzip, ``data=`` form fields holding base64 or raw JSON, raw JSON
bodies, NDJSON for ``/import``) and records the decoded records. Tests script its responses
to produce errors and stalls.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional

import pytest

import groupscope


@dataclass
class ReceivedRequest:
    """One decoded request received by the sink."""

    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]
    records: List[Dict[str, Any]]


@dataclass
class ScriptedResponse:
    """A response the sink returns instead of the default success."""

    status: int
    body: bytes = b"0"
    headers: Dict[str, str] = field(default_factory=dict)


def decode_records(body: bytes, content_type: str) -> List[Dict[str, Any]]:
    """Decode an ingestion request body into its list of records."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        data = urllib.parse.parse_qs(body.decode("utf-8"))["data"][0]
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = json.loads(base64.b64decode(data))
    else:
        text = body.decode("utf-8")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
    return parsed if isinstance(parsed, list) else [parsed]


class Sink:
    """A loopback ingestion server that records decoded requests."""

    def __init__(self) -> None:
        self.requests: List[ReceivedRequest] = []
        self.raw_bodies: List[bytes] = []
        self.responses: Deque[ScriptedResponse] = deque()
        self.stalled = threading.Event()
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="sink", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    def records(self, path_prefix: str = "/track") -> List[Dict[str, Any]]:
        """Return every record received on paths starting with ``path_prefix``."""
        with self._lock:
            return [record for request in self.requests if request.path.startswith(path_prefix) for record in request.records]

    def events(self) -> List[Dict[str, Any]]:
        return self.records("/track")

    def wait_for(self, count: int, path_prefix: str = "/track", timeout: float = 10.0) -> List[Dict[str, Any]]:
        """Wait until ``count`` records arrived on ``path_prefix`` and return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.records(path_prefix)
            if len(records) >= count:
                return records
            time.sleep(0.01)
        raise AssertionError(f"expected {count} records on {path_prefix}, got {len(self.records(path_prefix))}")

    def _handler_class(self) -> type:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._handle(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self._handle(self.rfile.read(length))

            def _handle(self, body: bytes) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parsed.query)
                if sink.stalled.is_set():
                    sink.released.wait(timeout=60)
                with sink._lock:
                    scripted = sink.responses.popleft() if sink.responses else None
                if scripted is None:
                    raw = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
                    if parsed.query and "data" in query and not raw:
                        raw = urllib.parse.urlencode({"data": query["data"][0]}).encode()
                        content_type = "application/x-www-form-urlencoded"
                    else:
                        content_type = self.headers.get("Content-Type", "")
                    records = decode_records(raw, content_type) if raw else []
                    with sink._lock:
                        sink.raw_bodies.append(raw)
                        sink.requests.append(
                            ReceivedRequest(self.command, parsed.path, query, dict(self.headers.items()), records)
                        )
                    form = urllib.parse.parse_qs(raw.decode("utf-8", "replace")) if content_type.startswith("application/x-www-form-urlencoded") else {}
                    verbose = "1" in query.get("verbose", []) + form.get("verbose", [])
                    scripted = ScriptedResponse(200, b'{"status":1,"error":null}' if verbose else b"1")
                try:
                    self.send_response(scripted.status)
                    for name, value in scripted.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(scripted.body)))
                    self.end_headers()
                    self.wfile.write(scripted.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client process exited while the request was stalled

        return Handler


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.close()


@pytest.fixture
def make_client(sink: Sink) -> Iterator[Callable[..., groupscope.Client]]:
    """Create clients pointed at the sink, with fast flushing; shut them all down afterwards."""
    clients: List[groupscope.Client] = []

    def make(**options: Any) -> groupscope.Client:
        options.setdefault("api_host", sink.url)
        options.setdefault("flush_interval", 0.05)
        options.setdefault("initial_retry_delay", 0.05)
        options.setdefault("max_retry_delay", 0.2)
        options.setdefault("exit_timeout", 2.0)
        client = groupscope.Client("test-token", **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.shutdown(timeout=2.0)


def server_binary() -> Optional[Path]:
    """Return the groupscope-server binary named by GROUPSCOPE_SERVER_BIN, if any."""
    configured = os.environ.get("GROUPSCOPE_SERVER_BIN")
    if configured:
        return Path(configured)
    return None


class ReferenceServer:
    """A groupscope-server process on 127.0.0.1 with an in-memory database."""

    def __init__(self, binary: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [str(binary), "serve", "--listen", "127.0.0.1:0", "--db", ":memory:", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        first_line = self.process.stdout.readline().strip()
        prefix = "listening on "
        if not first_line.startswith(prefix):
            self.process.kill()
            raise RuntimeError(f"groupscope-server did not start; its first output line was {first_line!r}")
        self.url = first_line[len(prefix):]

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def post_json(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def events(self, **filters: str) -> List[Dict[str, Any]]:
        query = urllib.parse.urlencode(dict(filters, limit="10000"))
        return list(self.get_json(f"/api/events?{query}")["events"])

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def reference_server() -> Iterator[ReferenceServer]:
    """A groupscope-server with fault injection enabled, on 127.0.0.1."""
    binary = server_binary()
    if binary is None:
        pytest.skip("GROUPSCOPE_SERVER_BIN is not set; scripts/test-python.sh sets it")
    server = ReferenceServer(binary, "--fault-injection")
    yield server
    server.close()


def sink_response(status: int, body: bytes = b"0", **headers: str) -> ScriptedResponse:
    return ScriptedResponse(status, body, dict(headers))


__all__ = ["ReceivedRequest", "ReferenceServer", "ScriptedResponse", "Sink", "sink_response"]
