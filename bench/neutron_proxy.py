"""Counting HTTP reverse proxy for the Neutron API (Python stdlib only).

One listener per plugin on 127.0.0.1; every request is forwarded to the real Neutron endpoint and recorded
(phase, method, path, status, latency). ``phase`` is whatever label the benchmark set when the request
arrived, so calls are attributed to the workload step (network create, container lifecycle, ...) that
caused them.

Usable as a library (``CountingProxy``, what bench/run does) or standalone for ad-hoc counting:

    python3 bench/neutron_proxy.py --listen 127.0.0.1:9797 --upstream http://127.0.0.1:9696 --log calls.jsonl
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import re
import sys
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass

# Headers that describe one hop, not the message: never forwarded.
HOP_HEADERS = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "proxy-connection"}

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
HEX_RE = re.compile(r"(?<![0-9a-zA-Z])[0-9a-f]{32,64}(?![0-9a-zA-Z])")
IPV4_RE = re.compile(r"\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?")
MAC_RE = re.compile(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}")


@dataclass
class Call:
    phase: str
    method: str
    path: str          # path + query as sent by the plugin
    status: int
    latency: float     # seconds, proxy -> Neutron -> proxy (body fully read)
    start: float       # time.monotonic() when the request arrived


def pattern(method: str, path: str) -> str:
    """``GET /v2.0/ports?tags=kuryr.net.uuid.lh:ab12..`` -> ``GET /v2.0/ports?tags`` (ids, values hidden).

    Query values are ids, tags or addresses: only which filters were used is kept (``keyxN`` when repeated).
    """
    parts = urllib.parse.urlsplit(path)
    p = UUID_RE.sub("{id}", parts.path)
    p = HEX_RE.sub("{hex}", p)
    if parts.query:
        counts: dict[str, int] = {}
        for key, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            counts[key] = counts.get(key, 0) + 1
        p += "?" + "&".join(k if n == 1 else f"{k}x{n}" for k, n in sorted(counts.items()))
    return f"{method} {p}"


# JSON body key of a created resource -> its collection in the URL
COLLECTIONS = {"network": "networks", "networks": "networks", "subnet": "subnets", "subnets": "subnets",
               "subnetpool": "subnetpools", "subnetpools": "subnetpools", "port": "ports", "ports": "ports",
               "security_group": "security-groups", "security_groups": "security-groups",
               "security_group_rule": "security-group-rules", "security_group_rules": "security-group-rules",
               "trunk": "trunks", "trunks": "trunks"}


def resources_in(body: bytes) -> list[tuple[str, dict]]:
    """(collection, resource) for every resource in a Neutron reply body."""
    try:
        obj = json.loads(body)
    except ValueError:
        return []
    out: list[tuple[str, dict]] = []
    if isinstance(obj, dict):
        for key, val in obj.items():
            coll = COLLECTIONS.get(key)
            if coll is None:
                continue
            for item in val if isinstance(val, list) else [val]:
                if isinstance(item, dict) and "id" in item:
                    out.append((coll, item))
    return out


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # keep-alive towards the plugin
    server: _Server

    def log_message(self, fmt: str, *args: object) -> None:  # quiet
        pass

    def _proxy(self) -> None:
        arrived = time.monotonic()
        phase = self.server.owner.phase
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS and k.lower() != "host"}
        headers["Host"] = self.server.owner.upstream_netloc
        status, reply_headers, data = 502, [], b""
        self.server.owner._inflight_add(1)
        t0 = time.monotonic()
        try:
            conn = http.client.HTTPConnection(self.server.owner.upstream_host, self.server.owner.upstream_port,
                                              timeout=self.server.owner.timeout)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status, reply_headers = resp.status, resp.getheaders()
            finally:
                conn.close()
        except Exception as exc:  # Neutron down or too slow: tell the plugin, and record it
            data = json.dumps({"NeutronError": {"type": "ProxyError", "message": str(exc), "detail": ""}}).encode()
            reply_headers = [("Content-Type", "application/json")]
        latency = time.monotonic() - t0
        if self.command in ("POST", "PUT") and 200 <= status < 300:
            self.server.owner._remember(self.command, resources_in(data))
        self.server.owner._record(Call(phase, self.command, self.path, status, latency, arrived))
        self.server.owner._inflight_add(-1)
        try:
            self.send_response(status)
            for k, v in reply_headers:
                if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):   # the plugin gave up waiting (its own timeout)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _proxy


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: CountingProxy


class CountingProxy:
    """A reverse proxy in a background thread; ``calls`` is the list of recorded requests."""

    def __init__(self, upstream: str, listen_host: str = "127.0.0.1", listen_port: int = 0,
                 timeout: float = 60.0, log_path: str | None = None):
        u = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = u.hostname or "127.0.0.1", u.port or 80
        self.upstream_netloc = u.netloc
        self.timeout = timeout
        self.phase = "startup"
        self.calls: list[Call] = []
        # what this plugin made through the proxy: (collection, id), in creation order; and the device_id
        # (Docker endpoint id) seen on its ports, which names its veths
        self.created: list[tuple[str, str]] = []
        self.device_ids: set[str] = set()
        self.inflight = 0
        self.last_activity = time.monotonic()
        self._lock = threading.Lock()
        self._log = open(log_path, "a") if log_path else None  # noqa: SIM115
        self._server = _Server((listen_host, listen_port), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="neutron-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> CountingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._log:
            self._log.close()

    def _inflight_add(self, n: int) -> None:
        with self._lock:
            self.inflight += n
            self.last_activity = time.monotonic()

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            if self._log:
                self._log.write(json.dumps(asdict(call)) + "\n")
                self._log.flush()

    def _remember(self, method: str, resources: list[tuple[str, dict]]) -> None:
        with self._lock:
            for coll, res in resources:
                if method == "POST" and (coll, res["id"]) not in self.created:
                    self.created.append((coll, res["id"]))
                if coll == "ports" and res.get("device_id"):
                    self.device_ids.add(str(res["device_id"]))

    def set_phase(self, phase: str) -> None:
        self.phase = phase

    def wait_quiet(self, quiet: float = 0.3, limit: float = 5.0) -> bool:
        """Wait until nothing is in flight and nothing arrived for ``quiet`` s (at most ``limit`` s)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self._lock:
                if self.inflight == 0 and time.monotonic() - self.last_activity >= quiet:
                    return True
            time.sleep(0.05)
        return False

    def calls_in(self, phase: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.phase == phase]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--upstream", default="http://127.0.0.1:9696")
    ap.add_argument("--log", help="append one JSON line per request here")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    proxy = CountingProxy(args.upstream, host or "127.0.0.1", int(port), log_path=args.log).start()
    print(f"proxying {proxy.url} -> {args.upstream}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.stop()
        print(f"{len(proxy.calls)} calls", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
