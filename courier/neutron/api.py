"""The only Neutron calls Courier makes: one method, one HTTP request (plus bounded retries when idempotent).

Returns ``courier.neutron.models`` records, never SDK objects, so the rest of Courier neither depends on
openstacksdk's resource classes nor makes hidden calls through them.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import openstack
from openstack.network.v2 import network as sdk_network
from openstack.network.v2 import port as sdk_port
from openstack.network.v2 import subnet as sdk_subnet

from courier.exceptions import NeutronTimeout, NeutronUnavailable
from courier.neutron import models as nm
from courier.neutron.connection import backoff_delays, sleep
from courier.neutron.errors import translated

LOG = logging.getLogger(__name__)
T = TypeVar("T")

IDEMPOTENT_RETRIES = 2


class Neutron:
    def __init__(self, conn: openstack.connection.Connection):
        self._conn = conn
        self._proxy: Any = None
        self._proxy_lock = threading.Lock()

    @property
    def _net(self) -> Any:
        """The network proxy, made on first use: Courier starts (and later recovers) while Neutron is down."""
        if self._proxy is None:
            with self._proxy_lock, translated("finding the Neutron endpoint"):
                if self._proxy is None:
                    self._proxy = self._conn.network
        return self._proxy

    # --- helpers ---------------------------------------------------------------------------------------------

    def _idempotent(self, what: str, call: Callable[[], T]) -> T:
        """Retry a read or a delete a bounded number of times when Neutron is briefly unavailable.

        Only calls that may safely run twice come here: creates and updates are never repeated (a lost reply
        may hide a success). A timeout is not retried either, so a hanging Neutron costs one timeout per call.
        """
        delays = backoff_delays(IDEMPOTENT_RETRIES)
        for attempt in range(IDEMPOTENT_RETRIES + 1):
            try:
                with translated(what):
                    return call()
            except NeutronUnavailable as exc:
                if attempt == IDEMPOTENT_RETRIES or isinstance(exc, NeutronTimeout):
                    raise  # a timeout already waited [courier] neutron_timeout: waiting again only delays Docker
                LOG.warning("%s: Neutron unavailable, retrying in %.1fs", what, delays[attempt])
                sleep(delays[attempt])
        raise AssertionError("unreachable")

    # --- networks --------------------------------------------------------------------------------------------

    def create_network(self, name: str, shared: bool | None = None) -> nm.Network:
        attrs: dict[str, Any] = {"name": name, "admin_state_up": True}
        if shared is not None:
            attrs["shared"] = shared
        with translated(f"creating network {name}"):
            return _network(self._net.create_network(**attrs))

    def get_network(self, network_id: str) -> nm.Network:
        return self._idempotent(f"reading network {network_id}",
                                lambda: _network(self._net.get_network(network_id)))

    def list_networks(self, **query: Any) -> list[nm.Network]:
        return self._idempotent("listing networks", lambda: [_network(n) for n in self._net.networks(**query)])

    def delete_network(self, network_id: str) -> None:
        self._idempotent(f"deleting network {network_id}",
                         lambda: self._net.delete_network(network_id, ignore_missing=True))

    def set_network_tags(self, network_id: str, tags: Iterable[str]) -> None:
        res = sdk_network.Network.existing(id=network_id)
        self._idempotent(f"tagging network {network_id}", lambda: self._net.set_tags(res, sorted(tags)))

    # --- subnets ---------------------------------------------------------------------------------------------

    def create_subnet(self, network_id: str, cidr: nm.IPNetwork, *, name: str, gateway_ip: str | None,
                      subnetpool_id: str | None, enable_dhcp: bool,
                      allocation_pools: list[dict[str, str]] | None = None) -> nm.Subnet:
        attrs: dict[str, Any] = {"network_id": network_id, "cidr": str(cidr), "ip_version": cidr.version,
                                 "name": name, "enable_dhcp": enable_dhcp, "gateway_ip": gateway_ip}
        if allocation_pools:
            attrs["allocation_pools"] = allocation_pools
        if subnetpool_id:
            attrs["subnetpool_id"] = subnetpool_id
        if cidr.version == 6:
            # SLAAC would let the kernel pick an address Neutron does not know; addresses come from Neutron.
            attrs["ipv6_address_mode"] = "dhcpv6-stateful" if enable_dhcp else None
        with translated(f"creating subnet {cidr} on network {network_id}"):
            return _subnet(self._net.create_subnet(**attrs))

    def update_subnet(self, subnet_id: str, **attrs: Any) -> nm.Subnet:
        with translated(f"updating subnet {subnet_id}"):
            return _subnet(self._net.update_subnet(subnet_id, **attrs))

    def list_subnets(self, **query: Any) -> list[nm.Subnet]:
        return self._idempotent("listing subnets", lambda: [_subnet(s) for s in self._net.subnets(**query)])

    def get_subnet(self, subnet_id: str) -> nm.Subnet:
        return self._idempotent(f"reading subnet {subnet_id}", lambda: _subnet(self._net.get_subnet(subnet_id)))

    def delete_subnet(self, subnet_id: str) -> None:
        self._idempotent(f"deleting subnet {subnet_id}",
                         lambda: self._net.delete_subnet(subnet_id, ignore_missing=True))

    def set_subnet_tags(self, subnet_id: str, tags: Iterable[str]) -> None:
        res = sdk_subnet.Subnet.existing(id=subnet_id)
        self._idempotent(f"tagging subnet {subnet_id}", lambda: self._net.set_tags(res, sorted(tags)))

    # --- subnetpools ------------------------------------------------------------------------------------------

    def create_subnetpool(self, name: str, prefix: nm.IPNetwork, shared: bool | None = None) -> nm.SubnetPool:
        attrs: dict[str, Any] = {"name": name, "prefixes": [str(prefix)], "default_prefixlen": prefix.prefixlen}
        if shared is not None:
            attrs["shared"] = shared
        with translated(f"creating subnetpool {name}"):
            return _subnetpool(self._net.create_subnet_pool(**attrs))

    def get_subnetpool(self, pool_id: str) -> nm.SubnetPool:
        return self._idempotent(f"reading subnetpool {pool_id}",
                                lambda: _subnetpool(self._net.get_subnet_pool(pool_id)))

    def list_subnetpools(self, **query: Any) -> list[nm.SubnetPool]:
        return self._idempotent("listing subnetpools",
                                lambda: [_subnetpool(p) for p in self._net.subnet_pools(**query)])

    def delete_subnetpool(self, pool_id: str) -> None:
        self._idempotent(f"deleting subnetpool {pool_id}",
                         lambda: self._net.delete_subnet_pool(pool_id, ignore_missing=True))

    def set_subnetpool_tags(self, pool_id: str, tags: Iterable[str]) -> None:
        from openstack.network.v2 import subnet_pool as sdk_pool

        res = sdk_pool.SubnetPool.existing(id=pool_id)
        self._idempotent(f"tagging subnetpool {pool_id}", lambda: self._net.set_tags(res, sorted(tags)))

    # --- ports -----------------------------------------------------------------------------------------------

    def create_port(self, network_id: str, fixed_ips: list[dict[str, str]], **attrs: Any) -> nm.Port:
        with translated(f"creating a port on network {network_id}"):
            return _port(self._net.create_port(network_id=network_id, fixed_ips=fixed_ips, **attrs))

    def create_ports(self, network_id: str, count: int, **attrs: Any) -> list[nm.Port]:
        """``count`` ports with the same attributes in one bulk POST (addresses chosen by Neutron)."""
        with translated(f"creating {count} ports on network {network_id}"):
            return [_port(p) for p in self._net.create_ports([{"network_id": network_id, **attrs}
                                                              for _ in range(count)])]

    def update_port(self, port_id: str, if_revision: int | None = None, **attrs: Any) -> nm.Port:
        with translated(f"updating port {port_id}"):
            return _port(self._net.update_port(port_id, if_revision=if_revision, **attrs))

    def get_port(self, port_id: str) -> nm.Port:
        return self._idempotent(f"reading port {port_id}", lambda: _port(self._net.get_port(port_id)))

    def list_ports(self, **query: Any) -> list[nm.Port]:
        return self._idempotent("listing ports", lambda: [_port(p) for p in self._net.ports(**query)])

    def delete_port(self, port_id: str) -> None:
        self._idempotent(f"deleting port {port_id}", lambda: self._net.delete_port(port_id, ignore_missing=True))

    def set_port_tags(self, port_id: str, tags: Iterable[str]) -> None:
        res = sdk_port.Port.existing(id=port_id)
        self._idempotent(f"tagging port {port_id}", lambda: self._net.set_tags(res, sorted(tags)))

    # --- trunks (nested VLAN) ----------------------------------------------------------------------------------

    def get_trunk(self, trunk_id: str) -> Mapping[str, Any]:
        return self._idempotent(f"reading trunk {trunk_id}", lambda: self._net.get_trunk(trunk_id).to_dict())

    def add_subports(self, trunk_id: str, subports: list[dict[str, Any]]) -> None:
        with translated(f"adding subports to trunk {trunk_id}"):
            self._net.add_trunk_subports(trunk_id, subports)

    def remove_subports(self, trunk_id: str, port_ids: list[str]) -> None:
        with translated(f"removing subports from trunk {trunk_id}"):
            self._net.delete_trunk_subports(trunk_id, [{"port_id": p} for p in port_ids])

    def list_trunks(self, **query: Any) -> list[Mapping[str, Any]]:
        return self._idempotent("listing trunks", lambda: [t.to_dict() for t in self._net.trunks(**query)])

    # --- discovery ----------------------------------------------------------------------------------------------

    def extensions(self) -> set[str]:
        return self._idempotent("listing extensions", lambda: {e.alias for e in self._net.extensions()})

    def agents(self) -> list[nm.Agent]:
        return self._idempotent("listing agents", lambda: [
            nm.Agent(agent_type=a.agent_type or "", host=a.host or "", alive=bool(a.is_alive))
            for a in self._net.agents()])


# --- SDK resource -> Courier record ------------------------------------------------------------------------------


def _network(n: Any) -> nm.Network:
    return nm.Network(id=n.id, name=n.name or "", mtu=int(n.mtu or 1500), tags=frozenset(n.tags or ()),
                      subnet_ids=tuple(n.subnet_ids or ()), shared=bool(n.is_shared), created_at=n.created_at or "")


def _ip(value: str | None) -> nm.IPAddress | None:
    return ipaddress.ip_address(value) if value else None


def _subnet(s: Any) -> nm.Subnet:
    routes = tuple((ipaddress.ip_network(r["destination"]), ipaddress.ip_address(r["nexthop"]))
                   for r in (s.host_routes or ()))
    return nm.Subnet(id=s.id, network_id=s.network_id, cidr=ipaddress.ip_network(s.cidr),
                     gateway_ip=_ip(s.gateway_ip), subnetpool_id=s.subnet_pool_id, name=s.name or "",
                     tags=frozenset(s.tags or ()), host_routes=routes,
                     dns_nameservers=tuple(s.dns_nameservers or ()))


def _subnetpool(p: Any) -> nm.SubnetPool:
    return nm.SubnetPool(id=p.id, name=p.name or "", prefixes=tuple(ipaddress.ip_network(x) for x in p.prefixes),
                         default_prefixlen=int(p.default_prefix_length or 0), ip_version=int(p.ip_version or 4),
                         tags=frozenset(p.tags or ()), shared=bool(p.is_shared), created_at=p.created_at or "")


def _port(p: Any) -> nm.Port:
    return nm.Port(
        id=p.id, network_id=p.network_id, mac_address=p.mac_address,
        fixed_ips=tuple(nm.FixedIP(f["subnet_id"], ipaddress.ip_address(f["ip_address"])) for f in p.fixed_ips or ()),
        name=p.name or "", device_owner=p.device_owner or "", device_id=p.device_id or "", status=p.status or "",
        host_id=p.binding_host_id or "", vif_type=p.binding_vif_type or "", vnic_type=p.binding_vnic_type or "normal",
        vif_details=dict(p.binding_vif_details or {}), tags=frozenset(p.tags or ()),
        revision_number=int(p.revision_number or 0), project_id=p.project_id or "",
        allowed_address_pairs=tuple((a.get("ip_address", ""), a.get("mac_address", ""))
                                    for a in p.allowed_address_pairs or ()),
        created_at=p.created_at or "",
    )
