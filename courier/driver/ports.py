"""Neutron ports as Docker addresses: allocate, adopt a pre-created one, give back, delete."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

from courier import logcontext
from courier.driver.lookup import Lookup
from courier.driver.nested import Nesting
from courier.driver.state import PoolRecord, State
from courier.exceptions import AddressInUse, InvalidRequest, NotFound
from courier.neutron import models as nm
from courier.neutron import tags
from courier.neutron.api import Neutron
from courier.pool import PortPools

LOG = logging.getLogger(__name__)

ENDPOINT_OWNED = "courier.endpoint-port"  # made by CreateEndpoint (foreign IPAM): deleted by DeleteEndpoint


class Ports:
    def __init__(self, neutron: Neutron, state: State, lookup: Lookup, host_id: str, nesting: Nesting | None = None,
                 pools: PortPools | None = None):
        self._neutron, self._state, self._lookup, self._host = neutron, state, lookup, host_id
        self._nesting = nesting  # deployment_type = nested: ports ride on the VM's port, no host binds them
        self._pools = pools  # the warm pools' ports are never another request's to take, delete or merge

    @property
    def requires_mac(self) -> bool:
        return True if self._nesting is None else self._nesting.requires_mac

    def _placed(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return attrs if self._nesting is None else self._nesting.port_attrs(attrs)

    def allocate(self, pool: PoolRecord, address: str | None, mac: str | None) -> nm.Port:
        """One Neutron port (one call) per container; the second family of a dual-stack one joins it.

        Idempotent on what Docker sends: a RequestAddress retried after Courier died mid-call finds the port the
        first attempt made (by MAC or address) instead of failing on it.
        """
        subnet = pool.subnet
        if subnet is None:
            raise NotFound(f"pool {pool.pool_id} ({pool.cidr}) has no Neutron subnet yet: "
                           "addresses are given out once its Docker network exists")
        fixed: dict[str, str] = {"subnet_id": subnet.id}
        if address:
            fixed["ip_address"] = address
        if mac:
            sibling = self._state.ports_by_mac.get((subnet.network_id, mac))
            if sibling is not None:
                found = self._same_container(sibling, subnet, fixed, address)
                if found is not None:
                    return self._handed_out(found, subnet)
        attrs: dict[str, Any] = {"device_owner": tags.DEVICE_OWNER, "binding:host_id": self._host,
                                 "admin_state_up": True, "name": tags.IPAM_PORT_NAME}
        if mac:
            attrs["mac_address"] = mac
        try:
            port = self._neutron.create_port(subnet.network_id, [fixed], **self._placed(attrs))
        except AddressInUse as exc:
            kind = getattr(exc, "neutron_type", "")
            if kind == "MacAddressInUse" and mac:
                return self._handed_out(self._port_with_mac(subnet, mac, fixed, address), subnet)
            if address and kind == "IpAddressAlreadyAllocated":
                return self._handed_out(self._adopt(subnet, address, mac), subnet)
            raise AddressInUse(f"address {address} is already in use in {subnet.cidr}") from exc
        logcontext.bind(port=port.id)
        return self._handed_out(port, subnet)

    def _handed_out(self, port: nm.Port, subnet: nm.Subnet) -> nm.Port:
        self._state.remember_port(port)
        self._state.allocated.add((port.id, subnet.id))
        return port

    def _same_container(self, port: nm.Port, subnet: nm.Subnet, fixed: dict[str, str],
                        address: str | None) -> nm.Port | None:
        """The port this process gave the endpoint's first family, for its second family (dual stack)."""
        have = port.ip_in(subnet.id)
        if have is None:
            return self._add_address(port, fixed)
        if (address and str(have) == address and tags.EXISTING_PORT in port.tags
                and (port.id, subnet.id) not in self._state.allocated):
            return port  # a pre-created dual-stack port: the second address is on it already
        return None

    def _add_address(self, port: nm.Port, fixed: dict[str, str]) -> nm.Port:
        current = [{"subnet_id": f.subnet_id, "ip_address": str(f.ip_address)} for f in port.fixed_ips]
        updated = self._neutron.update_port(port.id, fixed_ips=[*current, fixed])
        self._state.remember_port(updated)
        return updated

    def _port_with_mac(self, subnet: nm.Subnet, mac: str, fixed: dict[str, str], address: str | None) -> nm.Port:
        found = self._neutron.list_ports(network_id=subnet.network_id, mac_address=mac)
        for port in found:
            if port.device_owner != tags.DEVICE_OWNER:
                continue
            have = port.ip_in(subnet.id)
            if have is None:
                return self._add_address(port, fixed)
            if (address is None or str(have) == address) and self._left_by_a_crash(port, subnet):
                LOG.info("port %s answers a retried RequestAddress (MAC %s)", port.id, mac)
                return port
        raise AddressInUse(f"MAC address {mac} is already used by another port on network {subnet.network_id}")

    def _left_by_a_crash(self, port: nm.Port, subnet: nm.Subnet) -> bool:
        """Courier's port, given out by a RequestAddress whose reply never reached Docker: no endpoint has
        claimed it and this process did not hand it out (the first attempt died with the process before)."""
        unclaimed = not port.device_id and tags.docker_id_from_tags(port.tags) is None
        return (port.device_owner == tags.DEVICE_OWNER and unclaimed and not self._pooled(port)
                and (port.id, subnet.id) not in self._state.allocated)

    def _pooled(self, port: nm.Port) -> bool:
        return self._pools is not None and self._pools.holds(port.id)

    def merge(self, ports: list[nm.Port], fixed_ips: list[dict[str, str]]) -> nm.Port | None:
        """One port for an endpoint whose addresses Courier gave out on separate ports (dual stack without
        Docker's MAC to pair them, i.e. with warm pools on): the first keeps all addresses, the others go.
        None when they are not all such ports."""
        for port in ports:
            claimed = port.device_id or tags.docker_id_from_tags(port.tags) is not None
            if claimed or port.device_owner != tags.DEVICE_OWNER or tags.EXISTING_PORT in port.tags \
                    or self._pooled(port):
                return None
        keep, others = ports[0], ports[1:]
        for other in others:
            self._state.forget_port(other)
            self._neutron.delete_port(other.id)  # frees its address for the update below
        merged = self._neutron.update_port(keep.id, fixed_ips=fixed_ips)
        self._state.remember_port(merged)
        self._state.allocated |= {(keep.id, f["subnet_id"]) for f in fixed_ips}
        return merged

    def _adopt(self, subnet: nm.Subnet, address: str, mac: str | None) -> nm.Port:
        """``--ip`` names the address of a port made beforehand in Neutron: use that port, give it back later."""
        port = self._lookup.port_by_address(subnet.network_id, subnet.id, address)
        if port is None:
            raise AddressInUse(f"address {address} is already in use in {subnet.cidr}")
        if self._left_by_a_crash(port, subnet):
            LOG.info("port %s answers a retried RequestAddress (address %s)", port.id, address)
            return port
        if (tags.EXISTING_PORT in port.tags and any(pid == port.id for pid, _ in self._state.allocated)
                and (port.id, subnet.id) not in self._state.allocated):
            return port  # adopted for the endpoint's other family a moment ago (a dual-stack pre-created port)
        if port.device_owner or port.device_id or port.host_id:
            raise AddressInUse(f"address {address} is already in use by port {port.id} (device_owner "
                               f"{port.device_owner or '-'}, device_id {port.device_id or '-'}); "
                               "only a free, unbound Neutron port can be adopted with --ip")
        marker = {tags.EXISTING_PORT}
        attrs: dict[str, Any] = {"device_owner": tags.DEVICE_OWNER, "binding:host_id": self._host}
        if mac and mac != port.mac_address.lower():
            # Docker has already chosen the container's MAC; remember the port's own to restore it.
            attrs["mac_address"] = mac
            marker.add(tags.ORIGINAL_MAC + port.mac_address)
        self._neutron.set_port_tags(port.id, port.tags | marker)  # first: a crash now still marks it as not ours
        self._state.forget_port(port)
        try:
            adopted = self._neutron.update_port(port.id, **self._placed(attrs))
        except Exception:
            with contextlib.suppress(Exception):  # leave the user's port as it was
                self._neutron.set_port_tags(port.id, port.tags)
            raise
        LOG.info("adopted pre-created port %s for %s", port.id, address)
        return adopted

    def release(self, port: nm.Port) -> None:
        """Delete a port Courier made; give an adopted one back as it was; leave anything else alone."""
        if self._nesting is not None:  # still behind the VM port (DeleteEndpoint did not run or failed)
            port = self._nesting.detach(port)
        self._state.settle(port.id)
        self._state.forget_port(port)
        if tags.EXISTING_PORT in port.tags:
            self._give_back(port)
        elif port.device_owner == tags.DEVICE_OWNER:
            # Docker ignores a failed ReleaseAddress: while Neutron is unavailable the delete is retried here
            self._state.deferred.delete(f"deleting port {port.id}", lambda: self._neutron.delete_port(port.id))
        else:
            LOG.warning("port %s (device_owner %r) is not Courier's; left alone", port.id, port.device_owner)

    def _give_back(self, port: nm.Port) -> None:
        unbind: dict[str, Any] = {"device_owner": "", "device_id": "", "binding:host_id": ""}
        self._neutron.update_port(port.id, **unbind)
        original_mac = next((t[len(tags.ORIGINAL_MAC):] for t in port.tags if t.startswith(tags.ORIGINAL_MAC)), None)
        if original_mac:  # only once unbound: Neutron refuses MAC changes on a bound port
            self._neutron.update_port(port.id, mac_address=original_mac)
        ours = {tags.EXISTING_PORT, *tags.docker_id_tags(port.device_id or "x" * 64)}
        self._neutron.set_port_tags(port.id, {t for t in port.tags if t not in ours
                                              and not t.startswith((tags.ORIGINAL_MAC, tags.LOW_HALF, tags.HIGH_HALF))})
        LOG.info("gave pre-created port %s back", port.id)

    def release_endpoint_port(self, port: nm.Port) -> None:
        self._state.forget_port(port)
        self._state.deferred.delete(f"deleting port {port.id}", lambda: self._neutron.delete_port(port.id))

    def create_for_endpoint(self, network_id: str, fixed_ips: list[dict[str, str]], mac: str | None,
                            endpoint_id: str) -> nm.Port:
        """A network whose addresses come from another IPAM driver: the port is made (and deleted) here."""
        attrs: dict[str, Any] = {"device_owner": tags.DEVICE_OWNER, "device_id": endpoint_id,
                                 "name": tags.endpoint_port_name(endpoint_id), "binding:host_id": self._host,
                                 "admin_state_up": True}
        if mac:
            attrs["mac_address"] = mac
        port_tags = {*tags.docker_id_tags(endpoint_id), ENDPOINT_OWNED, tags.DEVICE_OWNER}
        port = self._neutron.create_port(network_id, fixed_ips, **self._placed(attrs))
        try:
            self._neutron.set_port_tags(port.id, port_tags)
        except Exception:
            self._neutron.delete_port(port.id)
            raise
        tagged = dataclasses.replace(port, tags=frozenset(port_tags))
        self._state.remember_port(tagged)
        return tagged


def address_only(cidr_or_ip: str, field: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_interface(cidr_or_ip).ip)
    except ValueError as exc:
        raise InvalidRequest(f"{field}: {cidr_or_ip!r} is not an IP address") from exc
