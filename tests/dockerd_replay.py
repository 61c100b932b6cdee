"""Plays dockerd 20.10 against a real ``courier serve`` over its unix socket: the handshake, network create/rm and
container setup/teardown, with the exact request shapes and order of ``tests/unit/dockerd.py`` and
``/work/shared/reference/docker-requests.sample.jsonl``.

- ``PluginClient`` is one plugin endpoint: ``POST /<Method>``, a JSON body ending in ``\\n``, no Content-Type,
  ``Accept: application/vnd.docker.plugins.v1.2+json``, a fresh connection per call (so any number of threads may
  share one client). With ``retry=True`` a call that fails at the transport level (no socket, connection refused,
  reset, closed before the reply) is sent again with the same body and dockerd's backoff (pkg/plugins: 1, 2, 4,
  8, 16 s, giving up once the next wait would pass 30 s); an HTTP error reply is never retried.
- ``Dockerd`` runs the sequences. It honours ``RequiresMACAddress`` as dockerd does: when true it makes a random
  ``02:42:..`` MAC per endpoint and sends it in RequestAddress ``Options`` and CreateEndpoint ``Interface``; when
  false neither carries a MAC and the container's MAC is what CreateEndpoint answers. A failed setup is rolled
  back as dockerd does (what succeeded is undone), then ``PluginCallError`` is raised.
- ``Sandbox``/``ping_once``: what Docker does with Join's ``SrcName`` (a network namespace of its own, the
  address, MAC, MTU and gateway routes), and one ``ping -c1 -W1`` between two of them, no retry.

No pytest at module level: bench/ imports this too.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import ipaddress
import json
import os
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from tests.testkit import UnixHTTPConnection

ACCEPT = "application/vnd.docker.plugins.v1.2+json"
GATEWAY_OPTIONS = {"RequestAddressType": "com.docker.network.gateway"}
MAC_OPTION = "com.docker.network.endpoint.macaddress"
ENDPOINT_OPTIONS: dict[str, Any] = {"com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": []}
NETNS_DIR = "/var/run/docker/netns"  # dockerd's default exec-root
RETRY_WINDOW = 30.0  # pkg/plugins defaultTimeOut
TRANSPORT_ERRORS = (OSError, http.client.HTTPException)
CREATING = ("IpamDriver.RequestPool", "NetworkDriver.CreateNetwork", "IpamDriver.RequestAddress",
            "NetworkDriver.CreateEndpoint", "NetworkDriver.Join")
TEARDOWN = ("NetworkDriver.RevokeExternalConnectivity", "NetworkDriver.Leave", "NetworkDriver.DeleteEndpoint",
            "IpamDriver.ReleaseAddress", "IpamDriver.ReleasePool", "NetworkDriver.DeleteNetwork")


def dockerd_backoff(retries: int) -> float:
    """pkg/plugins.backoff: 1 s doubled per retry, at most 30 s."""
    return float(min(1 << min(retries, 5), int(RETRY_WINDOW)))


def encode(payload: Any) -> bytes:
    """A body as Go's json.Encoder writes it: compact, with a trailing newline; ``None``: no body at all."""
    if payload is None:
        return b""
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


@dataclasses.dataclass
class Reply:
    method: str
    status: int  # 0: no HTTP answer at all (transport error, given up or not retried)
    body: Any
    text: str
    seconds: float
    retries: int = 0
    error: str = ""  # the last transport error, if any

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def message(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("Err") or self.body.get("Error") or self.text)
        return self.text

    def describe(self) -> str:
        what = f"HTTP {self.status}: {self.text.strip()[:500]}" if self.status else f"no answer ({self.error})"
        return f"{self.method} -> {what} after {self.seconds:.2f} s, {self.retries} retries"


class PluginCallError(Exception):
    def __init__(self, reply: Reply, payload: Any = None, step: str = ""):
        super().__init__(f"{step or reply.method} failed: {reply.describe()}")
        self.reply, self.payload, self.step = reply, payload, step


class PluginClient:
    """One plugin socket. Thread-safe: every call opens its own connection."""

    def __init__(self, socket_path: str, *, retry: bool = False, retry_window: float = RETRY_WINDOW,
                 timeout: float = 120.0, empty_body_on_retry: bool = False,
                 sleep: Callable[[float], None] = time.sleep):
        self.socket_path = socket_path
        self.retry, self.retry_window, self.timeout = retry, retry_window, timeout
        # dockerd 20.10 really re-sends an empty body (its io.Reader was consumed: moby/moby#39331); the fixed
        # client re-sends the same body, which is the default here.
        self.empty_body_on_retry = empty_body_on_retry
        self._sleep = sleep
        self._lock = threading.Lock()
        self.calls = 0
        self.retries = 0

    def _connection(self) -> http.client.HTTPConnection:
        """A fresh connection per call (bench/ talks TCP to kuryr-server through a subclass)."""
        return UnixHTTPConnection(self.socket_path, self.timeout)

    def _once(self, method: str, body: bytes) -> tuple[int, str]:
        conn = self._connection()
        try:
            conn.request("POST", f"/{method}", body=body, headers={"Accept": ACCEPT})
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def call(self, method: str, payload: Any = None, *, body: bytes | None = None,
             retry: bool | None = None) -> Reply:
        """Send ``payload`` (JSON-encoded) or the raw ``body``; never raises for a failed call."""
        data = encode(payload) if body is None else body
        retry = self.retry if retry is None else retry
        started = time.monotonic()
        retries = 0
        with self._lock:
            self.calls += 1
        while True:
            try:
                status, text = self._once(method, data)
                break
            except TimeoutError as exc:  # the plugin took the call and never answered: not a transport retry
                return Reply(method, 0, None, "", time.monotonic() - started, retries, f"timed out: {exc}")
            except TRANSPORT_ERRORS as exc:
                error = f"{type(exc).__name__}: {exc}"
                wait = dockerd_backoff(retries)
                if not retry or time.monotonic() - started + wait >= self.retry_window:
                    return Reply(method, 0, None, "", time.monotonic() - started, retries, error)
                retries += 1
                with self._lock:
                    self.retries += 1
                self._sleep(wait)
                if self.empty_body_on_retry:
                    data = b""
        try:
            parsed: Any = json.loads(text) if text.strip() else {}
        except ValueError:
            parsed = None
        return Reply(method, status, parsed, text, time.monotonic() - started, retries)


# --- what dockerd keeps -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Call:
    """One call of a sequence, as handed to ``Dockerd.caller``."""

    method: str
    payload: Any
    step: str  # the method plus what it is for, e.g. "IpamDriver.RequestAddress(gateway)"

    @property
    def body(self) -> bytes:
        return encode(self.payload)


@dataclasses.dataclass
class Capabilities:
    requires_mac: bool
    address_space: str
    scope: str
    raw: dict[str, Any]


@dataclasses.dataclass
class Pool:
    pool_id: str
    cidr: str  # what RequestPool answered
    gateway: str  # plain IP, as ReleaseAddress sends it
    v6: bool = False


@dataclasses.dataclass
class Network:
    network_id: str
    v4: list[Pool]
    v6: list[Pool]

    @property
    def pools(self) -> list[Pool]:
        return [*self.v4, *self.v6]


@dataclasses.dataclass
class Container:
    network: Network
    endpoint_id: str
    sandbox_key: str
    mac: str  # the container's MAC: the one sent, or the one CreateEndpoint answered
    sent_mac: str  # what went into RequestAddress/CreateEndpoint ("" when none)
    address: str = ""  # CIDR form, "" if none
    address6: str = ""
    src_name: str = ""
    gateway: str = ""
    gateway6: str = ""
    join: dict[str, Any] = dataclasses.field(default_factory=dict)
    oper_info: dict[str, Any] = dataclasses.field(default_factory=dict)
    setup_seconds: float = 0.0  # RequestAddress start to Join end
    teardown_seconds: float = 0.0  # RevokeExternalConnectivity start to the last ReleaseAddress end
    calls: list[tuple[str, float, int]] = dataclasses.field(default_factory=list)  # (step, seconds, retries)
    # how far setup got, for teardown and rollback
    has_endpoint: bool = False
    joined: bool = False

    @property
    def ips(self) -> list[str]:
        return [str(ipaddress.ip_interface(a).ip) for a in (self.address, self.address6) if a]


def random_mac(rng: random.Random) -> str:
    return "02:42:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(4))


def mac_option(mac: str) -> str:
    """CreateEndpoint Options' form of a user MAC: base64 of the 6 bytes (Go's []byte JSON)."""
    return base64.b64encode(bytes(int(b, 16) for b in mac.split(":"))).decode()


class Dockerd:
    """dockerd's side of one plugin that is both network and IPAM driver.

    ``caller`` (optional) sends each ``Call`` instead of the client, e.g. to kill the plugin in the middle of one
    (it must return the final ``Reply``). ``rng`` makes ids and MACs (default: fresh randomness, so that two
    runs never share a Docker id).
    """

    def __init__(self, client: PluginClient, *, rng: random.Random | None = None,
                 caller: Callable[[Call], Reply] | None = None):
        self.client = client
        self.rng = rng or random.Random(uuid.uuid4().int)
        self._rng_lock = threading.Lock()
        self.caller = caller
        self.caps: Capabilities | None = None
        # every network and container ever started through this object (also those whose setup failed)
        self.networks: list[Network] = []
        self.containers: list[Container] = []

    # --- ids and calls --------------------------------------------------------------------------------------

    def docker_id(self) -> str:
        with self._rng_lock:
            return f"{self.rng.getrandbits(256):064x}"

    def new_mac(self) -> str:
        with self._rng_lock:
            return random_mac(self.rng)

    def send(self, method: str, payload: Any, step: str = "") -> Reply:
        call = Call(method, payload, step or method)
        return self.caller(call) if self.caller else self.client.call(method, payload)

    def ok(self, method: str, payload: Any, step: str = "", calls: list[tuple[str, float, int]] | None = None
           ) -> dict[str, Any]:
        reply = self.send(method, payload, step)
        if calls is not None:
            calls.append((step or method, reply.seconds, reply.retries))
        if not reply.ok or not isinstance(reply.body, dict):
            raise PluginCallError(reply, payload, step or method)
        return reply.body

    # --- handshake --------------------------------------------------------------------------------------------

    def handshake(self) -> Capabilities:
        """First use of the plugin: Activate, both GetCapabilities, GetDefaultAddressSpaces (empty bodies)."""
        activate = self.ok("Plugin.Activate", None)
        implements = activate.get("Implements") or []
        if "NetworkDriver" not in implements or "IpamDriver" not in implements:
            raise AssertionError(f"Plugin.Activate: not a network and IPAM driver: {activate}")
        net = self.ok("NetworkDriver.GetCapabilities", None)
        ipam = self.ok("IpamDriver.GetCapabilities", None)
        spaces = self.ok("IpamDriver.GetDefaultAddressSpaces", None)
        self.caps = Capabilities(bool(ipam.get("RequiresMACAddress")), str(spaces["LocalDefaultAddressSpace"]),
                                 str(net.get("Scope", "")), {"network": net, "ipam": ipam, "spaces": spaces})
        return self.caps

    @property
    def requires_mac(self) -> bool:
        if self.caps is None:
            self.handshake()
        assert self.caps is not None
        return self.caps.requires_mac

    # --- networks ---------------------------------------------------------------------------------------------

    def _allocate_pool(self, cidr: str, v6: bool, gateway: str, options: dict[str, str] | None,
                       pools: list[Pool]) -> None:
        caps = self.caps or self.handshake()
        family = "v6" if v6 else "v4"
        reply = self.ok("IpamDriver.RequestPool",
                        {"AddressSpace": caps.address_space, "Pool": cidr, "SubPool": "",
                         "Options": options or {}, "V6": v6}, f"IpamDriver.RequestPool({family})")
        pool = Pool(str(reply["PoolID"]), str(reply["Pool"]), "", v6)
        pools.append(pool)  # from here on, a rollback releases it
        gw = self.ok("IpamDriver.RequestAddress", {"PoolID": pool.pool_id, "Address": gateway,
                                                   "Options": GATEWAY_OPTIONS},
                     f"IpamDriver.RequestAddress(gateway {family})")
        pool.gateway = str(ipaddress.ip_interface(gw["Address"]).ip)

    def network_create(self, subnet: str = "", *, subnet6: str | None = None, gateway: str = "",
                       options: dict[str, Any] | None = None, ipam_options: dict[str, str] | None = None,
                       network_id: str | None = None) -> Network:
        """``docker network create -d P --ipam-driver P [--subnet S] [--ipv6 --subnet S6] [-o k=v]``:
        RequestPool + gateway RequestAddress per family (v4 first), then CreateNetwork. ``subnet6=""`` asks for a
        v6 pool from the plugin's default."""
        v4: list[Pool] = []
        v6: list[Pool] = []
        net = Network(network_id or self.docker_id(), v4, v6)
        with self._rng_lock:
            self.networks.append(net)
        try:
            self._allocate_pool(subnet, False, gateway, ipam_options, v4)
            if subnet6 is not None:
                self._allocate_pool(subnet6, True, "", ipam_options, v6)
            self.ok("NetworkDriver.CreateNetwork", self.create_network_request(net, options))
        except PluginCallError as exc:
            self._release_pools(net, exc)
            raise
        return net

    def create_network_request(self, net: Network, options: dict[str, Any] | None = None) -> dict[str, Any]:
        space = (self.caps or self.handshake()).address_space

        def data(pool: Pool) -> dict[str, Any]:
            prefixlen = ipaddress.ip_network(pool.cidr).prefixlen
            return {"AddressSpace": space, "Gateway": f"{pool.gateway}/{prefixlen}", "Pool": pool.cidr}

        return {"NetworkID": net.network_id,
                "Options": {"com.docker.network.enable_ipv6": bool(net.v6),
                            "com.docker.network.generic": options or {}},
                "IPv4Data": [data(p) for p in net.v4], "IPv6Data": [data(p) for p in net.v6]}

    def _release_pools(self, net: Network, exc: PluginCallError) -> None:
        """dockerd's rollback of a failed ``network create``: each pool's gateway, then the pool."""
        for pool in net.pools:
            with contextlib.suppress(PluginCallError):
                if pool.gateway:
                    self.ok("IpamDriver.ReleaseAddress", {"PoolID": pool.pool_id, "Address": pool.gateway},
                            "IpamDriver.ReleaseAddress(gateway)")
                self.ok("IpamDriver.ReleasePool", {"PoolID": pool.pool_id})

    def network_rm(self, net: Network) -> None:
        """``docker network rm``: per pool (v4 first) ReleaseAddress of the gateway and ReleasePool, then
        DeleteNetwork last (the order dockerd 20.10 sends; see libnetwork-protocol.md)."""
        for pool in net.pools:
            self.ok("IpamDriver.ReleaseAddress", {"PoolID": pool.pool_id, "Address": pool.gateway},
                    f"IpamDriver.ReleaseAddress(gateway {'v6' if pool.v6 else 'v4'})")
            self.ok("IpamDriver.ReleasePool", {"PoolID": pool.pool_id})
        self.ok("NetworkDriver.DeleteNetwork", {"NetworkID": net.network_id})

    # --- containers -------------------------------------------------------------------------------------------

    @staticmethod
    def endpoint_request(c: Container) -> dict[str, Any]:
        return {"NetworkID": c.network.network_id, "EndpointID": c.endpoint_id}

    def setup(self, net: Network, *, ip: str = "", ip6: str = "", mac: str = "") -> Container:
        """``docker run --net NET [--ip IP] [--ip6 IP6] [--mac-address MAC]``: RequestAddress (v4, then v6),
        CreateEndpoint, Join, ProgramExternalConnectivity, EndpointOperInfo x2. On failure, rolled back as dockerd
        does and ``PluginCallError`` raised (with the rollback's own failures as notes)."""
        requires_mac = self.requires_mac
        user_mac = mac.lower()
        sent_mac = user_mac or (self.new_mac() if requires_mac else "")
        c = Container(net, self.docker_id(), f"{NETNS_DIR}/{self.docker_id()[:12]}", sent_mac, sent_mac)
        with self._rng_lock:
            self.containers.append(c)
        ipam_options = {MAC_OPTION: sent_mac} if requires_mac else None
        started = time.monotonic()
        try:
            if net.v4:
                c.address = self.ok("IpamDriver.RequestAddress",
                                    {"PoolID": net.v4[0].pool_id, "Address": ip, "Options": ipam_options},
                                    "IpamDriver.RequestAddress(v4)", c.calls)["Address"]
            if net.v6:
                c.address6 = self.ok("IpamDriver.RequestAddress",
                                     {"PoolID": net.v6[0].pool_id, "Address": ip6, "Options": ipam_options},
                                     "IpamDriver.RequestAddress(v6)", c.calls)["Address"]
            options = dict(ENDPOINT_OPTIONS)
            if user_mac:
                options = {**ENDPOINT_OPTIONS, MAC_OPTION: mac_option(user_mac)}
                options = dict(sorted(options.items()))  # Go writes map keys sorted
            reply = self.ok("NetworkDriver.CreateEndpoint",
                            {**self.endpoint_request(c),
                             "Interface": {"Address": c.address, "AddressIPv6": c.address6, "MacAddress": sent_mac},
                             "Options": options}, calls=c.calls)
            c.has_endpoint = True
            answered = (reply.get("Interface") or {}).get("MacAddress") or ""
            if sent_mac and answered and answered.lower() != sent_mac:
                # dockerd refuses a plugin that changes what it supplied (and rolls back)
                raise PluginCallError(Reply("NetworkDriver.CreateEndpoint", 200, reply, json.dumps(reply), 0.0),
                                      step=f"CreateEndpoint changed the MAC {sent_mac} to {answered}")
            c.mac = sent_mac or answered.lower()
            c.join = self.ok("NetworkDriver.Join", {**self.endpoint_request(c), "SandboxKey": c.sandbox_key,
                                                    "Options": ENDPOINT_OPTIONS}, calls=c.calls)
            c.joined = True
            c.setup_seconds = time.monotonic() - started
            c.src_name = str((c.join.get("InterfaceName") or {}).get("SrcName") or "")
            c.gateway, c.gateway6 = str(c.join.get("Gateway") or ""), str(c.join.get("GatewayIPv6") or "")
            self.ok("NetworkDriver.ProgramExternalConnectivity",
                    {**self.endpoint_request(c), "Options": ENDPOINT_OPTIONS}, calls=c.calls)
            for _ in range(2):
                c.oper_info = self.ok("NetworkDriver.EndpointOperInfo", self.endpoint_request(c), calls=c.calls)
        except PluginCallError as exc:
            self.rollback(c, exc)
            raise
        return c

    def rollback(self, c: Container, exc: PluginCallError) -> None:
        """Undo what a failed setup got (dockerd: Leave, DeleteEndpoint, ReleaseAddress), noting failures."""
        steps: list[tuple[str, Any, str]] = []
        if c.joined:
            steps.append(("NetworkDriver.Leave", self.endpoint_request(c), ""))
        if c.has_endpoint:
            steps.append(("NetworkDriver.DeleteEndpoint", self.endpoint_request(c), ""))
        steps += self._release_steps(c)
        for method, payload, step in steps:
            try:
                self.ok(method, payload, step)
            except PluginCallError as failed:
                exc.add_note(f"rollback: {failed}")

    def _release_steps(self, c: Container) -> list[tuple[str, Any, str]]:
        steps: list[tuple[str, Any, str]] = []
        for pools, address, family in ((c.network.v4, c.address, "v4"), (c.network.v6, c.address6, "v6")):
            if address:
                steps.append(("IpamDriver.ReleaseAddress",
                              {"PoolID": pools[0].pool_id, "Address": str(ipaddress.ip_interface(address).ip)},
                              f"IpamDriver.ReleaseAddress({family})"))
        return steps

    def teardown(self, c: Container) -> None:
        """The container exits and is removed: RevokeExternalConnectivity, Leave, DeleteEndpoint, ReleaseAddress
        (v4, then v6). Raises ``PluginCallError`` at the first failure."""
        ep = self.endpoint_request(c)
        started = time.monotonic()
        self.ok("NetworkDriver.RevokeExternalConnectivity", ep, calls=c.calls)
        self.ok("NetworkDriver.Leave", ep, calls=c.calls)
        c.joined = False
        self.ok("NetworkDriver.DeleteEndpoint", ep, calls=c.calls)
        c.has_endpoint = False
        for method, payload, step in self._release_steps(c):
            self.ok(method, payload, step, c.calls)
        c.teardown_seconds = time.monotonic() - started


# --- the container's side: a namespace per container, one ping ------------------------------------------------


def _ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")
    return result


class Sandbox:
    """What Docker does with a joined endpoint: ``SrcName`` moved into a namespace of its own, renamed ``eth0``,
    given the container's MAC, MTU and addresses, up, with the default routes via Join's gateways. ``close()``
    moves it back under its SrcName (as Docker does before Leave) and deletes the namespace; always call it."""

    def __init__(self, c: Container, mtu: int | None = None, ifname: str = "eth0"):
        self.container, self.mtu, self.ifname = c, mtu, ifname
        self.netns = f"crp-{uuid.uuid4().hex[:10]}"
        self.moved = False

    def open(self) -> Sandbox:
        c = self.container
        if not c.src_name:
            raise ValueError(f"endpoint {c.endpoint_id[:12]} has no SrcName: not joined")
        _ip("netns", "add", self.netns)
        try:
            _ip("link", "set", "dev", c.src_name, "netns", self.netns)
            self.moved = True
            ns = self.netns
            _ip("link", "set", "dev", c.src_name, "name", self.ifname, netns=ns)
            if c.mac:
                _ip("link", "set", "dev", self.ifname, "address", c.mac, netns=ns)
            if self.mtu:
                _ip("link", "set", "dev", self.ifname, "mtu", str(self.mtu), netns=ns)
            for address in (c.address, c.address6):
                if address:
                    extra = ["nodad"] if ipaddress.ip_interface(address).version == 6 else []
                    _ip("addr", "add", address, "dev", self.ifname, *extra, netns=ns)
            _ip("link", "set", "dev", "lo", "up", netns=ns)
            _ip("link", "set", "dev", self.ifname, "up", netns=ns)
            if c.gateway:
                _ip("route", "add", "default", "via", c.gateway, "dev", self.ifname, netns=ns)
            if c.gateway6:
                _ip("-6", "route", "add", "default", "via", c.gateway6, "dev", self.ifname, netns=ns)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self.moved:
            ns, src = self.netns, self.container.src_name
            _ip("link", "set", "dev", self.ifname, "down", netns=ns, check=False)
            _ip("link", "set", "dev", self.ifname, "name", src, netns=ns, check=False)
            _ip("link", "set", "dev", src, "netns", str(os.getpid()), netns=ns, check=False)
            self.moved = False
        _ip("netns", "delete", self.netns, check=False)

    def __enter__(self) -> Sandbox:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self, address: str, wait: float = 1.0) -> bool:
        """ONE echo request, no retry: whether it was answered within ``wait`` seconds."""
        ip = str(ipaddress.ip_interface(address).ip)
        cmd = ["ip", "netns", "exec", self.netns, "ping", "-c1", f"-W{max(1, round(wait))}", ip]
        return subprocess.run(cmd, capture_output=True, check=False, timeout=wait + 10).returncode == 0


@contextlib.contextmanager
def sandboxes(*containers: Container, mtu: int | None = None) -> Iterator[list[Sandbox]]:
    """Each container in a namespace of its own for the ``with`` block; all cleaned up whatever happens."""
    opened: list[Sandbox] = []
    try:
        for c in containers:
            opened.append(Sandbox(c, mtu).open())
        yield opened
    finally:
        for box in reversed(opened):
            box.close()


def ping_once(a: Container, b: Container, mtu: int | None = None) -> bool:
    """The first packet: ``a`` and ``b`` (both joined) in namespaces of their own, one ``ping -c1 -W1`` from
    ``a`` to ``b``'s first address, no retry. Whether it was answered; the namespaces are always removed and
    the interfaces given back under their SrcName."""
    with sandboxes(a, b, mtu=mtu) as (box_a, _):
        return box_a.ping(b.ips[0])
