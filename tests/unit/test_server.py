"""HTTP/1.1 over a unix socket, as dockerd talks to the plugin (http.client over AF_UNIX, no Content-Type)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from courier import server
from courier.api.routes import Dispatcher
from tests.fakes import FakeNeutron
from tests.testkit import UnixHTTPConnection
from tests.unit.dockerd import Dockerd

MAX_BODY = 1024
ACCEPT = "application/vnd.docker.plugins.v1.2+json"


class Running:
    def __init__(self, path: str, srv: server.UnixPluginServer, docker: Dockerd):
        self.path, self.server, self.docker = path, srv, docker

    def connect(self) -> UnixHTTPConnection:
        return UnixHTTPConnection(self.path, timeout=5.0)

    def post(self, conn: http.client.HTTPConnection, method: str, payload: Any = None
             ) -> tuple[http.client.HTTPResponse, dict[str, Any]]:
        body = b"" if payload is None else json.dumps(payload).encode() + b"\n"
        conn.request("POST", f"/{method}", body=body, headers={"Accept": ACCEPT})
        resp = conn.getresponse()
        return resp, json.loads(resp.read())

    def still_serving(self) -> None:
        conn = self.connect()
        try:
            resp, reply = self.post(conn, "Plugin.Activate")
            assert (resp.status, reply) == (200, {"Implements": ["NetworkDriver", "IpamDriver"]})
        finally:
            conn.close()

    def raw(self, data: bytes, *, shut_write: bool = True, timeout: float = 5.0) -> bytes:
        """Send raw bytes; return everything the server sends until it closes the connection."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(self.path)
            sock.sendall(data)
            if shut_write:
                sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)


def start(path: str, dispatcher: Dispatcher) -> tuple[server.UnixPluginServer, threading.Thread]:
    srv = server.UnixPluginServer(path, dispatcher, MAX_BODY)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return srv, thread


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    path = str(tmp_path / "plugins" / "kuryr.sock")
    docker = Dockerd(FakeNeutron())
    srv, thread = start(path, docker.dispatcher)
    yield Running(path, srv, docker)
    srv.shutdown()
    srv.server_close()
    thread.join(5)
    docker.close()


def test_socket_is_owner_only(running: Running) -> None:
    mode = os.stat(running.path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_umask_is_restored(tmp_path: Path) -> None:
    before = os.umask(0o022)
    os.umask(before)
    srv = server.UnixPluginServer(str(tmp_path / "a.sock"), Dockerd(FakeNeutron()).dispatcher, MAX_BODY)
    try:
        assert os.umask(before) == before
    finally:
        srv.server_close()


def test_stale_socket_is_replaced_and_removed_on_close(tmp_path: Path) -> None:
    path = tmp_path / "kuryr.sock"
    path.write_text("left over from a crash")
    srv, thread = start(str(path), Dockerd(FakeNeutron()).dispatcher)
    try:
        assert stat.S_ISSOCK(path.stat().st_mode)
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)
    assert not path.exists()


def test_docker_request_without_content_type(running: Running) -> None:
    conn = running.connect()
    conn.putrequest("POST", "/IpamDriver.RequestPool", skip_accept_encoding=True)
    body = b'{"AddressSpace":"no_address_space","Pool":"10.99.0.0/24","SubPool":"","Options":{},"V6":false}\n'
    conn.putheader("Accept", ACCEPT)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == server.CONTENT_TYPE
    assert resp.getheader("Content-Length") == str(len(data))
    assert data.endswith(b"\n")
    assert json.loads(data)["Pool"] == "10.99.0.0/24"


def test_keep_alive_serves_two_requests_on_one_connection(running: Running) -> None:
    conn = running.connect()
    try:
        resp, reply = running.post(conn, "Plugin.Activate")
        assert resp.status == 200 and not resp.will_close
        first_socket = conn.sock
        resp, reply = running.post(conn, "IpamDriver.GetCapabilities")
        assert resp.status == 200
        assert reply == {"RequiresMACAddress": True, "RequiresRequestReplay": False}
        assert conn.sock is first_socket
    finally:
        conn.close()


def test_error_replies_keep_the_connection(running: Running) -> None:
    conn = running.connect()
    try:
        resp, reply = running.post(conn, "NetworkDriver.Nonsense", {})
        assert resp.status == 404 and set(reply) == {"Err", "Error"}
        sock = conn.sock
        resp, reply = running.post(conn, "NetworkDriver.DeleteNetwork", {"NetworkID": "x"})
        assert resp.status == 400 and "NetworkID" in reply["Err"]
        resp, _ = running.post(conn, "Plugin.Activate")
        assert resp.status == 200 and conn.sock is sock
    finally:
        conn.close()


def test_idle_keep_alive_connection_does_not_block_others(running: Running) -> None:
    idle = running.connect()
    try:
        resp, _ = running.post(idle, "Plugin.Activate")
        assert resp.status == 200
        running.still_serving()  # a second connection while the first one idles
        resp, _ = running.post(idle, "Plugin.Activate")
        assert resp.status == 200
    finally:
        idle.close()


def test_body_over_max_size_is_413(running: Running) -> None:
    """Refused from the headers alone, without reading the body; then the connection is closed."""
    head = f"POST /NetworkDriver.DeleteNetwork HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n"
    answer = running.raw(head.encode(), shut_write=False)  # returns once the server closes
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413 ")
    reply = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert reply["Err"] == reply["Error"] == f"request body over {MAX_BODY} bytes"
    running.still_serving()


def test_body_over_max_size_sent_whole_is_413(running: Running) -> None:
    conn = running.connect()
    try:
        body = b'{"NetworkID": "' + b"a" * (MAX_BODY * 2) + b'"}'
        conn.request("POST", "/NetworkDriver.DeleteNetwork", body=body)
        resp = conn.getresponse()
        assert resp.status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close before the whole body is sent: also a refusal
    finally:
        conn.close()
    running.still_serving()


def test_body_of_exactly_max_size_is_read(running: Running) -> None:
    conn = running.connect()
    try:
        body = b'{"NetworkID": "' + b"a" * (MAX_BODY - 20) + b'"}'
        body += b" " * (MAX_BODY - len(body))
        conn.request("POST", "/NetworkDriver.DeleteNetwork", body=body)
        resp = conn.getresponse()
        reply = json.loads(resp.read())
        assert resp.status == 400 and "NetworkID: String should match pattern" in reply["Err"]
    finally:
        conn.close()


def test_truncated_body_closes_the_connection(running: Running) -> None:
    head = (b"POST /IpamDriver.RequestPool HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n")
    assert running.raw(head + b'{"Pool": "10') == b""
    running.still_serving()


def test_stalled_body_times_out(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "BODY_TIMEOUT", 0.2)
    head = (b"POST /IpamDriver.RequestPool HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n")
    started = time.monotonic()
    assert running.raw(head + b'{"Pool": "10', shut_write=False) == b""
    assert time.monotonic() - started < 4
    running.still_serving()


def test_client_gone_before_the_body(running: Running) -> None:
    assert running.raw(b"POST /Plugin.Activate HTTP/1.1\r\nContent-Length: 10\r\n\r\n") == b""
    running.still_serving()


def test_client_gone_before_the_end_of_the_headers(running: Running) -> None:
    assert running.raw(b"POST /IpamDriver.RequestPool HTTP/1.1\r\nContent-Length: 50\r\n") == b""
    running.still_serving()


@pytest.mark.parametrize(("headers", "status"), [
    (b"Content-Length: abc\r\n", 400),
    (b"Content-Length: -5\r\n", 400),
    (b"Transfer-Encoding: chunked\r\n", 411),
])
def test_bad_framing_is_refused(running: Running, headers: bytes, status: int) -> None:
    answer = running.raw(b"POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert b'"Err"' in answer and b'"Error"' in answer
    running.still_serving()


def test_get_is_405(running: Running) -> None:
    conn = running.connect()
    try:
        conn.request("GET", "/Plugin.Activate")
        resp = conn.getresponse()
        reply = json.loads(resp.read())
        assert resp.status == 405 and set(reply) == {"Err", "Error"}
    finally:
        conn.close()


@pytest.mark.parametrize("data", [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
                                  b"POST /Plugin.Act", b"PUT /Plugin.Activate HTTP/1.1\r\n\r\n", b"\r\n" * 3])
def test_garbage_does_not_stop_the_server(running: Running, data: bytes) -> None:
    running.raw(data)  # answered by http.server's own error page, or not at all
    running.still_serving()


def test_a_crash_in_dispatch_drops_only_that_connection(tmp_path: Path) -> None:
    class Exploding(Dispatcher):
        def dispatch(self, method: str, body: bytes) -> tuple[int, dict[str, Any]]:
            if method == "Boom":
                raise RecursionError("deep")
            return super().dispatch(method, body)

    docker = Dockerd(FakeNeutron())
    path = str(tmp_path / "k.sock")
    srv, thread = start(path, Exploding(docker.dispatcher._routes))
    running = Running(path, srv, docker)
    try:
        assert running.raw(b"POST /Boom HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == b""
        running.still_serving()
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_a_whole_container_lifecycle_over_http(running: Running) -> None:
    """The sequences of network create, run, rm and network rm, over one keep-alive connection."""
    conn = running.connect()
    sent: list[tuple[str, Any, int]] = []

    class OverHttp(Dispatcher):
        def dispatch(self, method: str, body: bytes) -> tuple[int, dict[str, Any]]:
            conn.request("POST", f"/{method}", body=body, headers={"Accept": ACCEPT})
            resp = conn.getresponse()
            reply = json.loads(resp.read())
            sent.append((method, body, resp.status))
            return resp.status, reply

    docker = running.docker
    docker.dispatcher = OverHttp({})
    try:
        net = docker.network_create("10.99.0.0/24")
        c = docker.run(net)
        assert c.address == "10.99.0.2/24"
        docker.rm(c)
        docker.network_rm(net)
    finally:
        conn.close()
    assert len(sent) == 16 and all(status == 200 for _, _, status in sent)
    assert running.docker.neutron.snapshot()["networks"] == {}
