"""One-shot attachments of a container to a Neutron network (a CNI ADD, DEL, CHECK).

The same steps as Docker's calls, on the same core: an address (a warm pool's ready port, or a new port), the
endpoint's identity on it, the binding, and then what Docker would do itself: the interface moved into the
container's namespace and configured. The (container id, interface name) pair is the identity: hashed into a
Docker-shaped endpoint id, so that Neutron tags, the pools' OVSDB owner, `courier status` and `gc` know an
attachment as they know an endpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import ipaddress
import logging
import os

from courier.binding import netns
from courier.binding.manager import Binder
from courier.driver.endpoints import Endpoints
from courier.driver.lookup import Lookup
from courier.driver.models import EndpointSpec
from courier.driver.ports import Ports
from courier.driver.state import EndpointRecord, NetworkRecord, PoolRecord, State
from courier.exceptions import InvalidRequest, NotFound
from courier.neutron import models as nm
from courier.neutron import tags
from courier.pool import PortPools

LOG = logging.getLogger(__name__)

CNI_TAG = tags.CNI_ATTACHMENT
NETNS_TAG = tags.CNI_NETNS  # `courier gc` removes the port once that namespace is gone
NETNS_DIRS = ("/run/netns", "/var/run/netns")


def attachment_id(container_id: str, ifname: str) -> str:
    return hashlib.sha256(f"{container_id}/{ifname}".encode()).hexdigest()


def netns_tag(path: str) -> str | None:
    """The tag naming a namespace under /run/netns; None for any other path (e.g. /proc/<pid>/ns/net)."""
    directory, name = os.path.split(os.path.normpath(path))
    return (NETNS_TAG + name)[:tags.MAX_TAG_LEN] if directory in NETNS_DIRS and name else None


@dataclasses.dataclass(frozen=True)
class AttachSpec:
    container_id: str
    ifname: str
    netns: str  # path
    network: str  # Neutron network id or name
    address: str | None = None  # a specific IPv4 or IPv6 address (CNI_ARGS IP=...)
    mac: str | None = None

    @property
    def attachment_id(self) -> str:
        return attachment_id(self.container_id, self.ifname)


@dataclasses.dataclass(frozen=True)
class Attached:
    port_id: str
    mac: str
    mtu: int
    addresses: tuple[netns.IPInterface, ...]
    gateways: tuple[netns.IPAddress, ...]
    routes: tuple[tuple[netns.IPNetwork, netns.IPAddress], ...]
    dns: tuple[str, ...]


class Attachments:
    def __init__(self, state: State, lookup: Lookup, ports: Ports, endpoints: Endpoints, binder: Binder,
                 pools: PortPools | None, host_id: str):
        self._state, self._lookup, self._ports, self._endpoints = state, lookup, ports, endpoints
        self._binder, self._pools, self._host = binder, pools, host_id

    def add(self, spec: AttachSpec) -> Attached:
        network = self._lookup.neutron_network(spec.network)
        if not network.subnets:
            raise InvalidRequest(f"Neutron network {network.network.id} has no subnet: a port needs an address")
        if self._pools is not None:
            self._pools.register(network.network, network.subnets)  # warm from now on (idempotent)
        with self._state.locks.hold(spec.attachment_id + "/attach"):  # endpoints' own lock is taken inside
            existing = self._state.endpoints.get(spec.attachment_id)
            if existing is None and netns.inspect(spec.netns, spec.ifname) is not None:
                # the interface is there already: an ADD retried, maybe by a restarted daemon (Neutron knows)
                existing = self._endpoint_or_none(network, spec.attachment_id)
            if existing is not None:
                if self._in_place(existing.port, spec) and netns.inspect(spec.netns, spec.ifname) is not None:
                    return self._attached(existing.port, network)  # the runtime retried a finished ADD
                self.delete(spec)  # half done (e.g. a crash before the interface moved): start clean
            self._create(network, spec)
            try:
                joined = self._endpoints.join(network.docker_id, spec.attachment_id)
                attached = self._attached(self._endpoints.endpoint(network.docker_id, spec.attachment_id).port,
                                          network)
                netns.move_in(joined.host_ifname, netns.ContainerInterface(
                    netns=spec.netns, ifname=spec.ifname, mac=attached.mac, mtu=attached.mtu,
                    addresses=attached.addresses, gateways=attached.gateways, routes=attached.routes))
            except BaseException:
                self.delete(spec)
                raise
        LOG.info("attached %s/%s (netns %s) to port %s", spec.container_id[:12], spec.ifname, spec.netns,
                 attached.port_id)
        return attached

    def _create(self, network: NetworkRecord, spec: AttachSpec) -> None:
        """An address on each IP version's first subnet, then the endpoint's identity: RequestAddress and
        CreateEndpoint in one. A failure leaves no port behind."""
        chosen = self._subnets(network, spec.address)
        extra = {CNI_TAG} | ({t} if (t := netns_tag(spec.netns)) else set())
        ports: list[nm.Port] = []
        try:
            for subnet in chosen:
                address = spec.address if spec.address and ipaddress.ip_address(spec.address) in subnet.cidr else None
                port = self._warm(subnet, address) if len(chosen) == 1 and spec.mac is None else None
                if port is None:
                    mac = ports[0].mac_address if ports else spec.mac
                    port = self._ports.allocate(_pool_of(subnet), address, mac)
                ports.append(port)
            addresses = tuple(str(p.ip_in(s.id)) for p, s in zip(ports, chosen, strict=True))
            self._endpoints.create(EndpointSpec(network_id=network.docker_id, endpoint_id=spec.attachment_id,
                                                addresses=addresses, wanted_mac=spec.mac,
                                                extra_tags=frozenset(extra)))
        except BaseException:
            for port in {p.id: p for p in ports}.values():
                self._release(port)
            raise

    def _warm(self, subnet: nm.Subnet, address: str | None) -> nm.Port | None:
        if self._pools is None:
            return None
        port = self._pools.take(subnet, address)
        if port is not None:
            self._state.remember_port(port)
            self._state.allocated.add((port.id, subnet.id))
        return port

    @staticmethod
    def _subnets(network: NetworkRecord, address: str | None) -> list[nm.Subnet]:
        by_version: dict[int, nm.Subnet] = {}
        for subnet in network.subnets:
            by_version.setdefault(subnet.ip_version, subnet)
        if address:
            ip = ipaddress.ip_address(address)
            matching = next((s for s in network.subnets if ip in s.cidr), None)
            if matching is None:
                raise InvalidRequest(f"address {address} is in no subnet of Neutron network {network.network.id}")
            by_version[ip.version] = matching
        return [by_version[v] for v in sorted(by_version)]

    def _in_place(self, port: nm.Port, spec: AttachSpec) -> bool:
        return spec.address is None or any(str(f.ip_address) == spec.address for f in port.fixed_ips)

    def _attached(self, port: nm.Port, network: NetworkRecord) -> Attached:
        subnets = {s.id: s for s in network.subnets}
        addresses: list[netns.IPInterface] = []
        gateways: list[netns.IPAddress] = []
        routes: list[tuple[netns.IPNetwork, netns.IPAddress]] = []
        dns: list[str] = []
        for fixed in port.fixed_ips:
            subnet = subnets.get(fixed.subnet_id)
            if subnet is None:
                continue
            addresses.append(ipaddress.ip_interface(f"{fixed.ip_address}/{subnet.cidr.prefixlen}"))
            if subnet.gateway_ip is not None and all(g.version != subnet.ip_version for g in gateways):
                gateways.append(subnet.gateway_ip)
            routes += list(subnet.host_routes)
            dns += [d for d in subnet.dns_nameservers if d not in dns]
        return Attached(port_id=port.id, mac=port.mac_address, mtu=network.network.mtu,
                        addresses=tuple(addresses), gateways=tuple(gateways), routes=tuple(routes), dns=tuple(dns))

    def delete(self, spec: AttachSpec) -> None:
        """Everything an ADD made, whatever is left of it; nothing to do is no error (DEL is idempotent)."""
        try:
            network = self._lookup.neutron_network(spec.network)
        except NotFound:
            self._binder.unbind_endpoint(spec.attachment_id)  # the network went first: what may be left here
            return
        self._detach(network, spec.attachment_id, spec)

    def collect(self, network_ref: str, keep: set[tuple[str, str]]) -> int:
        """CNI GC: remove this host's attachments to the network that are not in ``keep`` (container id,
        interface name) pairs. Returns how many went."""
        network = self._lookup.neutron_network(network_ref)
        wanted = {attachment_id(container, ifname) for container, ifname in keep}
        removed = 0
        for port in self._lookup.ports_tagged(network.network.id, CNI_TAG):
            eid = tags.docker_id_from_tags(port.tags)
            if eid is None or eid in wanted or port.host_id != self._host:
                continue
            self._detach(network, eid, None)
            removed += 1
        return removed

    def _detach(self, network: NetworkRecord, eid: str, spec: AttachSpec | None) -> None:
        try:
            ep = self._endpoints.endpoint(network.docker_id, eid)
        except NotFound:
            self._binder.unbind_endpoint(eid)
            return
        port = ep.port
        if spec is not None and self._pools is not None and self._pools.taken(port.id):
            # back under the name the pool plugged it with, so the pool reuses the interface
            netns.move_out(spec.netns, spec.ifname, self._endpoints.vif(ep).container_ifname)
        self._endpoints.leave(network.docker_id, eid)
        self._endpoints.delete(network.docker_id, eid)
        if self._pools is None or not self._pools.holds(port.id):
            self._release(port)  # what ReleaseAddress does after Docker's DeleteEndpoint

    def check(self, spec: AttachSpec) -> None:
        """CNI CHECK: the port is there, bound here, and the interface has its MAC and addresses."""
        network = self._lookup.neutron_network(spec.network)
        ep = self._endpoints.endpoint(network.docker_id, spec.attachment_id)
        attached = self._attached(ep.port, network)
        seen = netns.inspect(spec.netns, spec.ifname)
        if seen is None:
            raise NotFound(f"{spec.ifname} is not in {spec.netns}")
        wanted = {str(a) for a in attached.addresses}
        problems = []
        if seen.mac != attached.mac.lower():
            problems.append(f"MAC {seen.mac} is not the port's {attached.mac}")
        if not wanted <= seen.addresses:
            problems.append(f"addresses {', '.join(sorted(wanted - seen.addresses))} are missing")
        if not seen.up:
            problems.append("it is down")
        if problems:
            raise InvalidRequest(f"{spec.ifname} in {spec.netns}: {'; '.join(problems)}")

    def _endpoint_or_none(self, network: NetworkRecord, eid: str) -> EndpointRecord | None:
        try:
            return self._endpoints.endpoint(network.docker_id, eid)
        except NotFound:
            return None

    def _release(self, port: nm.Port) -> None:
        with contextlib.suppress(NotFound):  # gone already
            self._ports.release(port)


def _pool_of(subnet: nm.Subnet) -> PoolRecord:
    """The address pool a subnet is when no Docker pool stands for it."""
    return PoolRecord(pool_id=f"subnet:{subnet.id}", subnetpool_id=subnet.subnetpool_id or "", cidr=subnet.cidr,
                      dedicated=False, gateway=subnet.gateway_ip, subnet=subnet)
