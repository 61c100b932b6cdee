"""Docker endpoints: the Neutron port gets the endpoint's identity; Join binds it, Leave unbinds it."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from oslo_config import cfg

from courier import logcontext, metrics
from courier.binding.manager import Binder
from courier.binding.vif import VIF
from courier.driver.lookup import Lookup
from courier.driver.models import Attachment, EndpointSpec, Route
from courier.driver.nested import Nesting
from courier.driver.ports import ENDPOINT_OWNED, Ports, address_only
from courier.driver.state import EndpointRecord, NetworkRecord, State
from courier.exceptions import AddressInUse, InvalidRequest, NotFound
from courier.neutron import models as nm
from courier.neutron import tags
from courier.neutron.api import Neutron
from courier.neutron.vif import vif_for
from courier.pool import PortPools

LOG = logging.getLogger(__name__)


class Endpoints:
    def __init__(self, conf: cfg.ConfigOpts, neutron: Neutron, state: State, lookup: Lookup, ports: Ports,
                 binder: Binder, nesting: Nesting | None = None, pools: PortPools | None = None):
        self._conf, self._neutron, self._state = conf, neutron, state
        self._lookup, self._ports, self._binder = lookup, ports, binder
        self._nesting = nesting  # deployment_type = nested: CreateEndpoint attaches the port to the VM's port
        self._pools = pools  # warm pools: a pooled port is claimed, joined and given back without Neutron
        # Independent Neutron updates of one endpoint go out together: one round trip instead of two.
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="neutron")

    def create(self, spec: EndpointSpec) -> str | None:
        """Give the endpoint its Neutron port. Returns the MAC the container's interface must take (None: the
        device keeps its own, e.g. an ipvlan device has the VM's)."""
        addresses = [address_only(a, "endpoint address") for a in spec.addresses if a]
        if not addresses:
            raise InvalidRequest("the endpoint has no IP address: Neutron ports need one (use --ipam-driver "
                                 "kuryr, or give the network a subnet)")
        mac = spec.interface_mac or spec.wanted_mac
        with self._state.locks.hold(spec.endpoint_id):
            known = self._state.endpoints.get(spec.endpoint_id)
            if known is not None:  # Docker retried
                return self._container_mac(known.port)
            network = self._lookup.require_network(spec.network_id)
            fixed = [{"subnet_id": self._subnet_for(network, ip).id, "ip_address": ip} for ip in addresses]
            found = self._port_of_addresses(network, fixed, paired_by_mac=spec.interface_mac is not None)
            if found is not None:
                port = self._claim(found, spec, mac, addresses)
            else:
                port = self._ports.create_for_endpoint(network.network.id, fixed, mac, spec.endpoint_id)
            if self._nesting is not None:
                port = self._nest(port, spec.interface_mac, created=found is None)
            logcontext.bind(port=port.id)
            self._state.endpoints[spec.endpoint_id] = EndpointRecord(spec.endpoint_id, network, port)
            self._state.remember_port(port)
            return self._container_mac(port)

    def _port_of_addresses(self, network: NetworkRecord, fixed: list[dict[str, str]],
                           paired_by_mac: bool) -> nm.Port | None:
        """The port RequestAddress made (or the user made) for these addresses; None: there is none yet."""
        found = {p.id: p for p in (self._lookup.port_by_address(network.network.id, f["subnet_id"], f["ip_address"])
                                   for f in fixed) if p is not None}
        if len(found) <= 1:
            return next(iter(found.values()), None)
        # Without a MAC in RequestAddress (warm pools on, so Docker sends none, or sends only the user's
        # --mac-address with CreateEndpoint) the two families could not be paired: merge them
        if paired_by_mac and not (self._pools is not None and self._pools.enabled):
            merged = None
        else:
            merged = self._ports.merge(list(found.values()), fixed)
        if merged is None:
            raise InvalidRequest(f"addresses {', '.join(f['ip_address'] for f in fixed)} belong to different "
                                 f"ports: {', '.join(found)}")
        return merged

    def _container_mac(self, port: nm.Port) -> str | None:
        return port.mac_address if self._nesting is None else self._nesting.reply_mac(port)

    def _nest(self, port: nm.Port, docker_mac: str | None, created: bool) -> nm.Port:
        """Attach the port behind the VM's port; a port made for this endpoint goes again if that fails."""
        assert self._nesting is not None
        try:
            return self._nesting.attach(port, docker_mac)
        except BaseException:
            if created:
                self._ports.release_endpoint_port(port)
            raise

    def _subnet_for(self, network: NetworkRecord, ip: str) -> nm.Subnet:
        address = ipaddress.ip_address(ip)
        subnet = next((s for s in network.subnets if address in s.cidr), None)
        if subnet is None:
            raise InvalidRequest(f"address {ip} is in no subnet of Neutron network {network.network.id}")
        return subnet

    def _claim(self, port: nm.Port, spec: EndpointSpec, mac: str | None, addresses: list[str]) -> nm.Port:
        """The address's port serves the endpoint; one serving another endpoint (or device) is refused."""
        endpoint_id = spec.endpoint_id
        if self._pools is not None and self._pools.taken(port.id):
            # whom a pooled port serves is in OVSDB, not in Neutron: the pool refuses another endpoint's port
            claimed = self._pools.claim(port.id, endpoint_id, spec.extra_tags)  # no Neutron call: described later
            if mac is None or mac == port.mac_address.lower():
                return claimed
            port = self._pools.leave_pool(port.id) or claimed  # --mac-address: an ordinary port from here on
        else:
            _refuse_if_taken(port, endpoint_id, addresses)
            if self._nesting is not None:  # (pools are off when nested)
                self._nesting.check(port)  # before the port is changed at all
        return self._attach(port, endpoint_id, mac, spec.extra_tags)

    def _pooled(self, ep: EndpointRecord) -> bool:
        return self._pools is not None and self._pools.taken(ep.port.id)

    def _attach(self, port: nm.Port, endpoint_id: str, mac: str | None,
                extra_tags: frozenset[str] = frozenset()) -> nm.Port:
        """Give the address's port the endpoint's identity: kuryr's endpoint tags, device_id (and name)."""
        attrs: dict[str, Any] = {"device_id": endpoint_id}
        if self._nesting is not None:  # e.g. a trunk subport must have no device_id
            attrs = self._nesting.port_attrs(attrs)
        new_tags = frozenset(port.tags | set(tags.docker_id_tags(endpoint_id)) | extra_tags)
        if self._pools is not None:  # an endpoint's port is never also an idle pooled one (after a restart)
            new_tags -= {self._pools.tag}
        if tags.EXISTING_PORT not in port.tags:  # the user's port keeps its name; ours get kuryr's name and tag
            attrs["name"] = tags.endpoint_port_name(endpoint_id)
            new_tags |= {tags.DEVICE_OWNER}
        if mac and mac != port.mac_address.lower():  # the MAC matters for traffic: wait for it
            if port.host_id and self._nesting is None:
                # Neutron refuses a new MAC on a bound port (a warm-path or cold port made with Neutron's MAC)
                unbind: dict[str, Any] = {"binding:host_id": ""}
                self._neutron.update_port(port.id, **unbind)
                attrs["binding:host_id"] = port.host_id
            attrs["mac_address"] = mac
            update = self._pool.submit(self._neutron.update_port, port.id, **attrs)
            self._neutron.set_port_tags(port.id, new_tags)
            return dataclasses.replace(update.result(), tags=new_tags)
        self._neutron.set_port_tags(port.id, new_tags)
        # device_id and name only describe the port (lookups use the tags): they land after Docker has its
        # reply, off the container's start path. Deleting the port waits for them (State.settle).
        self._state.port_updates[port.id] = self._pool.submit(self._describe, port.id, attrs)
        return dataclasses.replace(port, tags=new_tags, device_id=endpoint_id, name=attrs.get("name", port.name))

    def _describe(self, port_id: str, attrs: dict[str, Any]) -> None:
        try:
            self._neutron.update_port(port_id, **attrs)
        except Exception as exc:
            LOG.warning("could not set device_id/name of port %s: %s", port_id, exc)

    def endpoint(self, network_id: str, endpoint_id: str) -> EndpointRecord:
        cached = self._state.endpoints.get(endpoint_id)
        if cached is not None:
            return cached
        network = self._lookup.require_network(network_id)
        port = self._lookup.port_by_endpoint(network.network.id, endpoint_id)
        if port is None:  # a pooled port Neutron has not heard of yet: this host's OVSDB knows it
            port_id = self._binder.port_of_endpoint(endpoint_id)
            if port_id is not None:
                try:
                    port = self._neutron.get_port(port_id)
                except NotFound:
                    port = None
        if port is None:
            raise NotFound(f"endpoint {endpoint_id[:12]} has no Neutron port on network {network.network.id}")
        record = EndpointRecord(endpoint_id, network, port)
        self._state.endpoints[endpoint_id] = record
        return record

    def join(self, network_id: str, endpoint_id: str) -> Attachment:
        ep = self.endpoint(network_id, endpoint_id)
        logcontext.bind(port=ep.port.id)
        vif = self.vif(ep)
        if self._nesting is not None:
            vif = self._nesting.vif(vif, ep.port)  # e.g. the VLAN id, kept in memory since CreateEndpoint
        started = time.perf_counter()
        host_ifname = self._pools.plugged_name(ep.port.id) if self._pooled(ep) and self._pools else None
        if host_ifname is None:
            host_ifname = self._binder.bind(vif)
        metrics.BIND_SECONDS.labels(vif_type=vif.vif_type).observe(time.perf_counter() - started)
        gateways: dict[int, str] = {}
        routes: list[Route] = []
        for subnet in self._subnets_of(ep):
            if subnet.gateway_ip is not None:
                gateways.setdefault(subnet.ip_version, str(subnet.gateway_ip))
            routes += [Route(destination=str(dest), next_hop=str(hop)) for dest, hop in subnet.host_routes]
        return Attachment(host_ifname=host_ifname, gateway_v4=gateways.get(4), gateway_v6=gateways.get(6),
                          routes=tuple(routes))

    def _subnets_of(self, ep: EndpointRecord) -> list[nm.Subnet]:
        ids = {f.subnet_id for f in ep.port.fixed_ips}
        return [s for s in ep.network.subnets if s.id in ids]

    def vif(self, ep: EndpointRecord) -> VIF:
        return vif_for(ep.port, ep.network.network, ep.network.subnets, ep.endpoint_id)

    def leave(self, network_id: str, endpoint_id: str) -> None:
        cached = self._state.endpoints.get(endpoint_id)
        if cached is not None and self._pooled(cached):
            return  # the interface comes back from the sandbox and stays plugged: DeleteEndpoint recycles it
        self._unbind(network_id, endpoint_id)

    def _unbind(self, network_id: str, endpoint_id: str) -> EndpointRecord | None:
        try:
            ep = self.endpoint(network_id, endpoint_id)
        except NotFound:
            # Neutron forgot it (deleted behind our back): still clear what may be left on this host.
            self._binder.unbind_endpoint(endpoint_id)
            return None
        self._binder.unbind(self.vif(ep))
        return ep

    def delete(self, network_id: str, endpoint_id: str) -> None:
        with self._state.locks.hold(endpoint_id):
            try:
                known = self.endpoint(network_id, endpoint_id)
            except NotFound:
                known = None
            if known is not None and self._pools is not None and self._pools.give_back(known.port.id):
                self._state.endpoints.pop(endpoint_id, None)
                self._state.forget_port(known.port)
                return
            ep = self._unbind(network_id, endpoint_id)
            self._state.endpoints.pop(endpoint_id, None)
            if ep is not None and self._nesting is not None:
                ep.port = self._nesting.detach(ep.port)
            if ep is not None and ENDPOINT_OWNED in ep.port.tags:
                self._ports.release_endpoint_port(ep.port)

    def oper_info(self, network_id: str, endpoint_id: str) -> dict[str, Any]:
        """What `docker network inspect` shows of the endpoint's port; empty for an endpoint Neutron forgot."""
        try:
            ep = self.endpoint(network_id, endpoint_id)
        except NotFound:
            return {}
        vif = self.vif(ep)
        return {
            "port_id": ep.port.id, "network_id": ep.port.network_id, "mac_address": ep.port.mac_address,
            "vif_type": ep.port.vif_type, "host_if": vif.host_ifname, "binding_host": ep.port.host_id,
            "fixed_ips": [str(f.ip_address) for f in ep.port.fixed_ips],
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def _refuse_if_taken(port: nm.Port, endpoint_id: str, addresses: list[str]) -> None:
    """A port already serving another endpoint (or device) is never taken over."""
    owner = tags.docker_id_from_tags(port.tags)
    if (owner and owner != endpoint_id) or (port.device_id and port.device_id != endpoint_id):
        raise AddressInUse(f"address {', '.join(addresses)} is already in use by port {port.id} of "
                           f"{'endpoint ' + owner[:12] if owner else 'device ' + port.device_id}")
