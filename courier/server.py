"""HTTP/1.1 over a unix socket (and TCP/TLS when configured), the way Docker talks to plugins.

The standard library's threading server is enough for a score of POST routes and gives direct control of
what matters here: socket permissions, request size limits and read timeouts. Docker calls the plugin in
parallel over several keep-alive connections; each connection gets its own thread.
"""

from __future__ import annotations

import contextlib
import http
import http.server
import json
import logging
import os
import socket
import socketserver
import ssl
import threading
from typing import Any, Protocol
from urllib.parse import urlparse

LOG = logging.getLogger(__name__)


class Dispatcher(Protocol):
    """A front end's calls: the method (the request path) and body in, an HTTP status and JSON object out."""

    def dispatch(self, method: str, body: bytes) -> tuple[int, dict[str, Any]]: ...


CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
# Docker's plugin client keeps idle connections for 90 s; closing ours later means Docker closes first.
IDLE_TIMEOUT = 120.0
BODY_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0


class PluginRequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "courier"
    timeout = IDLE_TIMEOUT
    server: _PluginServerMixin  # type: ignore[assignment]

    def address_string(self) -> str:  # unix sockets have no peer address
        return str(self.client_address or "unix")

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s " + format, self.address_string(), *args)

    def do_POST(self) -> None:
        method = self.path.lstrip("/")
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._reply(411, _error("chunked bodies are not supported; send Content-Length"))
        try:
            size = int(length) if length is not None else 0
        except ValueError:
            return self._reply(400, _error("invalid Content-Length"))
        if size < 0:
            return self._reply(400, _error("invalid Content-Length"))
        if size > self.server.max_body:
            self.close_connection = True  # do not read what we will not use
            return self._reply(413, _error(f"request body over {self.server.max_body} bytes"))
        self.connection.settimeout(BODY_TIMEOUT)
        try:
            body = self.rfile.read(size) if size else b""
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if len(body) < size:  # peer gave up mid-body
            self.close_connection = True
            return
        self.connection.settimeout(IDLE_TIMEOUT)
        status, answer = self.server.dispatcher.dispatch(method, body)
        self._reply(status, answer)

    def do_GET(self) -> None:
        self._reply(405, _error("plugin calls are POST"))

    do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, oversized headers) get JSON too, never an HTML page."""
        self.close_connection = True
        self._reply(code, _error(message or http.HTTPStatus(code).phrase))

    def _reply(self, status: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


def _error(message: str) -> dict[str, str]:
    return {"Err": message, "Error": message}


class _PluginServerMixin(socketserver.ThreadingMixIn):
    daemon_threads = True
    # listen() backlog: socketserver's 5 refuses (EAGAIN) a burst of parallel `docker run`s connecting at once
    request_queue_size = 128
    dispatcher: Dispatcher
    max_body: int


class UnixPluginServer(_PluginServerMixin, socketserver.UnixStreamServer):
    def __init__(self, path: str, dispatcher: Dispatcher, max_body: int):
        self.dispatcher, self.max_body = dispatcher, max_body
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a stale socket from a previous run
        # Root-only from the first instant: no window where the socket exists with a laxer mode.
        old_umask = os.umask(0o177)
        try:
            super().__init__(path, PluginRequestHandler)
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)

    def server_close(self) -> None:
        path = self.server_address
        super().server_close()
        if isinstance(path, str):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


class TCPPluginServer(_PluginServerMixin, socketserver.TCPServer):
    allow_reuse_address = True

    def __init__(self, host: str, port: int, dispatcher: Dispatcher, max_body: int,
                 ssl_context: ssl.SSLContext | None = None):
        self.dispatcher, self.max_body = dispatcher, max_body
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), PluginRequestHandler)
        self._ssl = ssl_context

    def finish_request(self, request: Any, client_address: Any) -> None:
        """TLS handshake here, in the connection's own thread and with a deadline, not in accept(): a client that
        connects and never speaks TLS would otherwise hold up every other connection."""
        if self._ssl is None:
            return super().finish_request(request, client_address)
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self._ssl.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            LOG.info("TLS handshake with %s failed: %s", client_address, exc)
            return None
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


def tls_context(cert: str, key: str, ca: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if ca:
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def parse_tcp_uri(uri: str) -> tuple[str, int]:
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https", "tcp") or not parsed.hostname or not parsed.port:
        raise ValueError(f"kuryr_uri {uri!r} is not of the form http://HOST:PORT")
    return parsed.hostname, parsed.port


def serve_forever(servers: list[socketserver.BaseServer], stop: threading.Event) -> None:
    threads = [threading.Thread(target=s.serve_forever, name=f"listener-{i}", daemon=True)
               for i, s in enumerate(servers)]
    for t in threads:
        t.start()
    try:
        stop.wait()
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
