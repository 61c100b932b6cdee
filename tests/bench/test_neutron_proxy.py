"""The benchmark's counting Neutron proxy (bench/neutron_proxy.py): forwarding, counting, id patterns."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from neutron_proxy import CountingProxy, pattern, resources_in


class _FakeNeutron(http.server.BaseHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._reply(200, {"ports": [], "echo": self.path})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._reply(201, {"port": {"id": "11111111-2222-3333-4444-555555555555", "device_id": "",
                                   "name": body["port"]["name"]}})

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(200, {"port": {"id": "11111111-2222-3333-4444-555555555555", "device_id": "ab" * 32}})


@pytest.fixture
def proxy():
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeNeutron)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    p = CountingProxy(f"http://127.0.0.1:{upstream.server_address[1]}").start()
    yield p
    p.stop()
    upstream.shutdown()
    upstream.server_close()


def _call(url: str, method: str = "GET", body: dict | None = None) -> dict:
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_forwards_and_records_per_phase(proxy: CountingProxy) -> None:
    proxy.set_phase("run-0")
    assert _call(proxy.url + "/v2.0/ports?tags=a,b")["echo"] == "/v2.0/ports?tags=a,b"
    assert _call(proxy.url + "/v2.0/ports", "POST", {"port": {"name": "x"}})["port"]["name"] == "x"
    proxy.set_phase("rm-0")
    _call(proxy.url + "/v2.0/ports/11111111-2222-3333-4444-555555555555", "PUT", {"port": {}})
    assert proxy.wait_quiet(0.05, 2)
    assert [(c.method, c.status) for c in proxy.calls_in("run-0")] == [("GET", 200), ("POST", 201)]
    assert [c.method for c in proxy.calls_in("rm-0")] == ["PUT"]
    assert all(c.latency >= 0 for c in proxy.calls)
    # what was created through it, and the endpoint ids that name the veths
    assert proxy.created == [("ports", "11111111-2222-3333-4444-555555555555")]
    assert proxy.device_ids == {"ab" * 32}


def test_neutron_down_is_a_502_and_recorded() -> None:
    p = CountingProxy("http://127.0.0.1:9", timeout=2).start()   # nothing listens on port 9
    try:
        with pytest.raises(urllib.error.HTTPError) as exc:
            _call(p.url + "/v2.0/networks")
        assert exc.value.code == 502
        assert [c.status for c in p.calls] == [502]
    finally:
        p.stop()


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/v2.0/ports?tags=kuryr.net.uuid.lh:" + "a" * 32 + ",kuryr.net.uuid.uh:" + "b" * 32,
     "GET /v2.0/ports?tags"),
    ("PUT", "/v2.0/ports/11111111-2222-3333-4444-555555555555/tags/kuryr.net.uuid.lh:" + "0f" * 16,
     "PUT /v2.0/ports/{id}/tags/kuryr.net.uuid.lh:{hex}"),
    ("GET", "/v2.0/ports?fixed_ips=subnet_id%3Dx&fixed_ips=ip_address%3D10.0.0.2", "GET /v2.0/ports?fixed_ipsx2"),
    ("DELETE", "/v2.0/subnetpools/11111111-2222-3333-4444-555555555555", "DELETE /v2.0/subnetpools/{id}"),
    ("PUT", "/v2.0/ports/11111111-2222-3333-4444-555555555555/tags/compute:kuryr",
     "PUT /v2.0/ports/{id}/tags/compute:kuryr"),
])
def test_pattern_hides_ids(method: str, path: str, expected: str) -> None:
    assert pattern(method, path) == expected


def test_resources_in_bulk_and_single() -> None:
    body = json.dumps({"subnets": [{"id": "s1"}, {"id": "s2"}]}).encode()
    assert [(c, r["id"]) for c, r in resources_in(body)] == [("subnets", "s1"), ("subnets", "s2")]
    assert resources_in(b"not json") == []
    assert resources_in(json.dumps({"security_group": {"id": "g"}}).encode())[0][0] == "security-groups"
