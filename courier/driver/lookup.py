"""Find again in Neutron what the cache does not hold (after a restart, or for resources made elsewhere)."""

from __future__ import annotations

import ipaddress

from courier.driver.state import NetworkRecord, PoolRecord, State
from courier.exceptions import InvalidRequest, NotFound
from courier.neutron import models as nm
from courier.neutron import tags
from courier.neutron.api import Neutron

# A network key is a Docker network id, or this prefix + a Neutron network id: a network a front end names in
# Neutron's terms (a CNI network config), not Docker's.
NEUTRON_KEY = "neutron:"


def parse_pool_id(pool_id: str) -> tuple[str, nm.IPNetwork | None]:
    """``<subnetpool id>`` (a pool of its own) or ``<subnetpool id>/<cidr>`` (a prefix of a shared pool)."""
    subnetpool_id, _, cidr = pool_id.partition("/")
    try:
        return subnetpool_id, ipaddress.ip_network(cidr) if cidr else None
    except ValueError as exc:
        raise InvalidRequest(f"pool {pool_id!r} is not a Courier or kuryr pool id") from exc


class Lookup:
    def __init__(self, neutron: Neutron, state: State):
        self._neutron, self._state = neutron, state

    def network(self, docker_id: str) -> NetworkRecord | None:
        cached = self._state.networks.get(docker_id)
        if cached:
            return cached
        if docker_id.startswith(NEUTRON_KEY):
            return self._neutron_network_by_id(docker_id[len(NEUTRON_KEY):])
        found = self._neutron.list_networks(tags=",".join(tags.docker_id_tags(docker_id)))
        if not found:
            return None
        if len(found) > 1:
            raise InvalidRequest(f"{len(found)} Neutron networks carry Docker network {docker_id}'s tags: "
                                 + ", ".join(n.id for n in found))
        net = found[0]
        subnets = self._neutron.list_subnets(network_id=net.id)
        record = NetworkRecord(docker_id=docker_id, network=net, subnets=subnets,
                               existing=tags.existing_network_tag(docker_id) in net.tags)
        self._state.networks[docker_id] = record
        return record

    def require_network(self, docker_id: str) -> NetworkRecord:
        record = self.network(docker_id)
        if record is None:
            raise NotFound(f"Docker network {docker_id[:12]} has no Neutron network (tags "
                           f"{tags.LOW_HALF}{docker_id[:32]}...); was it created with another driver?")
        return record

    def neutron_network(self, id_or_name: str) -> NetworkRecord:
        """A network named the way Neutron names it (id, or a unique name), with its subnets; its key is
        ``NEUTRON_KEY + id``. Never changed or deleted by Courier: it is the user's."""
        known = self._state.network_names.get(id_or_name)
        cached = self._state.networks.get(NEUTRON_KEY + (known or id_or_name))
        if cached:
            return cached
        try:
            record = self._neutron_network_by_id(id_or_name)
        except NotFound:
            found = self._neutron.list_networks(name=id_or_name)
            if len(found) != 1:
                raise NotFound(f"{'no' if not found else len(found)} Neutron networks have id or name "
                               f"{id_or_name!r} (exactly one is needed)") from None
            record = self._record(NEUTRON_KEY + found[0].id, found[0])
            self._state.network_names[id_or_name] = found[0].id
        return record

    def _neutron_network_by_id(self, network_id: str) -> NetworkRecord:
        return self._record(NEUTRON_KEY + network_id, self._neutron.get_network(network_id))

    def _record(self, key: str, net: nm.Network) -> NetworkRecord:
        record = NetworkRecord(docker_id=key, network=net, subnets=self._neutron.list_subnets(network_id=net.id),
                               existing=True)
        self._state.networks[key] = record
        return record

    def pool(self, pool_id: str) -> PoolRecord:
        cached = self._state.pools.get(pool_id)
        if cached:
            return cached
        subnetpool_id, cidr = parse_pool_id(pool_id)
        try:
            pool = self._neutron.get_subnetpool(subnetpool_id)
        except NotFound as exc:
            raise NotFound(f"pool {pool_id} does not exist in Neutron (no subnetpool {subnetpool_id})") from exc
        dedicated = cidr is None
        cidr = cidr or pool.prefixes[0]
        record = PoolRecord(pool_id=pool_id, subnetpool_id=subnetpool_id, cidr=cidr,
                            dedicated=dedicated and pool.name.startswith(tags.SUBNETPOOL_NAME_PREFIX + "-")
                            and tags.EXISTING_SUBNETPOOL not in pool.tags, subnetpool_tags=frozenset(pool.tags))
        record.subnet = self._subnet_of(record)
        if record.subnet is not None:
            record.gateway = record.subnet.gateway_ip
        self._state.pools[pool_id] = record
        return record

    def dedicated_pool_left_over(self, cidr: nm.IPNetwork, ip_range: nm.IPNetwork | None) -> PoolRecord | None:
        """The subnetpool Courier made for a Docker pool of ``cidr`` (and ``ip_range``) that no network uses and
        this process does not hold: what a RequestPool or CreateNetwork cut short by a crash left behind."""
        linked = {p.subnetpool_id for p in self._state.pools.values() if p.subnet is not None or p.requested}
        held = linked | self._state.claims.pending_subnetpools()
        for pool in self._neutron.list_subnetpools(name=tags.subnetpool_name(str(ip_range or cidr))):
            if pool.id in held or tags.EXISTING_SUBNETPOOL in pool.tags or pool.prefixes != (cidr,):
                continue
            if self._neutron.list_subnets(subnetpool_id=pool.id):
                continue
            known = self._state.pools.get(pool.id)  # looked up since the restart (e.g. its gateway request)
            if known is not None:
                return known
            return PoolRecord(pool_id=pool.id, subnetpool_id=pool.id, cidr=cidr, dedicated=True, ip_range=ip_range,
                              subnetpool_tags=frozenset(pool.tags))
        return None

    def _subnet_of(self, record: PoolRecord) -> nm.Subnet | None:
        subnets = self._neutron.list_subnets(subnetpool_id=record.subnetpool_id, cidr=str(record.cidr))
        if len(subnets) == 1:
            return subnets[0]
        # kuryr-libnetwork links pre-existing subnets (not from the pool) by tagging them with the PoolID.
        candidates = subnets or self._neutron.list_subnets(cidr=str(record.cidr))
        tagged = [s for s in candidates if record.pool_id in s.tags]
        if len(tagged) == 1:
            return tagged[0]
        return None

    def port_by_address(self, network_id: str, subnet_id: str, address: str) -> nm.Port | None:
        cached = self._state.ports_by_ip.get((network_id, address))
        if cached:
            return cached
        found = self._neutron.list_ports(network_id=network_id,
                                         fixed_ips=[f"subnet_id={subnet_id}", f"ip_address={address}"])
        if found:
            self._state.remember_port(found[0])
            return found[0]
        return None

    def port_by_endpoint(self, network_id: str, endpoint_id: str) -> nm.Port | None:
        found = self._neutron.list_ports(network_id=network_id, tags=",".join(tags.docker_id_tags(endpoint_id)))
        if not found:
            found = self._neutron.list_ports(network_id=network_id, device_id=endpoint_id)
        return found[0] if found else None

    def ports_tagged(self, network_id: str, tag: str) -> list[nm.Port]:
        return self._neutron.list_ports(network_id=network_id, tags=tag)

    def named_subnetpool(self, name: str, ip_version: int) -> nm.SubnetPool:
        cached = self._state.named_subnetpools.get(name)
        if cached:
            return cached
        found = self._neutron.list_subnetpools(name=name)
        if not found:
            option = "default_subnetpool_v6" if ip_version == 6 else "default_subnetpool_v4"
            raise NotFound(f"Neutron has no subnetpool named {name!r}: create it (openstack subnet pool create "
                           f"--pool-prefix ... {name}), pass --subnet, or set [neutron] {option}")
        if len(found) > 1:
            raise InvalidRequest(f"{len(found)} subnetpools are named {name!r}; use neutron.pool.uuid")
        self._state.named_subnetpools[name] = found[0]
        return found[0]

    def subnetpool_by_option(self, uuid: str | None, name: str | None, ip_version: int) -> nm.SubnetPool | None:
        if uuid:
            try:
                return self._neutron.get_subnetpool(uuid)
            except NotFound as exc:
                raise NotFound(f"subnetpool {uuid} (neutron.pool.uuid) does not exist") from exc
        if name:
            return self.named_subnetpool(name, ip_version)
        return None

    def subnet_by_option(self, uuid: str | None, name: str | None) -> nm.Subnet | None:
        if uuid:
            try:
                return self._neutron.get_subnet(uuid)
            except NotFound as exc:
                raise NotFound(f"subnet {uuid} (neutron.subnet.uuid) does not exist") from exc
        if name:
            found = self._neutron.list_subnets(name=name)
            if len(found) != 1:
                raise NotFound(f"{len(found)} subnets are named {name!r} (neutron.subnet.name needs exactly one)")
            return found[0]
        return None
