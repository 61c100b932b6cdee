"""Plays dockerd: the exact JSON requests, in the order dockerd 20.10 sends them, through Dispatcher.dispatch.

Shapes follow /work/shared/reference/docker-requests.sample.jsonl; sequences follow the "Sequences seen"
section of libnetwork-protocol.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import itertools
import json
from concurrent import futures
from typing import Any

from oslo_config import cfg

from courier.api.routes import Dispatcher, build_routes
from courier.config.options import register_opts
from courier.driver.plugin import Plugin
from tests.fakes import FakeBinder, FakeNeutron

HOST = "testhost"
ADDRESS_SPACE = "no_address_space"
GATEWAY_REQUEST = {"RequestAddressType": "com.docker.network.gateway"}
ENDPOINT_OPTIONS: dict[str, Any] = {"com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": []}
MAC_OPTION = "com.docker.network.endpoint.macaddress"

_ids = itertools.count(1)


def docker_id() -> str:
    """A fresh 64-hex id, as Docker makes for networks and endpoints (deterministic across runs)."""
    return hashlib.sha256(f"docker-id-{next(_ids)}".encode()).hexdigest()


def docker_mac() -> str:
    n = next(_ids)
    return "02:42:" + ":".join(f"{(n >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def make_conf(**overrides: Any) -> cfg.ConfigOpts:
    """Courier's options on a fresh ConfigOpts; overrides as ``group__name=value``."""
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([])
    conf.set_override("host_id", HOST, group="binding")
    conf.set_override("enabled", False, group="vif_pool")  # the warm pool's own tests turn it on
    for key, value in overrides.items():
        group, _, name = key.rpartition("__")
        conf.set_override(name, value, group=group or None)
    return conf


@dataclasses.dataclass
class Pool:
    pool_id: str
    cidr: str  # what RequestPool answered
    gateway: str  # plain IP, as ReleaseAddress sends it


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
    mac: str
    address: str  # CIDR form, "" if none
    address6: str
    join: dict[str, Any] = dataclasses.field(default_factory=dict)
    oper_info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ips(self) -> list[str]:
        return [str(ipaddress.ip_interface(a).ip) for a in (self.address, self.address6) if a]


class Dockerd:
    """One Courier plugin (over a FakeNeutron and a FakeBinder) as dockerd sees it."""

    def __init__(self, neutron: FakeNeutron, binder: FakeBinder | None = None,
                 conf: cfg.ConfigOpts | None = None, *, settle: bool = True):
        self.neutron = neutron
        self.binder = binder if binder is not None else FakeBinder()
        self.conf = conf if conf is not None else make_conf()
        self.settles = settle
        self.plugin = Plugin(self.conf, neutron, self.binder)  # type: ignore[arg-type]
        self.dispatcher = Dispatcher(build_routes(self.plugin))
        self.sent: list[tuple[str, Any, int, dict[str, Any]]] = []

    def restart(self) -> Dockerd:
        """Courier restarted: a new process over the same Neutron; dockerd replays nothing."""
        self.settle()
        self.plugin.close()
        return Dockerd(self.neutron, FakeBinder(), self.conf, settle=self.settles)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait for what Courier finishes in the background after replying (port descriptions, retried deletes)."""
        state = self.plugin.state
        futures.wait(list(state.port_updates.values()), timeout)
        assert state.deferred.wait_idle(timeout), state.deferred.pending()

    def close(self) -> None:
        self.plugin.close()

    # --- single calls ---------------------------------------------------------------------------------------

    def call(self, method: str, payload: Any = None) -> tuple[int, dict[str, Any]]:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode() + b"\n"
        status, reply = self.dispatcher.dispatch(method, body)
        self.sent.append((method, payload, status, reply))
        if self.settles:
            self.settle()
        return status, reply

    def ok(self, method: str, payload: Any = None) -> dict[str, Any]:
        status, reply = self.call(method, payload)
        assert status == 200, f"{method} answered {status}: {reply}"
        return reply

    def fails(self, method: str, payload: Any = None) -> tuple[int, str]:
        """The call must fail the way Docker understands: status >= 400, both Err and Error."""
        status, reply = self.call(method, payload)
        assert status >= 400, f"{method} should have failed: {reply}"
        assert reply["Err"] == reply["Error"] and reply["Err"], reply
        return status, reply["Err"]

    # --- IPAM ------------------------------------------------------------------------------------------------

    def request_pool(self, cidr: str = "", *, v6: bool = False, sub_pool: str = "",
                     options: dict[str, str] | None = None) -> dict[str, Any]:
        return {"AddressSpace": ADDRESS_SPACE, "Pool": cidr, "SubPool": sub_pool, "Options": options or {}, "V6": v6}

    def gateway_request(self, pool_id: str, address: str = "") -> dict[str, Any]:
        return {"PoolID": pool_id, "Address": address, "Options": GATEWAY_REQUEST}

    def address_request(self, pool_id: str, mac: str, address: str = "") -> dict[str, Any]:
        return {"PoolID": pool_id, "Address": address, "Options": {MAC_OPTION: mac}}

    def allocate_pool(self, cidr: str = "", *, v6: bool = False, gateway: str = "", sub_pool: str = "",
                      ipam_options: dict[str, str] | None = None) -> Pool:
        """RequestPool then the gateway RequestAddress, as `network create` does per subnet."""
        reply = self.ok("IpamDriver.RequestPool", self.request_pool(cidr, v6=v6, sub_pool=sub_pool,
                                                                    options=ipam_options))
        gw = self.ok("IpamDriver.RequestAddress", self.gateway_request(reply["PoolID"], gateway))["Address"]
        return Pool(reply["PoolID"], reply["Pool"], str(ipaddress.ip_interface(gw).ip))

    # --- sequences ---------------------------------------------------------------------------------------------

    def network_create(self, *subnets: str, v6: tuple[str, ...] = (), options: dict[str, Any] | None = None,
                       ipv4: bool = True, default_v6_pool: bool = False, gateway: str = "", ip_range: str = "",
                       ipam_options: dict[str, str] | None = None, network_id: str | None = None) -> Network:
        """`docker network create -d kuryr --ipam-driver kuryr [--subnet ...] [--ipv6 ...] [-o k=v]`.

        No subnets: one v4 pool from Courier's default subnetpool.
        """
        v4_pools = []
        if ipv4:
            for cidr in subnets or ("",):
                v4_pools.append(self.allocate_pool(cidr, gateway=gateway, sub_pool=ip_range,
                                                   ipam_options=ipam_options))
        v6_pools = [self.allocate_pool(cidr, v6=True, ipam_options=ipam_options)
                    for cidr in (v6 or (("",) if default_v6_pool else ()))]
        net = Network(network_id or docker_id(), v4_pools, v6_pools)
        self.ok("NetworkDriver.CreateNetwork", self.create_network_request(net, options, ipv4=ipv4))
        return net

    @staticmethod
    def create_network_request(net: Network, options: dict[str, Any] | None = None, *,
                               ipv4: bool = True) -> dict[str, Any]:
        opts: dict[str, Any] = {"com.docker.network.enable_ipv6": bool(net.v6),
                                "com.docker.network.generic": options or {}}
        if not ipv4:
            opts["com.docker.network.enable_ipv4"] = False

        def data(pool: Pool) -> dict[str, Any]:
            prefixlen = ipaddress.ip_network(pool.cidr).prefixlen
            return {"AddressSpace": ADDRESS_SPACE, "Gateway": f"{pool.gateway}/{prefixlen}", "Pool": pool.cidr}

        return {"NetworkID": net.network_id, "Options": opts, "IPv4Data": [data(p) for p in net.v4],
                "IPv6Data": [data(p) for p in net.v6]}

    def network_rm(self, net: Network) -> None:
        """`docker network rm`: per pool the gateway address then the pool, v4 first; DeleteNetwork last."""
        for pool in net.pools:
            self.ok("IpamDriver.ReleaseAddress", {"PoolID": pool.pool_id, "Address": pool.gateway})
            self.ok("IpamDriver.ReleasePool", {"PoolID": pool.pool_id})
        self.ok("NetworkDriver.DeleteNetwork", {"NetworkID": net.network_id})

    def request_addresses(self, net: Network, mac: str, ip: str = "", ip6: str = "") -> tuple[str, str]:
        address = address6 = ""
        if net.v4:
            address = self.ok("IpamDriver.RequestAddress", self.address_request(net.v4[0].pool_id, mac, ip))["Address"]
        if net.v6:
            address6 = self.ok("IpamDriver.RequestAddress",
                               self.address_request(net.v6[0].pool_id, mac, ip6))["Address"]
        return address, address6

    @staticmethod
    def endpoint_request(net: Network, endpoint_id: str) -> dict[str, Any]:
        return {"NetworkID": net.network_id, "EndpointID": endpoint_id}

    @staticmethod
    def create_endpoint_request(c: Container) -> dict[str, Any]:
        return {"NetworkID": c.network.network_id, "EndpointID": c.endpoint_id,
                "Interface": {"Address": c.address, "AddressIPv6": c.address6, "MacAddress": c.mac},
                "Options": ENDPOINT_OPTIONS}

    @staticmethod
    def join_request(c: Container) -> dict[str, Any]:
        return {"NetworkID": c.network.network_id, "EndpointID": c.endpoint_id,
                "SandboxKey": f"/var/run/docker/netns/{c.endpoint_id[-12:]}", "Options": ENDPOINT_OPTIONS}

    def run(self, net: Network, *, ip: str = "", ip6: str = "", mac: str | None = None) -> Container:
        """`docker run --net <net> [--ip ..] [--ip6 ..]`: addresses, endpoint, join, connectivity, oper info x2."""
        mac = mac or docker_mac()
        address, address6 = self.request_addresses(net, mac, ip, ip6)
        c = Container(net, docker_id(), mac, address, address6)
        self.start(c)
        return c

    def start(self, c: Container) -> None:
        """What follows the address requests of `docker run`."""
        self.ok("NetworkDriver.CreateEndpoint", self.create_endpoint_request(c))
        c.join = self.ok("NetworkDriver.Join", self.join_request(c))
        self.ok("NetworkDriver.ProgramExternalConnectivity",
                {**self.endpoint_request(c.network, c.endpoint_id), "Options": ENDPOINT_OPTIONS})
        for _ in range(2):
            c.oper_info = self.ok("NetworkDriver.EndpointOperInfo", self.endpoint_request(c.network, c.endpoint_id))

    def rm(self, c: Container) -> None:
        """The container exits and is removed."""
        ep = self.endpoint_request(c.network, c.endpoint_id)
        self.ok("NetworkDriver.RevokeExternalConnectivity", ep)
        self.ok("NetworkDriver.Leave", ep)
        self.ok("NetworkDriver.DeleteEndpoint", ep)
        self.release_addresses(c)

    def release_addresses(self, c: Container) -> None:
        for pools, address in ((c.network.v4, c.address), (c.network.v6, c.address6)):
            if address:
                self.ok("IpamDriver.ReleaseAddress",
                        {"PoolID": pools[0].pool_id, "Address": str(ipaddress.ip_interface(address).ip)})
