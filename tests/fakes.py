"""In-memory stand-ins for Neutron and the binding layer, for unit tests.

``FakeNeutron`` has every public method of ``courier.neutron.api.Neutron`` with the same signature and the
same record types, and enforces the Neutron behaviour Courier relies on (address allocation, conflicts,
cascading deletes, binding). It raises the domain errors ``courier.neutron.errors.translated`` would raise,
with Neutron's error type in ``neutron_type``. It counts calls per method (``calls``), can fail every call
(``unavailable``) or chosen calls (``fail``), and snapshots its resources (``snapshot``).

Seeding helpers (``add_*``) build a starting world without being counted as calls.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import ipaddress
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from courier.binding.vif import VIF
from courier.exceptions import (
    AddressInUse,
    Conflict,
    CourierError,
    InvalidRequest,
    NeutronError,
    NeutronUnavailable,
    NotFound,
    PoolExhausted,
)
from courier.neutron import models as nm

T = TypeVar("T")

MAX_TAG_LEN = 60
UNPLUGGED_VIF_TYPES = ("unbound", "binding_failed")
OVS_VIF_DETAILS = {"port_filter": True, "connectivity": "l2", "bridge_name": "br-int", "datapath_type": "netdev"}

# Filter names openstacksdk accepts (client name -> Neutron name); anything else makes the SDK raise.
_TAG_FILTERS = {"tags": "tags", "any_tags": "tags-any", "not_tags": "not-tags", "not_any_tags": "not-tags-any"}
_COMMON_FILTERS = {"id": "id", "name": "name", "description": "description", "project_id": "project_id",
                   "fields": "fields", "limit": "limit", "marker": "marker", "sort_dir": "sort_dir",
                   "sort_key": "sort_key", **_TAG_FILTERS}
_FILTERS: dict[str, dict[str, str]] = {
    "networks": {**_COMMON_FILTERS, "is_shared": "shared", "status": "status", "is_admin_state_up": "admin_state_up",
                 "is_router_external": "router:external"},
    "subnets": {**_COMMON_FILTERS, "cidr": "cidr", "gateway_ip": "gateway_ip", "ip_version": "ip_version",
                "network_id": "network_id", "subnet_pool_id": "subnetpool_id", "is_dhcp_enabled": "enable_dhcp",
                "segment_id": "segment_id"},
    "subnetpools": {**_COMMON_FILTERS, "ip_version": "ip_version", "is_shared": "shared",
                    "is_default": "is_default"},
    "ports": {**_COMMON_FILTERS, "network_id": "network_id", "device_id": "device_id",
              "device_owner": "device_owner", "mac_address": "mac_address", "fixed_ips": "fixed_ips",
              "status": "status", "binding:host_id": "binding:host_id", "binding:vif_type": "binding:vif_type",
              "binding:vnic_type": "binding:vnic_type", "is_admin_state_up": "admin_state_up",
              "tenant_id": "project_id", "subnet_id": "subnet_id", "ip_address": "ip_address"},
}
# Neutron filter name -> record attribute, for the filters this fake implements.
_ATTRS = {"id": "id", "name": "name", "shared": "shared", "cidr": "cidr", "gateway_ip": "gateway_ip",
          "ip_version": "ip_version", "network_id": "network_id", "subnetpool_id": "subnetpool_id",
          "device_id": "device_id", "device_owner": "device_owner", "mac_address": "mac_address",
          "status": "status", "binding:host_id": "host_id", "binding:vif_type": "vif_type",
          "binding:vnic_type": "vnic_type"}
_PORT_CREATE_ATTRS = {"name", "mac_address", "device_owner", "device_id", "admin_state_up", "binding:host_id",
                      "binding:vnic_type", "binding:profile", "description", "security_groups",
                      "allowed_address_pairs", "port_security_enabled"}
_PORT_UPDATE_ATTRS = _PORT_CREATE_ATTRS | {"fixed_ips"}


def _failure(cls: type[CourierError], neutron_type: str, status: int, what: str, message: str) -> CourierError:
    """The error ``courier.neutron.errors.translated`` makes of a Neutron error reply."""
    err = cls(f"{what}: {message}")
    err.neutron_type = neutron_type  # type: ignore[attr-defined]
    err.neutron_status = status  # type: ignore[attr-defined]
    return err


def _api(fn: Callable[..., T]) -> Callable[..., T]:
    """A Neutron API method: counted, serialised, and subject to the unavailable switch and injected failures."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(self: FakeNeutron, *args: Any, **kwargs: Any) -> T:
        if self.latency.get(name):
            time.sleep(self.latency[name])  # outside the lock: other calls go on meanwhile
        with self._lock:
            self.calls[name] += 1
            self.log.append((name, args, kwargs))
            if self.unavailable:
                raise NeutronUnavailable(f"{name}: Neutron is unreachable (ConnectFailure)")
            injected = self._injected_failure(name)
            if injected is not None:
                raise injected
            return fn(self, *args, **kwargs)

    return wrapper


@dataclasses.dataclass
class _Injected:
    method: str
    error: BaseException
    skip: int
    times: int


class FakeNeutron:
    """One Neutron project, in memory. Public dicts hold the current records by id (read them, don't write)."""

    def __init__(self, known_hosts: Iterable[str] | None = None, mtu: int = 1442, project_id: str = "project-1"):
        self._lock = threading.RLock()
        self.project_id = project_id
        self._ids = itertools.count(1)
        self._known_hosts = set(known_hosts) if known_hosts is not None else None
        self._mtu = mtu
        self.networks: dict[str, nm.Network] = {}
        self.subnets: dict[str, nm.Subnet] = {}
        self.subnetpools: dict[str, nm.SubnetPool] = {}
        self.ports: dict[str, nm.Port] = {}
        self.trunks: dict[str, dict[str, Any]] = {}
        self.agent_list: list[nm.Agent] = []
        self.allocation_pools: dict[str, list[tuple[nm.IPAddress, nm.IPAddress]]] = {}
        self.port_admin_state: dict[str, bool] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self.log: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.unavailable = False
        self._failures: list[_Injected] = []
        self.clock = 1_767_225_600.0  # 2026-01-01T00:00:00Z: created_at of what is created now
        self.latency: dict[str, float] = {}  # method -> seconds each call takes

    # --- test controls -------------------------------------------------------------------------------------

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.log.clear()

    def fail(self, method: str, error: BaseException | None = None, *, after: int = 0, times: int = 1) -> None:
        """Make ``method`` raise ``error`` (default NeutronUnavailable) ``times`` times, after ``after`` calls pass."""
        if not hasattr(type(self), method):
            raise AttributeError(f"FakeNeutron has no method {method}")
        err = error if error is not None else NeutronUnavailable(f"{method}: Neutron is unreachable (injected)")
        with self._lock:
            self._failures.append(_Injected(method, err, after, times))

    def _injected_failure(self, method: str) -> BaseException | None:
        for inj in self._failures:
            if inj.method != method:
                continue
            if inj.skip > 0:
                inj.skip -= 1
                return None
            inj.times -= 1
            if inj.times <= 0:
                self._failures.remove(inj)
            return inj.error
        return None

    def snapshot(self, revisions: bool = True) -> dict[str, Any]:
        """Every resource as it is now; compare two snapshots to see whether anything changed.

        ``revisions=False`` leaves port revision numbers out: a port updated and then restored compares equal.
        """
        with self._lock:
            ports = self.ports if revisions else {k: dataclasses.replace(p, revision_number=0)
                                                  for k, p in self.ports.items()}
            return {"networks": dict(self.networks), "subnets": dict(self.subnets),
                    "subnetpools": dict(self.subnetpools), "ports": dict(ports),
                    "port_admin_state": dict(self.port_admin_state),
                    "allocation_pools": {k: list(v) for k, v in self.allocation_pools.items()},
                    "trunks": {k: {**t, "sub_ports": [dict(s) for s in t["sub_ports"]]}
                               for k, t in self.trunks.items()}}

    def clone(self) -> FakeNeutron:
        """An independent copy of every resource (calls, switches and injected failures start afresh)."""
        with self._lock:
            twin = FakeNeutron(self._known_hosts, self._mtu, self.project_id)
            twin.clock = self.clock
            twin._ids = itertools.count(next(self._ids))
            snap = self.snapshot()
            twin.networks, twin.subnets, twin.subnetpools = snap["networks"], snap["subnets"], snap["subnetpools"]
            twin.ports, twin.port_admin_state, twin.trunks = snap["ports"], snap["port_admin_state"], snap["trunks"]
            twin.allocation_pools = snap["allocation_pools"]
            twin.agent_list = list(self.agent_list)
            return twin

    def _now(self) -> str:
        """A creation time (standard-attr-timestamp), in ISO 8601; tests may move ``clock`` (seconds)."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock))

    def _new_id(self) -> str:
        return str(uuid.UUID(int=next(self._ids)))

    def _new_mac(self) -> str:
        n = next(self._ids)
        return "fa:16:3e:" + ":".join(f"{(n >> s) & 0xFF:02x}" for s in (16, 8, 0))

    # --- seeding (not counted) ------------------------------------------------------------------------------

    def add_network(self, name: str = "net", *, tags: Iterable[str] = (), shared: bool = False) -> nm.Network:
        with self._lock:
            net = self._create_network(name, shared)
            return self._set_tags("networks", net.id, tags, "seeding")

    def add_subnet(self, network_id: str, cidr: str, *, gateway_ip: str | None = "auto", name: str = "",
                   subnetpool_id: str | None = None, tags: Iterable[str] = (),
                   host_routes: Iterable[tuple[str, str]] = (), dns_nameservers: Iterable[str] = ()) -> nm.Subnet:
        with self._lock:
            net = ipaddress.ip_network(cidr)
            gw = str(next(net.hosts())) if gateway_ip == "auto" else gateway_ip
            subnet = self._create_subnet(network_id, net, name=name, gateway_ip=gw, subnetpool_id=subnetpool_id,
                                         enable_dhcp=False, allocation_pools=None)
            routes = tuple((ipaddress.ip_network(d), ipaddress.ip_address(h)) for d, h in host_routes)
            self.subnets[subnet.id] = dataclasses.replace(subnet, host_routes=routes,
                                                          dns_nameservers=tuple(dns_nameservers))
            return self._set_tags("subnets", subnet.id, tags, "seeding")

    def add_subnetpool(self, name: str, prefixes: Iterable[str], default_prefixlen: int, *,
                       tags: Iterable[str] = (), shared: bool = False) -> nm.SubnetPool:
        with self._lock:
            nets = tuple(ipaddress.ip_network(p) for p in prefixes)
            pool = nm.SubnetPool(id=self._new_id(), name=name, prefixes=nets, default_prefixlen=default_prefixlen,
                                 ip_version=nets[0].version, tags=frozenset(tags), shared=shared,
                                 created_at=self._now())
            self.subnetpools[pool.id] = pool
            return pool

    def add_port(self, network_id: str, fixed_ips: list[dict[str, str]], *, tags: Iterable[str] = (),
                 **attrs: Any) -> nm.Port:
        with self._lock:
            port = self._create_port(network_id, fixed_ips, attrs)
            return self._set_tags("ports", port.id, tags, "seeding")

    def add_trunk(self, port_id: str) -> str:
        with self._lock:
            trunk_id = self._new_id()
            self.trunks[trunk_id] = {"id": trunk_id, "port_id": port_id, "sub_ports": []}
            return trunk_id

    def add_agent(self, host: str, agent_type: str = "OVN Controller agent", alive: bool = True) -> nm.Agent:
        with self._lock:
            agent = nm.Agent(agent_type=agent_type, host=host, alive=alive)
            self.agent_list.append(agent)
            return agent

    # --- networks -------------------------------------------------------------------------------------------

    @_api
    def create_network(self, name: str, shared: bool | None = None) -> nm.Network:
        return self._create_network(name, bool(shared))

    def _create_network(self, name: str, shared: bool) -> nm.Network:
        net = nm.Network(id=self._new_id(), name=name, mtu=self._mtu, shared=shared, created_at=self._now())
        self.networks[net.id] = net
        return net

    @_api
    def get_network(self, network_id: str) -> nm.Network:
        return self._get("networks", network_id, f"reading network {network_id}")

    @_api
    def list_networks(self, **query: Any) -> list[nm.Network]:
        return self._list("networks", query, "listing networks")

    @_api
    def delete_network(self, network_id: str) -> None:
        what = f"deleting network {network_id}"
        if network_id not in self.networks:
            return
        in_use = [p for p in self.ports.values()
                  if p.network_id == network_id and not p.device_owner.startswith("network:")]
        if in_use:
            raise _failure(Conflict, "NetworkInUse", 409, what,
                           f"Unable to complete operation on network {network_id}. There are one or more ports "
                           "still in use on the network.")
        for port in [p for p in self.ports.values() if p.network_id == network_id]:
            self._drop_port(port.id)
        for subnet in [s for s in self.subnets.values() if s.network_id == network_id]:
            self._drop_subnet(subnet.id)
        del self.networks[network_id]

    @_api
    def set_network_tags(self, network_id: str, tags: Iterable[str]) -> None:
        self._set_tags("networks", network_id, tags, f"tagging network {network_id}")

    # --- subnets ---------------------------------------------------------------------------------------------

    @_api
    def create_subnet(self, network_id: str, cidr: nm.IPNetwork, *, name: str, gateway_ip: str | None,
                      subnetpool_id: str | None, enable_dhcp: bool,
                      allocation_pools: list[dict[str, str]] | None = None) -> nm.Subnet:
        return self._create_subnet(network_id, cidr, name=name, gateway_ip=gateway_ip, subnetpool_id=subnetpool_id,
                                   enable_dhcp=enable_dhcp, allocation_pools=allocation_pools)

    def _create_subnet(self, network_id: str, cidr: nm.IPNetwork, *, name: str, gateway_ip: str | None,
                       subnetpool_id: str | None, enable_dhcp: bool,
                       allocation_pools: list[dict[str, str]] | None) -> nm.Subnet:
        what = f"creating subnet {cidr} on network {network_id}"
        if network_id not in self.networks:
            raise _failure(NotFound, "NetworkNotFound", 404, what, f"Network {network_id} could not be found.")
        cidr = ipaddress.ip_network(str(cidr))  # refuses host bits, like Neutron
        for other in self.subnets.values():
            if other.network_id == network_id and other.cidr.overlaps(cidr):
                raise _failure(InvalidRequest, "InvalidInput", 400, what,
                               f"Invalid input for operation: Requested subnet with cidr: {cidr} for network: "
                               f"{network_id} overlaps with another subnet.")
        if subnetpool_id is not None:
            pool = self.subnetpools.get(subnetpool_id)
            if pool is None:
                raise _failure(NotFound, "SubnetPoolNotFound", 404, what,
                               f"Subnet pool {subnetpool_id} could not be found.")
            if pool.ip_version != cidr.version:
                raise _failure(InvalidRequest, "InvalidInput", 400, what,
                               f"Invalid input for operation: Cannot allocate IPv{cidr.version} subnet from "
                               f"IPv{pool.ip_version} subnet pool.")
            inside = any(cidr.subnet_of(p) for p in pool.prefixes if p.version == cidr.version)  # type: ignore
            taken = any(s.subnetpool_id == subnetpool_id and s.cidr.overlaps(cidr)
                        for s in self.subnets.values())
            if not inside or taken:
                raise _failure(PoolExhausted, "SubnetAllocationError", 409, what,
                               "Failed to allocate subnet: Cannot allocate requested subnet from the available set "
                               "of prefixes.")
        gateway = ipaddress.ip_address(gateway_ip) if gateway_ip else None
        if gateway is not None and (gateway not in cidr or (cidr.version == 4 and cidr.prefixlen < 31 and gateway in
                                                            (cidr.network_address, cidr.broadcast_address))):
            raise _failure(InvalidRequest, "InvalidInput", 400, what,
                           f"Invalid input for operation: Gateway is not valid on subnet {cidr}.")
        if allocation_pools:
            ranges = []
            for pool_range in allocation_pools:
                start, end = ipaddress.ip_address(pool_range["start"]), ipaddress.ip_address(pool_range["end"])
                if start not in cidr or end not in cidr or start > end:  # type: ignore[operator]
                    raise _failure(InvalidRequest, "InvalidAllocationPool", 400, what,
                                   f"The allocation pool {start}-{end} spans beyond the subnet cidr {cidr}.")
                if gateway is not None and start <= gateway <= end:  # type: ignore[operator]
                    raise _failure(Conflict, "GatewayConflictWithAllocationPools", 409, what,
                                   f"Gateway ip {gateway} conflicts with allocation pool {start}-{end}.")
                ranges.append((start, end))
        else:
            ranges = _default_pools(cidr, gateway)
        subnet = nm.Subnet(id=self._new_id(), network_id=network_id, cidr=cidr, gateway_ip=gateway,
                           subnetpool_id=subnetpool_id, name=name)
        self.subnets[subnet.id] = subnet
        self.allocation_pools[subnet.id] = ranges
        net = self.networks[network_id]
        self.networks[network_id] = dataclasses.replace(net, subnet_ids=(*net.subnet_ids, subnet.id))
        return subnet

    @_api
    def update_subnet(self, subnet_id: str, **attrs: Any) -> nm.Subnet:
        what = f"updating subnet {subnet_id}"
        subnet = self._get("subnets", subnet_id, what)
        changes: dict[str, Any] = {}
        for key, value in attrs.items():
            if key == "name":
                changes["name"] = value
            elif key == "gateway_ip":
                changes["gateway_ip"] = ipaddress.ip_address(value) if value else None
            elif key == "host_routes":
                changes["host_routes"] = tuple((ipaddress.ip_network(r["destination"]),
                                                ipaddress.ip_address(r["nexthop"])) for r in value)
            else:
                raise TypeError(f"FakeNeutron.update_subnet does not implement {key!r}")
        self.subnets[subnet_id] = dataclasses.replace(subnet, **changes)
        return self.subnets[subnet_id]

    @_api
    def list_subnets(self, **query: Any) -> list[nm.Subnet]:
        return self._list("subnets", query, "listing subnets")

    @_api
    def get_subnet(self, subnet_id: str) -> nm.Subnet:
        return self._get("subnets", subnet_id, f"reading subnet {subnet_id}")

    @_api
    def delete_subnet(self, subnet_id: str) -> None:
        if subnet_id not in self.subnets:
            return
        users = [p for p in self.ports.values()
                 if p.ip_in(subnet_id) is not None and not p.device_owner.startswith("network:dhcp")]
        if users:
            raise _failure(Conflict, "SubnetInUse", 409, f"deleting subnet {subnet_id}",
                           f"Unable to complete operation on subnet {subnet_id}: One or more ports have an IP "
                           "allocation from this subnet.")
        self._drop_subnet(subnet_id)

    def _drop_subnet(self, subnet_id: str) -> None:
        subnet = self.subnets.pop(subnet_id)
        self.allocation_pools.pop(subnet_id, None)
        for port in list(self.ports.values()):
            if port.ip_in(subnet_id) is not None:  # only network:dhcp ports get here
                self.ports[port.id] = dataclasses.replace(
                    port, fixed_ips=tuple(f for f in port.fixed_ips if f.subnet_id != subnet_id))
        net = self.networks.get(subnet.network_id)
        if net is not None:
            self.networks[net.id] = dataclasses.replace(
                net, subnet_ids=tuple(s for s in net.subnet_ids if s != subnet_id))

    @_api
    def set_subnet_tags(self, subnet_id: str, tags: Iterable[str]) -> None:
        self._set_tags("subnets", subnet_id, tags, f"tagging subnet {subnet_id}")

    # --- subnetpools ------------------------------------------------------------------------------------------

    @_api
    def create_subnetpool(self, name: str, prefix: nm.IPNetwork, shared: bool | None = None) -> nm.SubnetPool:
        pool = nm.SubnetPool(id=self._new_id(), name=name, prefixes=(ipaddress.ip_network(str(prefix)),),
                             default_prefixlen=prefix.prefixlen, ip_version=prefix.version, shared=bool(shared),
                             created_at=self._now())
        self.subnetpools[pool.id] = pool
        return pool

    @_api
    def get_subnetpool(self, pool_id: str) -> nm.SubnetPool:
        return self._get("subnetpools", pool_id, f"reading subnetpool {pool_id}")

    @_api
    def list_subnetpools(self, **query: Any) -> list[nm.SubnetPool]:
        return self._list("subnetpools", query, "listing subnetpools")

    @_api
    def delete_subnetpool(self, pool_id: str) -> None:
        if pool_id not in self.subnetpools:
            return
        if any(s.subnetpool_id == pool_id for s in self.subnets.values()):
            raise _failure(Conflict, "SubnetPoolInUse", 409, f"deleting subnetpool {pool_id}",
                           f"Unable to complete operation on subnet pool {pool_id}. Subnet pool is in use by "
                           "one or more subnets.")
        del self.subnetpools[pool_id]

    @_api
    def set_subnetpool_tags(self, pool_id: str, tags: Iterable[str]) -> None:
        self._set_tags("subnetpools", pool_id, tags, f"tagging subnetpool {pool_id}")

    # --- ports -----------------------------------------------------------------------------------------------

    @_api
    def create_port(self, network_id: str, fixed_ips: list[dict[str, str]], **attrs: Any) -> nm.Port:
        return self._create_port(network_id, fixed_ips, attrs)

    def _create_port(self, network_id: str, fixed_ips: list[dict[str, str]], attrs: dict[str, Any]) -> nm.Port:
        what = f"creating a port on network {network_id}"
        unknown = set(attrs) - _PORT_CREATE_ATTRS
        if unknown:
            raise TypeError(f"FakeNeutron.create_port: attributes Neutron does not have: {sorted(unknown)}")
        if network_id not in self.networks:
            raise _failure(NotFound, "NetworkNotFound", 404, what, f"Network {network_id} could not be found.")
        port_id = self._new_id()
        mac = self._check_mac(network_id, port_id, attrs["mac_address"], what) if attrs.get("mac_address") \
            else self._new_mac()
        ips = self._allocate(network_id, port_id, fixed_ips, (), what)
        host = str(attrs.get("binding:host_id") or "")
        port = nm.Port(id=port_id, network_id=network_id, mac_address=mac, fixed_ips=ips,
                       name=str(attrs.get("name") or ""), device_owner=str(attrs.get("device_owner") or ""),
                       device_id=str(attrs.get("device_id") or ""), status="DOWN",
                       vnic_type=str(attrs.get("binding:vnic_type") or "normal"), revision_number=1,
                       project_id=self.project_id, created_at=self._now(),
                       allowed_address_pairs=tuple((a.get("ip_address", ""), a.get("mac_address", mac))
                                                   for a in attrs.get("allowed_address_pairs") or ()),
                       **self._binding(host))
        self.ports[port.id] = port
        self.port_admin_state[port.id] = bool(attrs.get("admin_state_up", True))
        return port

    def _binding(self, host: str) -> dict[str, Any]:
        if not host:
            return {"host_id": "", "vif_type": "unbound", "vif_details": {}}
        if self._known_hosts is not None and host not in self._known_hosts:
            return {"host_id": host, "vif_type": "binding_failed", "vif_details": {}}
        return {"host_id": host, "vif_type": "ovs", "vif_details": dict(OVS_VIF_DETAILS)}

    def _check_mac(self, network_id: str, port_id: str, value: str, what: str) -> str:
        mac = str(value).lower()
        parts = mac.split(":")
        if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
            raise _failure(InvalidRequest, "InvalidInput", 400, what,
                           f"Invalid input for mac_address. Reason: '{value}' is not a valid MAC address.")
        if any(p.network_id == network_id and p.id != port_id and p.mac_address == mac for p in self.ports.values()):
            raise _failure(AddressInUse, "MacAddressInUse", 409, what,
                           f"Unable to complete operation for network {network_id}. The mac address {mac} is in "
                           "use.")
        return mac

    def _allocate(self, network_id: str, port_id: str, requested: list[dict[str, str]],
                  current: tuple[nm.FixedIP, ...], what: str) -> tuple[nm.FixedIP, ...]:
        used = {(f.subnet_id, f.ip_address) for p in self.ports.values() if p.id != port_id for f in p.fixed_ips}
        result: list[nm.FixedIP] = []
        for entry in requested:
            unknown = set(entry) - {"subnet_id", "ip_address"}
            if unknown:
                raise TypeError(f"FakeNeutron: fixed_ips keys Neutron does not have: {sorted(unknown)}")
            address = ipaddress.ip_address(entry["ip_address"]) if entry.get("ip_address") else None
            subnet = self._subnet_for_fixed_ip(network_id, entry.get("subnet_id"), address, what)
            if address is not None:
                if address not in subnet.cidr or (subnet.cidr.version == 4 and subnet.cidr.prefixlen < 31 and address
                                                  in (subnet.cidr.network_address, subnet.cidr.broadcast_address)):
                    raise _failure(InvalidRequest, "InvalidIpForSubnet", 400, what,
                                   f"IP address {address} is not a valid IP for the specified subnet.")
                if (subnet.id, address) in used or any(f == nm.FixedIP(subnet.id, address) for f in result):
                    raise _failure(AddressInUse, "IpAddressAlreadyAllocated", 409, what,
                                   f"IP address {address} already allocated in subnet {subnet.id}")
            else:
                taken = used | {(f.subnet_id, f.ip_address) for f in (*current, *result)}
                address = self._next_free(subnet, taken)
                if address is None:
                    raise _failure(PoolExhausted, "IpAddressGenerationFailure", 409, what,
                                   f"No more IP addresses available on network {network_id}.")
            result.append(nm.FixedIP(subnet.id, address))
        return tuple(result)

    def _subnet_for_fixed_ip(self, network_id: str, subnet_id: str | None, address: nm.IPAddress | None,
                             what: str) -> nm.Subnet:
        if subnet_id:
            subnet = self.subnets.get(subnet_id)
            if subnet is None:
                raise _failure(NotFound, "SubnetNotFound", 404, what, f"Subnet {subnet_id} could not be found.")
            if subnet.network_id != network_id:
                raise _failure(InvalidRequest, "InvalidInput", 400, what,
                               f"Invalid input for operation: Failed to create port on network {network_id}, "
                               f"because fixed_ips included invalid subnet {subnet_id}.")
            return subnet
        if address is None:
            raise _failure(InvalidRequest, "InvalidInput", 400, what,
                           "Invalid input for operation: IP allocation requires subnet_id or ip_address.")
        found = [s for s in self.subnets.values() if s.network_id == network_id and address in s.cidr]
        if not found:
            raise _failure(InvalidRequest, "InvalidIpForNetwork", 400, what,
                           f"IP address {address} is not a valid IP for any of the subnets on the specified network.")
        return found[0]

    def _next_free(self, subnet: nm.Subnet, taken: set[tuple[str, nm.IPAddress]]) -> nm.IPAddress | None:
        for start, end in self.allocation_pools.get(subnet.id, []):
            address = start
            while address <= end:  # type: ignore[operator]
                if (subnet.id, address) not in taken:
                    return address
                address += 1
        return None

    @_api
    def update_port(self, port_id: str, if_revision: int | None = None, **attrs: Any) -> nm.Port:
        what = f"updating port {port_id}"
        unknown = set(attrs) - _PORT_UPDATE_ATTRS
        if unknown:
            raise TypeError(f"FakeNeutron.update_port: attributes Neutron does not have: {sorted(unknown)}")
        port = self._get("ports", port_id, what)
        if if_revision is not None and if_revision != port.revision_number:
            raise _failure(InvalidRequest, "RevisionNumberConstraintFailed", 412, what,
                           f"Constrained to {if_revision}, but current revision is {port.revision_number}")
        changes: dict[str, Any] = {}
        if "mac_address" in attrs and str(attrs["mac_address"]).lower() != port.mac_address:
            if port.vif_type not in UNPLUGGED_VIF_TYPES:
                raise _failure(Conflict, "PortBound", 409, what,
                               f"Unable to complete operation on port {port_id}, port is already bound, port type: "
                               f"{port.vif_type}, old_mac {port.mac_address}, new_mac {attrs['mac_address']}.")
            changes["mac_address"] = self._check_mac(port.network_id, port_id, attrs["mac_address"], what)
        if "fixed_ips" in attrs:
            changes["fixed_ips"] = self._allocate(port.network_id, port_id, list(attrs["fixed_ips"]), (), what)
        for key, field in (("name", "name"), ("device_owner", "device_owner"), ("device_id", "device_id"),
                           ("binding:vnic_type", "vnic_type")):
            if key in attrs:
                changes[field] = str(attrs[key] or "")
        if "binding:host_id" in attrs:
            changes.update(self._binding(str(attrs["binding:host_id"] or "")))
        if "allowed_address_pairs" in attrs:
            mac = changes.get("mac_address", port.mac_address)
            changes["allowed_address_pairs"] = tuple((a.get("ip_address", ""), a.get("mac_address", mac))
                                                     for a in attrs["allowed_address_pairs"] or ())
        if "admin_state_up" in attrs:
            self.port_admin_state[port_id] = bool(attrs["admin_state_up"])
        updated = dataclasses.replace(port, **changes, revision_number=port.revision_number + 1)
        self.ports[port_id] = updated
        return updated

    @_api
    def create_ports(self, network_id: str, count: int, **attrs: Any) -> list[nm.Port]:
        tags, fixed_ips = attrs.pop("tags", ()), attrs.pop("fixed_ips", [])
        made = [self._create_port(network_id, list(fixed_ips), dict(attrs)) for _ in range(count)]
        return [self._set_tags("ports", p.id, tags, "bulk") if tags else p for p in made]

    @_api
    def get_port(self, port_id: str) -> nm.Port:
        return self._get("ports", port_id, f"reading port {port_id}")

    @_api
    def list_ports(self, **query: Any) -> list[nm.Port]:
        return self._list("ports", query, "listing ports")

    @_api
    def delete_port(self, port_id: str) -> None:
        trunk = next((t for t in self.trunks.values() if any(s["port_id"] == port_id for s in t["sub_ports"])), None)
        if trunk is not None:
            raise _failure(Conflict, "PortInUseAsSubPort", 409, f"deleting port {port_id}",
                           f"Port {port_id} is currently a subport for trunk {trunk['id']}.")
        if port_id in self.ports:
            self._drop_port(port_id)

    def _drop_port(self, port_id: str) -> None:
        del self.ports[port_id]
        self.port_admin_state.pop(port_id, None)
        for trunk in self.trunks.values():
            trunk["sub_ports"] = [s for s in trunk["sub_ports"] if s["port_id"] != port_id]

    @_api
    def set_port_tags(self, port_id: str, tags: Iterable[str]) -> None:
        self._set_tags("ports", port_id, tags, f"tagging port {port_id}")

    # --- trunks (nested VLAN) ----------------------------------------------------------------------------------

    @_api
    def get_trunk(self, trunk_id: str) -> Mapping[str, Any]:
        trunk = self._trunk(trunk_id, f"reading trunk {trunk_id}")
        return {**trunk, "sub_ports": [dict(s) for s in trunk["sub_ports"]]}

    @_api
    def list_trunks(self, **query: Any) -> list[Mapping[str, Any]]:
        unknown = set(query) - {"port_id", "id", "name"}
        if unknown:
            raise NotImplementedError(f"FakeNeutron does not implement trunk filters {sorted(unknown)}")
        return [{**t, "sub_ports": [dict(s) for s in t["sub_ports"]]} for t in self.trunks.values()
                if all(t.get(k) == v for k, v in query.items())]

    @_api
    def add_subports(self, trunk_id: str, subports: list[dict[str, Any]]) -> None:
        what = f"adding subports to trunk {trunk_id}"
        trunk = self._trunk(trunk_id, what)
        for sub in subports:
            if sub["port_id"] not in self.ports:
                raise _failure(NotFound, "PortNotFound", 404, what, f"Port {sub['port_id']} could not be found.")
            if not 1 <= int(sub["segmentation_id"]) <= 4094:
                raise _failure(InvalidRequest, "InvalidInput", 400, what, "Invalid input for operation: "
                               f"Segmentation ID '{sub['segmentation_id']}' is not in range.")
            if any(s["port_id"] == sub["port_id"] for t in self.trunks.values() for s in t["sub_ports"]) or any(
                    t["port_id"] == sub["port_id"] for t in self.trunks.values()):
                raise _failure(Conflict, "TrunkPortInUse", 409, what,
                               f"Port {sub['port_id']} is in use by another trunk.")
            if any(s["segmentation_id"] == sub["segmentation_id"] for s in trunk["sub_ports"]):
                raise _failure(Conflict, "DuplicateSubPort", 409, what,
                               f"segmentation_type vlan and segmentation_id {sub['segmentation_id']} already in use "
                               f"on trunk {trunk_id}.")
        trunk["sub_ports"] += [dict(s) for s in subports]
        for sub in subports:  # what Neutron's trunk plugin (ML2/OVN) does to a new subport
            self.ports[sub["port_id"]] = dataclasses.replace(self.ports[sub["port_id"]], device_owner="trunk:subport",
                                                             vif_type="ovs", vif_details=dict(OVS_VIF_DETAILS))

    @_api
    def remove_subports(self, trunk_id: str, port_ids: list[str]) -> None:
        what = f"removing subports from trunk {trunk_id}"
        trunk = self._trunk(trunk_id, what)
        for port_id in port_ids:
            if not any(s["port_id"] == port_id for s in trunk["sub_ports"]):
                raise _failure(NotFound, "SubPortNotFound", 404, what,
                               f"SubPort {port_id} on trunk {trunk_id} could not be found.")
        trunk["sub_ports"] = [s for s in trunk["sub_ports"] if s["port_id"] not in port_ids]
        for port_id in port_ids:  # Neutron's trunk plugin clears what it set on the subport
            if port_id in self.ports:
                self.ports[port_id] = dataclasses.replace(self.ports[port_id], device_owner="", vif_type="unbound",
                                                          vif_details={})

    def _trunk(self, trunk_id: str, what: str) -> dict[str, Any]:
        trunk = self.trunks.get(trunk_id)
        if trunk is None:
            raise _failure(NotFound, "TrunkNotFound", 404, what, f"Trunk {trunk_id} could not be found.")
        return trunk

    # --- discovery ----------------------------------------------------------------------------------------------

    @_api
    def extensions(self) -> set[str]:
        return {"standard-attr-tag", "subnet_allocation", "binding", "trunk", "port-security",
                "tag-ports-during-bulk-creation", "standard-attr-revisions", "revision-if-match", "filter-validation"}

    @_api
    def agents(self) -> list[nm.Agent]:
        return list(self.agent_list)

    # --- shared helpers -------------------------------------------------------------------------------------

    def _table(self, kind: str) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]] = {"networks": self.networks, "subnets": self.subnets,
                                             "subnetpools": self.subnetpools, "ports": self.ports}
        return tables[kind]

    def _get(self, kind: str, resource_id: str, what: str) -> Any:
        found = self._table(kind).get(resource_id)
        if found is None:
            singular = {"networks": "Network", "subnets": "Subnet", "subnetpools": "Subnet pool",
                        "ports": "Port"}[kind]
            kind_name = singular.replace(" ", "")
            raise _failure(NotFound, f"{kind_name}NotFound", 404, what,
                           f"{singular} {resource_id} could not be found.")
        return found

    def _set_tags(self, kind: str, resource_id: str, tags: Iterable[str], what: str) -> Any:
        record = self._get(kind, resource_id, what)
        new_tags = frozenset(tags)
        for tag in new_tags:
            if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LEN:
                raise _failure(InvalidRequest, "InvalidInput", 400, what,
                               f"Invalid input for operation: '{tag}' exceeds maximum length of {MAX_TAG_LEN}.")
        changes: dict[str, Any] = {"tags": new_tags}
        if kind == "ports":
            changes["revision_number"] = record.revision_number + 1
        self._table(kind)[resource_id] = dataclasses.replace(record, **changes)
        return self._table(kind)[resource_id]

    def _list(self, kind: str, query: dict[str, Any], what: str) -> list[Any]:
        allowed = _FILTERS[kind]
        unknown = [k for k in query if k not in allowed and k not in allowed.values()]
        if unknown:  # what openstacksdk does before sending anything
            raise NeutronError(f"{what}: Invalid query params: {','.join(sorted(unknown))}")
        filters = {allowed.get(k, k): v for k, v in query.items()}
        return [r for r in self._table(kind).values() if all(_matches(r, k, v) for k, v in filters.items())]


def _default_pools(cidr: nm.IPNetwork, gateway: nm.IPAddress | None) -> list[tuple[nm.IPAddress, nm.IPAddress]]:
    """Neutron's default allocation pools: the whole subnet less network, (v4) broadcast and gateway addresses."""
    if cidr.num_addresses <= 2:
        return [(cidr[0], cidr[-1])]
    first, last = cidr[1], cidr[-2] if cidr.version == 4 else cidr[-1]
    if gateway is None or not first <= gateway <= last:  # type: ignore[operator]
        return [(first, last)]
    return [(a, b) for a, b in ((first, gateway - 1), (gateway + 1, last)) if a <= b]  # type: ignore[operator]


def _split(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return [str(v) for v in value]


def _matches(record: Any, key: str, value: Any) -> bool:
    if key in ("tags", "tags-any", "not-tags", "not-tags-any"):
        wanted = set(_split(value))
        have = record.tags
        return {"tags": wanted <= have, "tags-any": bool(wanted & have), "not-tags": not wanted <= have,
                "not-tags-any": not (wanted & have)}[key]
    if key == "fixed_ips":
        return _matches_fixed_ips(record, [value] if isinstance(value, str) else list(value))
    attr = _ATTRS.get(key)
    if attr is None:
        raise NotImplementedError(f"FakeNeutron does not implement the {key!r} filter")
    have = getattr(record, attr)
    values = value if isinstance(value, list | tuple | set | frozenset) else [value]
    return any(_same(have, v) for v in values)


def _same(have: Any, wanted: Any) -> bool:
    if isinstance(have, bool) or isinstance(wanted, bool):
        return str(have).lower() == str(wanted).lower()
    if have is None:
        return wanted is None or wanted == ""
    return str(have).lower() == str(wanted).lower() if isinstance(have, str) else str(have) == str(wanted)


def _matches_fixed_ips(port: nm.Port, conditions: list[str]) -> bool:
    """Neutron's ``fixed_ips`` filter: one of the port's allocations meets every condition (OR within a key)."""
    wanted: dict[str, set[str]] = collections.defaultdict(set)
    for condition in conditions:
        key, sep, val = condition.partition("=")
        if not sep or key not in ("subnet_id", "ip_address"):
            raise NotImplementedError(f"FakeNeutron does not implement the fixed_ips filter {condition!r}")
        wanted[key].add(str(ipaddress.ip_address(val)) if key == "ip_address" else val)
    return any(all({"subnet_id": f.subnet_id, "ip_address": str(f.ip_address)}[k] in vals
                   for k, vals in wanted.items()) for f in port.fixed_ips)


class FakeBinder:
    """Stands in for ``courier.binding.manager.Binder``: records calls, can be told to fail."""

    def __init__(self) -> None:
        self.bound: dict[str, VIF] = {}  # endpoint id -> VIF of the current binding
        self.bind_calls: list[VIF] = []
        self.unbind_calls: list[VIF] = []
        self.unbind_endpoint_calls: list[str] = []
        self.closed = False
        self.bind_error: BaseException | None = None
        self.unbind_error: BaseException | None = None
        # the warm pool's view of the host: port id -> label of its plugged interface; ports whose veth is there
        self.plugged: dict[str, str] = {}
        self.present: set[str] = set()
        self.resets: list[str] = []
        self.announced: list[str] = []  # port ids whose addresses were announced (a bind announces too)
        self.prepluggable = True

    def bind(self, vif: VIF) -> str:
        self.bind_calls.append(vif)
        if self.bind_error is not None:
            raise self.bind_error
        self.bound[vif.endpoint_id] = vif
        self.plugged[vif.port_id] = vif.endpoint_id
        self.present.add(vif.port_id)
        self.announced.append(vif.port_id)
        return vif.container_ifname

    def announce(self, vif: VIF) -> None:
        self.announced.append(vif.port_id)

    def unbind(self, vif: VIF) -> None:
        self.unbind_calls.append(vif)
        if self.unbind_error is not None:
            raise self.unbind_error
        self.bound.pop(vif.endpoint_id, None)
        self.plugged.pop(vif.port_id, None)
        self.present.discard(vif.port_id)

    def label(self, vif: VIF, owner: str) -> None:
        if vif.port_id in self.plugged:
            self.plugged[vif.port_id] = owner

    def recorded_owner(self, vif: VIF) -> str | None:
        return self.plugged.get(vif.port_id)

    def plugged_for(self, vif: VIF) -> str | None:
        return self.plugged.get(vif.port_id) if vif.port_id in self.present else None

    def reset(self, vif: VIF) -> None:
        self.resets.append(vif.port_id)

    def port_of_endpoint(self, endpoint_id: str) -> str | None:
        return next((pid for pid, owner in self.plugged.items() if owner == endpoint_id), None)

    def unbind_endpoint(self, endpoint_id: str) -> None:
        """What is left on the host by an endpoint whose Neutron port is gone."""
        self.unbind_endpoint_calls.append(endpoint_id)
        if self.unbind_error is not None:
            raise self.unbind_error
        self.bound.pop(endpoint_id, None)

    def close(self) -> None:
        self.closed = True
