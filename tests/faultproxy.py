"""A fault-injecting HTTP proxy for Neutron (standard library only), for reliability tests.

Sits between a Courier process and the real Neutron on 127.0.0.1 and, per request, either passes it on or
injects a fault:

- ``pass``     forward to Neutron and relay its answer
- ``refuse``   nothing listens on the port any more: connections are refused (Neutron down)
- ``5xx``      answer 503 without forwarding (Neutron overloaded / a gateway in front of it failing)
- ``409``      answer 409 Conflict without forwarding
- ``hang``     read the request, never answer (Neutron stuck): the client must time out

Rules pick the mode per request (method and path pattern, optionally only for the next N matches); the
default mode applies otherwise. Every request is recorded (method, path, mode, time), and so are the ids of
resources Neutron created through the proxy (from POST replies) and the ``device_id`` set on ports, so a test
can tell exactly what Courier created and check that it is gone, whatever other users of the shared Neutron
do meanwhile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import http.server
import json
import re
import socket
import socketserver
import threading
import time
from typing import Any
from urllib.parse import urlparse

MODES = ("pass", "refuse", "5xx", "409", "hang")
HANG_MAX_SECONDS = 120.0
# Neutron's plural collection names -> the key of a created resource in a POST reply.
_COLLECTIONS = {"networks": "network", "subnets": "subnet", "subnetpools": "subnetpool", "ports": "port"}


@dataclasses.dataclass(frozen=True)
class Seen:
    method: str
    path: str
    mode: str
    at: float


@dataclasses.dataclass
class Rule:
    mode: str
    method: str | None = None
    path: re.Pattern[str] | None = None
    times: int | None = None  # None: every match; N: only the next N matches

    def matches(self, method: str, path: str) -> bool:
        return ((self.method is None or self.method == method)
                and (self.path is None or self.path.search(path) is not None)
                and (self.times is None or self.times > 0))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        try:
            self.server.proxy._handle(self)
        except OSError:  # the client went away (e.g. Courier was killed) before the reply was written
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class FaultProxy:
    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0):
        parsed = urlparse(upstream)
        self._up_host, self._up_port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.host = host
        self.port = port or _free_port(host)
        self.url = f"http://{host}:{self.port}"
        self._lock = threading.Lock()
        self._default = "pass"
        self._rules: list[Rule] = []
        self._release = threading.Event()  # wakes hung requests
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.seen: list[Seen] = []
        self.created: dict[str, set[str]] = {kind: set() for kind in _COLLECTIONS}
        self.device_ids: set[str] = set()
        self.auth_tokens: set[str] = set()  # X-Auth-Token values clients sent

    # --- control --------------------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def stop(self) -> None:
        self._release.set()
        self._close_listener()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set(self, mode: str, *, method: str | None = None, path: str | None = None,
            times: int | None = None) -> None:
        """Without method/path: the default mode for every request (clears the rules). With them: a rule."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        with self._lock:
            if method is None and path is None:
                self._default, self._rules = mode, []
            else:
                self._rules.append(Rule(mode, method, re.compile(path) if path else None, times))
        if mode == "refuse" and method is None and path is None:
            self._close_listener()
        else:
            self._listen()
        if mode != "hang":
            self._release.set()  # whatever hung so far gets its connection closed
            self._release = threading.Event()

    def passing(self) -> None:
        self.set("pass")

    def reset_log(self) -> None:
        with self._lock:
            self.seen = []

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        pattern = re.compile(path) if path else None
        with self._lock:
            return [s for s in self.seen if (method is None or s.method == method)
                    and (pattern is None or pattern.search(s.path))]

    # --- listener -------------------------------------------------------------------------------------------

    def _listen(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            deadline = time.monotonic() + 10
            while True:
                try:
                    server = _Server((self.host, self.port), _Handler)
                    break
                except OSError:  # the port is in TIME_WAIT from our own earlier listener: retry briefly
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            server.proxy = self
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"faultproxy-{self.port}", daemon=True)
            self._thread.start()

    def _close_listener(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    # --- one request ----------------------------------------------------------------------------------------

    def _decide(self, method: str, path: str) -> str:
        with self._lock:
            mode = self._default
            for rule in self._rules:
                if rule.matches(method, path):
                    if rule.times is not None:
                        rule.times -= 1
                    mode = rule.mode
                    break
            self.seen.append(Seen(method, path, mode, time.monotonic()))
            return mode

    def _handle(self, h: _Handler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        method, path = h.command, h.path
        token = h.headers.get("X-Auth-Token")
        if token:
            with self._lock:
                self.auth_tokens.add(token)
        mode = self._decide(method, path)
        h.close_connection = True
        if mode == "hang":
            self._release.wait(HANG_MAX_SECONDS)
            return  # close without a reply
        if mode == "refuse":  # a rule (not the listener) refuses: drop the connection unanswered
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "5xx":
            return _reply(h, 503, {"NeutronError": {"type": "ServiceUnavailable", "detail": "",
                                                    "message": "injected fault: Neutron unavailable"}})
        if mode == "409":
            return _reply(h, 409, {"NeutronError": {"type": "Conflict", "detail": "",
                                                    "message": "injected fault: conflict"}})
        self._forward(h, method, path, body)

    def _forward(self, h: _Handler, method: str, path: str, body: bytes) -> None:
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection", "keep-alive")}
        try:
            conn = http.client.HTTPConnection(self._up_host, self._up_port, timeout=60)
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status, reply_headers = resp.status, resp.getheaders()
            conn.close()
        except OSError as exc:
            return _reply(h, 502, {"NeutronError": {"type": "BadGateway", "detail": "",
                                                    "message": f"fault proxy: upstream failed: {exc}"}})
        self._record(method, path, body, status, data)
        h.send_response(status)
        for key, value in reply_headers:
            if key.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                h.send_header(key, value)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Connection", "close")
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(data)

    def _record(self, method: str, path: str, body: bytes, status: int, data: bytes) -> None:
        collection = urlparse(path).path.rstrip("/").split("/")[-1]
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            if method == "POST" and status < 300 and collection in _COLLECTIONS:
                reply = json.loads(data)
                # one resource, or a bulk create's list (the warm pools make ports that way)
                bulk = reply.get(collection)
                made = bulk if isinstance(bulk, list) else [reply[_COLLECTIONS[collection]]]
                with self._lock:
                    self.created[collection].update(r["id"] for r in made)
            if method == "PUT" and "/ports/" in path and body:
                device_id = json.loads(body)["port"].get("device_id")
                if device_id:
                    with self._lock:
                        self.device_ids.add(device_id)


def _reply(h: _Handler, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(data)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
