"""Security (issue 5.5): who can talk to Courier, and what Courier lets out.

- the plugin socket is root-only (0600, owner root), and refuses other users;
- no TCP listener unless ``[DEFAULT] kuryr_uri`` is set; then TLS with client certificates (made here with the
  ``openssl`` CLI): no certificate, no answer; and a real dockerd uses it through a ``/etc/docker/plugins``
  spec file with ``TLSConfig``;
- Keystone credentials and tokens appear in no log line (even with ``--debug``), no error Docker shows and no
  EndpointOperInfo, with ``auth_type = password`` against a small fake Keystone whose catalog points at the
  real Neutron;
- the process needs no capability but CAP_NET_ADMIN (veth, ethtool): it runs a container lifecycle with every
  other capability dropped from its bounding set.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PLUGIN_DIR
from tests.e2e.reliability.conftest import Docker, RelCourier, no_leftovers, unique
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.e2e

SPEC_DIR = Path("/etc/docker/plugins")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listeners(pid: int) -> list[str]:
    """Listening TCP and UDP sockets of process ``pid`` (ss -ltunp)."""
    out = subprocess.run(["ss", "-ltunpH"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if f"pid={pid}," in line]


@pytest.fixture
def plain(recording_proxy: FaultProxy, tmp_path: Path) -> Iterator[RelCourier]:
    server = RelCourier(tmp_path, unique("rels"), endpoint=recording_proxy.url)
    server.start()
    yield server
    server.stop()


def test_plugin_socket_is_root_only_and_nothing_listens_on_tcp(plain: RelCourier) -> None:
    st = os.stat(plain.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert (st.st_uid, st.st_gid) == (0, 0)
    probe = ("import socket,sys; s=socket.socket(socket.AF_UNIX); "
             "sys.exit(0 if s.connect_ex(sys.argv[1]) == 0 else 13)")
    as_nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                sys.executable, "-c", probe, plain.socket], capture_output=True, timeout=30)
    assert as_nobody.returncode == 13, "a non-root user could connect to the plugin socket"
    assert _listeners(plain.pid) == [], "Courier listens on the network without kuryr_uri"


# --- TLS with client certificates ----------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with the openssl CLI."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=courier-test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=courier-test-{who}",
                 "-keyout", f"{who}.key", "-out", f"{who}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", f"{who}.ext", "-out", f"{who}.pem", cwd=d)
    return {name: d / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


@pytest.fixture
def tls(recording_proxy: FaultProxy, tmp_path: Path, pki: dict[str, Path]) -> Iterator[tuple[RelCourier, int]]:
    port = _free_port()
    private_dir = tmp_path / "plugins"  # keep the unix socket out of Docker's sight: it must use TLS
    extra = (f"plugin_dir = {private_dir}\n[DEFAULT]\nkuryr_uri = https://127.0.0.1:{port}\nenable_ssl = true\n"
             f"ssl_cert_file = {pki['server.pem']}\nssl_key_file = {pki['server.key']}\n"
             f"ssl_ca_file = {pki['ca.pem']}\n")
    server = RelCourier(tmp_path, unique("relt"), endpoint=recording_proxy.url, extra=extra)
    server.socket = str(private_dir / f"{server.driver_name}.sock")
    server.start()
    yield server, port
    server.stop()


def _tls_call(port: int, ctx: ssl.SSLContext, method: str = "Plugin.Activate") -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request("POST", f"/{method}", body="{}")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_tcp_listener_only_with_tls_client_certificates(tls: tuple[RelCourier, int], pki: dict[str, Path]) -> None:
    server, port = tls
    listening = _listeners(server.pid)
    assert len(listening) == 1 and f"127.0.0.1:{port}" in listening[0], listening

    without_cert = ssl.create_default_context(cafile=str(pki["ca.pem"]))
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
        _tls_call(port, without_cert)
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # no TLS at all
        conn.request("POST", "/Plugin.Activate", body="{}")
        conn.getresponse().read()

    # a client that connects and never speaks TLS must not hold up the others
    idle = socket.create_connection(("127.0.0.1", port))
    try:
        with_cert = ssl.create_default_context(cafile=str(pki["ca.pem"]))
        with_cert.load_cert_chain(str(pki["client.pem"]), str(pki["client.key"]))
        started = time.monotonic()
        assert _tls_call(port, with_cert) == (200, {"Implements": ["NetworkDriver", "IpamDriver"]})
        assert time.monotonic() - started < 5
    finally:
        idle.close()


def test_dockerd_uses_the_tls_listener_through_a_spec_file(tls: tuple[RelCourier, int], pki: dict[str, Path],
                                                           recording_proxy: FaultProxy) -> None:
    server, port = tls
    spec = SPEC_DIR / f"{server.driver_name}.json"
    SPEC_DIR.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps({"Name": server.driver_name, "Addr": f"https://127.0.0.1:{port}",
                                "TLSConfig": {"InsecureSkipVerify": False, "CAFile": str(pki["ca.pem"]),
                                              "CertFile": str(pki["client.pem"]),
                                              "KeyFile": str(pki["client.key"])}}))
    dk = Docker(server.driver_name)
    try:
        net = dk.network("--subnet", "10.246.0.0/24").name
        a, b = dk.run(net).name, dk.run(net).name
        assert dk.ping(a, dk.ip(b, net))
    finally:
        dk.cleanup()
        spec.unlink()
    assert not Path(PLUGIN_DIR, f"{server.driver_name}.sock").exists(), "Docker could have used a unix socket"
    assert "(TLS)" in server.log_text()
    left = no_leftovers(recording_proxy)
    assert not left, f"left behind: {left}"


# --- Keystone credentials ------------------------------------------------------------------------------------


class FakeKeystone:
    """Identity v3 on 127.0.0.1, just enough for keystoneauth's password plugin: version discovery and
    POST /v3/auth/tokens, answering one token and a catalog whose network endpoint is ``neutron_url``."""

    def __init__(self, neutron_url: str, username: str, password: str):
        self.token = "tok-" + uuid.uuid4().hex
        self.issued = 0
        self.refused = 0
        keystone = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                version = {"id": "v3.14", "status": "stable", "updated": "2020-01-01T00:00:00Z",
                           "links": [{"rel": "self", "href": f"{keystone.url}/v3/"}],
                           "media-types": [{"base": "application/json",
                                            "type": "application/vnd.openstack.identity-v3+json"}]}
                if self.path.rstrip("/") == "/v3":
                    self._json(200, {"version": version})
                else:
                    self._json(300, {"versions": {"values": [version]}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                user = body["auth"]["identity"]["password"]["user"]
                if user.get("name") != username or user.get("password") != password:
                    keystone.refused += 1
                    return self._json(401, {"error": {"code": 401, "title": "Unauthorized",
                                                      "message": "The request you have made requires "
                                                                 "authentication."}})
                keystone.issued += 1
                domain = {"id": "default", "name": "Default"}
                endpoints = [{"id": f"e-{i}", "interface": i, "region": "RegionOne", "region_id": "RegionOne",
                              "url": neutron_url} for i in ("public", "internal", "admin")]
                self._json(201, {"token": {
                    "methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
                    "issued_at": "2026-01-01T00:00:00.000000Z",
                    "user": {"id": "u-courier", "name": username, "domain": domain, "password_expires_at": None},
                    "project": {"id": "p-service", "name": "service", "domain": domain},
                    "roles": [{"id": "r-admin", "name": "admin"}],
                    "catalog": [{"type": "network", "name": "neutron", "id": "s-neutron", "endpoints": endpoints}],
                }}, {"X-Subject-Token": keystone.token})

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _password_conf(keystone: FakeKeystone, username: str, password: str) -> str:
    return ("[neutron]\nauth_type = password\n"
            f"auth_url = {keystone.url}/v3\nusername = {username}\npassword = {password}\n"
            "project_name = service\nuser_domain_name = Default\nproject_domain_name = Default\n"
            "region_name = RegionOne\n")


def _keystone_courier(tmp_path: Path, keystone: FakeKeystone, username: str, password: str) -> RelCourier:
    server = RelCourier(tmp_path, unique("relp"), debug=True)
    text = server.config.read_text().replace("[neutron]\nauth_type = none\n", _password_conf(
        keystone, username, password))
    server.config.write_text("\n".join(line for line in text.splitlines() if not line.startswith("endpoint =")))
    return server


def test_keystone_credentials_and_tokens_never_leak(recording_proxy: FaultProxy, tmp_path: Path) -> None:
    username, password = "courier-user", "pw-" + uuid.uuid4().hex
    keystone = FakeKeystone(recording_proxy.url, username, password)
    (tmp_path / "good").mkdir()
    server = _keystone_courier(tmp_path / "good", keystone, username, password)
    wrong: RelCourier | None = None
    outputs: list[str] = []
    dk = Docker(server.driver_name)
    try:
        server.start()
        net_result = dk.network("--subnet", "10.246.1.0/24")
        net = net_result.name  # type: ignore[attr-defined]
        container = dk.run(net).name
        outputs += [net_result.stdout, net_result.stderr]
        outputs.append(dk("inspect", container).stdout)
        outputs.append(dk("network", "inspect", net).stdout)
        network_id = dk("network", "inspect", "-f", "{{.Id}}", net).stdout.strip()
        endpoint_id = dk.endpoint_id(container, net)
        status, info = server.call("NetworkDriver.EndpointOperInfo",
                                   json.dumps({"NetworkID": network_id, "EndpointID": endpoint_id}))
        assert status == 200 and "port_id" in info, info
        outputs.append(info)
        # errors Docker shows: a bad request, and Neutron failing
        bad = dk.network("--subnet", "10.246.2.0/24", "-o", "neutron.net.uuid=00000000-0000-0000-0000-00000000"
                         "0000", check=False)
        assert bad.returncode != 0
        outputs.append(bad.stderr)
        recording_proxy.set("5xx")
        failed = dk.run(net, check=False)
        recording_proxy.passing()
        assert failed.returncode != 0 and "HTTP 503" in failed.stderr
        outputs.append(failed.stderr)
        # and a Courier with a wrong password: the error says so, without the password
        (tmp_path / "wrong").mkdir()
        wrong = _keystone_courier(tmp_path / "wrong", keystone, username, "not-" + password)
        wrong.start()
        refused = Docker(wrong.driver_name).network("--subnet", "10.246.3.0/24", check=False)
        assert refused.returncode != 0, "Keystone refused the password, yet the network was created"
        assert "Keystone refused Courier's credentials" in refused.stderr, refused.stderr
        outputs.append(refused.stderr)
    finally:
        recording_proxy.passing()
        dk.cleanup()
        server.stop()
        if wrong is not None:
            wrong.stop()
        keystone.stop()
    assert keystone.issued >= 1 and keystone.refused >= 1
    assert keystone.token in recording_proxy.auth_tokens, "Neutron was not called with the Keystone token"
    logs = server.log_text() + (wrong.log_text() if wrong else "")
    assert "DEBUG" in logs, "the logs were not at debug level: the check would prove little"
    for secret in (password, keystone.token):
        assert secret not in logs, "a Keystone secret is in Courier's log"
        for text in outputs:
            assert secret not in text, f"a Keystone secret reached Docker: {text[:300]}"
    left = no_leftovers(recording_proxy)
    assert not left, f"left behind: {left}"


# --- capabilities ------------------------------------------------------------------------------------------------

CAP_NET_ADMIN = 12


def _bounding_names() -> list[str]:
    out = subprocess.run(["capsh", "--print"], capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("Bounding set ="))
    return [c for c in line.split("=", 1)[1].split(",") if c]


def test_runs_with_cap_net_admin_only(recording_proxy: FaultProxy, tmp_path: Path) -> None:
    drop = [c for c in _bounding_names() if c != "cap_net_admin"]
    wrapper = ["capsh", "--drop=" + ",".join(drop), "--", "-c", 'exec "$0" "$@"']
    server = RelCourier(tmp_path, unique("relcap"), endpoint=recording_proxy.url, wrapper=wrapper)
    dk = Docker(server.driver_name)
    try:
        server.start()
        status = Path(f"/proc/{server.pid}/status").read_text()
        caps = {k: int(v, 16) for k, v in (line.split(":\t") for line in status.splitlines()
                                             if line.startswith(("CapEff", "CapPrm", "CapBnd")))}
        assert caps == {"CapPrm": 1 << CAP_NET_ADMIN, "CapEff": 1 << CAP_NET_ADMIN,
                        "CapBnd": 1 << CAP_NET_ADMIN}, caps
        assert "courier.cli" in Path(f"/proc/{server.pid}/cmdline").read_text()
        net = dk.network("--subnet", "10.246.4.0/24").name
        a, b = dk.run(net).name, dk.run(net).name
        assert dk.ping(a, dk.ip(b, net))
        dk.rm(a)
    finally:
        dk.cleanup()
        server.stop()
    left = no_leftovers(recording_proxy)
    assert not left, f"left behind: {left}"
