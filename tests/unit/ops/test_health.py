"""``courier health``: Plugin.Activate on the plugin socket, what a container healthcheck runs."""

from __future__ import annotations

import http.server
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from courier import cli
from courier.ops import health


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(path: Path, status: int, body: bytes) -> _Server:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = _Server(str(path), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "kuryr.sock"


def test_healthy_when_the_plugin_answers_as_a_network_driver(sock: Path, capsys: pytest.CaptureFixture[str]):
    srv = serve(sock, 200, b'{"Implements": ["NetworkDriver", "IpamDriver"]}')
    try:
        assert cli.main(["health", "--socket", str(sock)]) == 0
    finally:
        srv.shutdown()
    assert "answers Plugin.Activate" in capsys.readouterr().out


@pytest.mark.parametrize(("status", "body", "why"), [
    (500, b"{}", "HTTP 500"), (200, b"not json", "answered"), (200, b'{"Implements": ["IpamDriver"]}', "not Network")])
def test_unhealthy_replies(sock: Path, status: int, body: bytes, why: str):
    srv = serve(sock, status, body)
    try:
        assert why in (health.activate(str(sock)) or "")
    finally:
        srv.shutdown()


def test_unhealthy_without_a_socket_and_the_path_comes_from_kuryr_conf(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]):
    conf = tmp_path / "kuryr.conf"
    conf.write_text(f"[courier]\nplugin_dir = {tmp_path}\ndriver_name = nobody\n")
    assert cli.main(["health", "--config-file", str(conf), "--json"]) == 1
    assert f'"socket": "{tmp_path}/nobody.sock"' in capsys.readouterr().out
