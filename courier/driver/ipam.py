"""IpamDriver: Docker pools are Neutron subnetpools (or prefixes of one), addresses are Neutron ports."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from courier.driver import options as o
from courier.driver.lookup import Lookup
from courier.driver.models import AddressPool
from courier.driver.ports import Ports, address_only
from courier.driver.state import PoolRecord, State
from courier.exceptions import AddressInUse, InvalidRequest, NotFound, PoolExhausted
from courier.neutron import models as nm
from courier.neutron import tags
from courier.neutron.api import Neutron
from courier.pool import PortPools

LOG = logging.getLogger(__name__)


class Ipam:
    def __init__(self, conf: cfg.ConfigOpts, neutron: Neutron, state: State, lookup: Lookup, ports: Ports,
                 pools: PortPools):
        self._conf, self._neutron, self._state, self._lookup, self._ports = conf, neutron, state, lookup, ports
        self._pools = pools

    def requires_mac(self) -> bool:
        """Whether the caller must send the container's MAC with an address request."""
        # Cold path: Docker then sends the endpoint's MAC with RequestAddress, so the port is created (and bound)
        # with it in one call (Neutron refuses to change the MAC of a bound port later). Warm pools: a pooled port
        # is bound already, so the container takes the port's MAC (CreateEndpoint's reply) instead.
        return self._ports.requires_mac and not self._pools.enabled

    # --- pools -----------------------------------------------------------------------------------------------

    def request_pool(self, pool: str, sub_pool: str, options: Mapping[str, Any] | None, v6: bool) -> AddressPool:
        """A pool of addresses: ``pool`` (a CIDR; empty: a free prefix of the default subnetpool), of which
        ``sub_pool`` is the range handed out."""
        opts = o.PoolOptions.parse(options, v6)
        version = 6 if v6 else 4
        if sub_pool and not pool:
            raise InvalidRequest("an --ip-range needs a --subnet")
        chosen = self._lookup.subnetpool_by_option(opts.pool_uuid, opts.pool_name, version)
        existing_subnet = self._lookup.subnet_by_option(opts.subnet_uuid, opts.subnet_name)
        ip_range = _network(sub_pool, "SubPool (--ip-range)", version) if sub_pool else None
        if pool:
            cidr = _network(pool, "Pool", version)
            if ip_range is not None and not ip_range.subnet_of(cidr):  # type: ignore[arg-type]
                raise InvalidRequest(f"--ip-range {ip_range} is not inside --subnet {cidr}")
            if existing_subnet is not None and existing_subnet.cidr != cidr:
                raise InvalidRequest(f"subnet {existing_subnet.id} is {existing_subnet.cidr}, not {cidr}")
            self._state.claims.claim(str(cidr))
            try:
                record = self._pool_for_cidr(cidr, ip_range, chosen, opts.shared)
            except Exception:
                self._state.claims.abandon(str(cidr))
                raise
        else:
            record = self._prefix_of(chosen or self._lookup.named_subnetpool(self._default_pool_name(version),
                                                                             version))
        if existing_subnet is not None:
            record.existing_subnet_id = existing_subnet.id
        record.requested = True
        self._state.pools[record.pool_id] = record
        self._state.claims.hold(record)
        LOG.info("pool %s for %s", record.pool_id, record.cidr)
        return AddressPool(pool_id=record.pool_id, cidr=record.cidr)

    def _default_pool_name(self, version: int) -> str:
        neutron = self._conf.neutron
        return str(neutron.default_subnetpool_v6 if version == 6 else neutron.default_subnetpool_v4)

    def _pool_for_cidr(self, cidr: nm.IPNetwork, ip_range: nm.IPNetwork | None, chosen: nm.SubnetPool | None,
                       shared: bool | None) -> PoolRecord:
        if chosen is not None:
            if chosen.prefixes == (cidr,):
                return PoolRecord(pool_id=chosen.id, subnetpool_id=chosen.id, cidr=cidr, dedicated=False,
                                  ip_range=ip_range)
            if any(cidr.subnet_of(p) for p in chosen.prefixes if p.version == cidr.version):  # type: ignore[arg-type]
                return PoolRecord(pool_id=f"{chosen.id}/{cidr}", subnetpool_id=chosen.id, cidr=cidr, dedicated=False,
                                  ip_range=ip_range)
            raise InvalidRequest(f"--subnet {cidr} is not inside subnetpool {chosen.name or chosen.id} "
                                 f"({', '.join(map(str, chosen.prefixes))})")
        # A retried RequestPool (Courier died before Docker had the reply) takes the pool made the first time.
        left = self._lookup.dedicated_pool_left_over(cidr, ip_range)
        if left is not None:
            LOG.info("subnetpool %s for %s was made before a restart: used again", left.subnetpool_id, cidr)
            return left
        # A subnetpool of its own per Docker pool: two Docker networks may use the same CIDR on different
        # Neutron networks, which one shared pool would refuse. kuryr-libnetwork names it after the --ip-range.
        pool = self._neutron.create_subnetpool(tags.subnetpool_name(str(ip_range or cidr)), cidr, shared=shared)
        return PoolRecord(pool_id=pool.id, subnetpool_id=pool.id, cidr=cidr, dedicated=True, ip_range=ip_range,
                          subnetpool_tags=frozenset(pool.tags))

    def _prefix_of(self, pool: nm.SubnetPool) -> PoolRecord:
        """Pick a free prefix of the pool's default length; Neutron confirms it when the subnet is made."""
        if not pool.default_prefixlen:
            raise InvalidRequest(f"subnetpool {pool.name or pool.id} has no default prefix length")
        used = [s.cidr for s in self._neutron.list_subnets(subnetpool_id=pool.id)]
        pending = {ipaddress.ip_network(c) for c in self._state.claims.pending_cidrs()}
        for prefix in pool.prefixes:
            for candidate in prefix.subnets(new_prefix=pool.default_prefixlen):
                if candidate in pending or any(candidate.overlaps(u) for u in used):
                    continue
                if not self._state.claims.try_claim(str(candidate)):
                    continue
                return PoolRecord(pool_id=f"{pool.id}/{candidate}", subnetpool_id=pool.id, cidr=candidate,
                                  dedicated=False)
        raise PoolExhausted(f"subnetpool {pool.name or pool.id} has no free /{pool.default_prefixlen} left")

    def release_pool(self, pool_id: str) -> None:
        self._state.claims.drop(pool_id)
        try:
            record = self._lookup.pool(pool_id)
        except NotFound:
            return  # already gone: ReleasePool is idempotent
        with self._state.locks.hold(pool_id):
            if record.dedicated and record.subnet is None:
                # Docker ignores a failed ReleasePool: while Neutron is unavailable the delete is retried here
                self._state.deferred.delete(f"deleting subnetpool {record.subnetpool_id}",
                                            lambda: self._neutron.delete_subnetpool(record.subnetpool_id))
                self._state.pools.pop(pool_id, None)
            elif record.subnet is not None and record.pool_id in record.subnet.tags:
                # a pre-existing subnet linked to this pool (kuryr-libnetwork's scheme): unlink it
                self._neutron.set_subnet_tags(record.subnet.id, record.subnet.tags - {record.pool_id})
                record.subnet = None
                if record.dedicated:
                    self._neutron.delete_subnetpool(record.subnetpool_id)
                self._state.pools.pop(pool_id, None)
            # Otherwise the pool's subnet still exists: DeleteNetwork (which Docker sends last) deletes both.

    # --- addresses -------------------------------------------------------------------------------------------

    def request_address(self, pool_id: str, requested: str, mac: str | None, gateway: bool = False) -> str:
        """An address of the pool (``requested`` if given) as ``address/prefixlen``: the gateway's, or one on
        a port (made with ``mac`` if given)."""
        record = self._lookup.pool(pool_id)
        address = address_only(requested, "Address") if requested else None
        if address and ipaddress.ip_address(address) not in record.cidr:
            raise InvalidRequest(f"address {address} is outside pool {record.cidr}")
        if gateway:
            return self._gateway(record, address)
        if address and record.gateway is not None and address == str(record.gateway):
            raise AddressInUse(f"address {address} is the gateway of {record.cidr}")
        if mac is not None and self._pools.enabled and self._ports.requires_mac:
            # Docker chose the MAC: it holds the capabilities an earlier Courier answered (it asks once per start)
            self._pools.stand_down("dockerd sends a MAC with RequestAddress, so it still holds the IPAM "
                                   "capabilities of a Courier without warm pools; restart dockerd to use them")
        port = self._warm(record, address) if mac is None else None
        if port is None:
            try:
                port = self._ports.allocate(record, address, mac)
            except PoolExhausted:
                # the subnet's last addresses may be on their way into the warm pool: wait for one
                port = self._warm(record, None, patient=True) if mac is None and not address else None
                if port is None:
                    raise
        assert record.subnet is not None
        ip = port.ip_in(record.subnet.id)
        if ip is None:
            raise InvalidRequest(f"port {port.id} has no address in subnet {record.subnet.id}")
        return f"{ip}/{record.cidr.prefixlen}"

    def _warm(self, record: PoolRecord, address: str | None, patient: bool = False) -> nm.Port | None:
        """A port from the warm pool: no Neutron call. None when the pool cannot serve the request."""
        if record.subnet is None:
            return None
        port = self._pools.take(record.subnet, address, patient=patient)
        if port is not None:
            self._state.remember_port(port)
            self._state.allocated.add((port.id, record.subnet.id))
        return port

    def _gateway(self, record: PoolRecord, requested: str | None) -> str:
        if record.subnet is not None:  # an existing subnet: its gateway is what it is
            gateway = record.subnet.gateway_ip
            if requested and gateway and requested != str(gateway):
                raise InvalidRequest(f"subnet {record.subnet.id} has gateway {gateway}, not {requested}")
            if gateway is None:
                # Docker insists on a gateway address; the unspecified one means "none" in CreateNetwork.
                return f"{'::' if record.cidr.version == 6 else '0.0.0.0'}/0"
        else:
            gateway = ipaddress.ip_address(requested) if requested else next(iter(record.cidr.hosts()))  # type: ignore[assignment]
        record.gateway = gateway
        return f"{gateway}/{record.cidr.prefixlen}"

    def release_address(self, pool_id: str, released: str) -> None:
        address = address_only(released, "Address")
        try:
            record = self._lookup.pool(pool_id)
        except NotFound:
            return
        if record.subnet is None or (record.gateway is not None and address == str(record.gateway)):
            return
        pooled = self._pools.port_id_of(record.subnet.id, address)
        if pooled is not None:  # back to the warm pool (a no-op when DeleteEndpoint gave it back already)
            cached = self._state.ports_by_ip.get((record.subnet.network_id, address))
            if cached is not None:
                self._state.forget_port(cached)
            self._pools.give_back(pooled)
            return
        port = self._lookup.port_by_address(record.subnet.network_id, record.subnet.id, address)
        if port is not None:
            self._ports.release(port)


def _network(text: str, field: str, version: int) -> nm.IPNetwork:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidRequest(f"{field}: {text!r} is not a valid CIDR ({exc})") from exc
    if net.version != version:
        raise InvalidRequest(f"{field}: {text} is not an IPv{version} prefix")
    return net
