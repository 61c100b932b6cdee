"""Docker networks as Neutron networks with one subnet per Docker pool."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import ipaddress
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from oslo_config import cfg

from courier.config.options import binding_host_id
from courier.driver import options as o
from courier.driver.lookup import Lookup
from courier.driver.models import SubnetSpec
from courier.driver.state import NetworkRecord, PoolRecord, State
from courier.exceptions import Conflict, CourierError, InvalidRequest, NeutronTimeout, NeutronUnavailable, NotFound
from courier.neutron import models as nm
from courier.neutron import tags
from courier.neutron.api import Neutron
from courier.pool import PortPools

LOG = logging.getLogger(__name__)


class Networks:
    def __init__(self, conf: cfg.ConfigOpts, neutron: Neutron, state: State, lookup: Lookup,
                 pools: PortPools | None = None):
        self._conf, self._neutron, self._state, self._lookup = conf, neutron, state, lookup
        self._pools = pools

    def create(self, docker_id: str, options: Mapping[str, Any] | None, ipv4: Sequence[SubnetSpec],
               ipv6: Sequence[SubnetSpec]) -> None:
        opts = o.NetworkOptions.parse(options)
        data = [*(ipv4 if opts.enable_ipv4 else []), *ipv6]
        for entry in data:  # all of it is checked before Neutron is touched: bad input changes nothing
            _cidr(entry)
            _gateway(entry.gateway)
        with self._state.locks.hold(docker_id):
            undo: list[Callable[[], None]] = []
            try:
                found = self._lookup.network(docker_id)
                if found is not None:  # Docker retried (Courier may have died half way): finish the job
                    record = self._complete(found, opts, data, undo)
                else:
                    record = self._create(docker_id, opts, data, undo)
            except BaseException as failure:
                self._roll_back(docker_id, undo, failure)
                raise
            self._state.networks[docker_id] = record
        if self._pools is not None:
            self._pools.register(record.network, record.subnets)  # warm before the first container asks

    def _complete(self, record: NetworkRecord, opts: o.NetworkOptions, data: list[SubnetSpec],
                  undo: list[Callable[[], None]]) -> NetworkRecord:
        """The subnets a crashed CreateNetwork did not get to; the network itself is never rolled back here."""
        have = {s.cidr for s in record.subnets}
        owner_tags = set(tags.docker_id_tags(record.docker_id)) if record.existing else None
        missing = [e for e in data if _cidr(e) not in have]
        added = [self._subnet_for(record.network, entry, opts, record.subnets, owner_tags, undo, record.docker_id)
                 for entry in missing]
        return dataclasses.replace(record, subnets=[*record.subnets, *added])

    def _roll_back(self, docker_id: str, undo: list[Callable[[], None]], failure: BaseException) -> None:
        """Nothing half-created: undo each step, or have it retried in the background while Neutron is
        unavailable (Docker never calls DeleteNetwork for a network whose CreateNetwork failed)."""
        what = f"rolling back Docker network {docker_id[:12]}"
        for step in reversed(undo):
            if isinstance(step, _StateStep):
                step()
            elif isinstance(failure, NeutronTimeout):
                self._state.deferred.defer(what, step, failure)  # Neutron hangs: Docker must not wait again
            else:
                try:
                    self._state.deferred.delete(what, step)
                except CourierError as exc:
                    LOG.error("%s: %s", what, exc)

    def _create(self, docker_id: str, opts: o.NetworkOptions, data: list[SubnetSpec],
                undo: list[Callable[[], None]]) -> NetworkRecord:
        docker_tags = set(tags.docker_id_tags(docker_id))
        existing = self._existing_network(opts)
        if existing is not None:
            if opts.shared is not None and opts.shared != existing.shared:
                raise InvalidRequest(f"neutron.net.shared={opts.shared} but network {existing.id} has shared="
                                     f"{existing.shared}")
            me = binding_host_id(self._conf)
            users = tags.host_marks(existing.tags)
            # One Docker network per Neutron network on a host; another host's Docker network may share it (each
            # host's containers get their own ports). Unmarked (kuryr-libnetwork, older Courier): host unknown.
            if any(t.startswith(tags.LOW_HALF) for t in existing.tags) and (not users or me in users):
                raise Conflict(f"Neutron network {existing.id} already backs Docker network "
                               f"{tags.docker_id_from_tags(existing.tags)} on this host")
            network = existing
            self._neutron.set_network_tags(network.id, network.tags | docker_tags
                                           | {tags.existing_network_tag(docker_id), tags.host_tag(me)})
            undo.append(lambda: self._neutron.set_network_tags(network.id, existing.tags))
            subnets_there = self._neutron.list_subnets(network_id=network.id)
        else:
            network = self._neutron.create_network(tags.network_name(docker_id), shared=opts.shared)
            undo.append(lambda: self._neutron.delete_network(network.id))
            # + this host's mark: `courier gc` on another host sharing the project never takes it for its own
            self._neutron.set_network_tags(network.id, docker_tags | {tags.host_tag(binding_host_id(self._conf))})
            subnets_there = []
        subnets = [self._subnet_for(network, entry, opts, subnets_there, docker_tags if existing else None, undo,
                                    docker_id)
                   for entry in data]
        return NetworkRecord(docker_id=docker_id, network=network, subnets=subnets, existing=existing is not None)

    def _existing_network(self, opts: o.NetworkOptions) -> nm.Network | None:
        if opts.net_uuid:
            try:
                return self._neutron.get_network(opts.net_uuid)
            except NotFound as exc:
                raise NotFound(f"Neutron network {opts.net_uuid} (neutron.net.uuid) does not exist") from exc
        if opts.net_name:
            found = self._neutron.list_networks(name=opts.net_name)
            if len(found) != 1:
                raise NotFound(f"{len(found)} Neutron networks are named {opts.net_name!r} "
                               "(neutron.net.name needs exactly one)")
            return found[0]
        return None

    def _subnet_for(self, network: nm.Network, entry: SubnetSpec, opts: o.NetworkOptions,
                    subnets_there: list[nm.Subnet], owner_tags: set[str] | None,
                    undo: list[Callable[[], None]], docker_id: str) -> nm.Subnet:
        cidr = _cidr(entry)
        gateway = _gateway(entry.gateway)
        # No pending pool: another IPAM driver, or Courier restarted since RequestPool (its pool is in Neutron).
        record = (self._state.claims.take(str(cidr)) or self._pool_from_options(cidr, opts)
                  or self._lookup.dedicated_pool_left_over(cidr, None))
        there = next((s for s in subnets_there if s.cidr == cidr), None)
        if there is not None:  # the user's network already has this subnet: link, never own it
            if record is not None and record.dedicated and record.pool_id not in there.tags:
                self._neutron.set_subnet_tags(there.id, there.tags | {record.pool_id})
                there = _with_tags(there, there.tags | {record.pool_id})
            subnet = there
        else:
            ip_range = record.ip_range if record is not None else None
            subnet = self._neutron.create_subnet(
                network.id, cidr, name=tags.subnet_name(str(ip_range or cidr)),  # kuryr keys the name on the range
                gateway_ip=str(gateway) if gateway else None,
                subnetpool_id=record.subnetpool_id if record else None,
                enable_dhcp=self._conf.neutron.enable_dhcp,
                allocation_pools=allocation_pools(cidr, ip_range, gateway) if ip_range is not None else None)
            undo.append(lambda: self._neutron.delete_subnet(subnet.id))
            if record is not None:  # rolled back: the pool has no subnet again, so ReleasePool deletes it
                undo.append(_StateStep(lambda: setattr(record, "subnet", None)))
            if owner_tags is not None:
                # made on a user's network: tag it so DeleteNetwork knows it is ours to delete
                self._neutron.set_subnet_tags(subnet.id, owner_tags)
                subnet = _with_tags(subnet, owner_tags)
        if record is not None:
            record.subnet, record.gateway = subnet, subnet.gateway_ip
            self._state.pools[record.pool_id] = record
            if record.dedicated:
                # the Docker network's mark: a DeleteNetwork retried after a crash still finds its subnetpool
                self._neutron.set_subnetpool_tags(record.subnetpool_id, tags.docker_id_tags(docker_id))
                undo.append(functools.partial(self._restore_subnetpool_tags, record, record.subnetpool_tags))
                record.subnetpool_tags = frozenset(tags.docker_id_tags(docker_id))
        return subnet

    def _restore_subnetpool_tags(self, record: PoolRecord, previous: frozenset[str]) -> None:
        self._neutron.set_subnetpool_tags(record.subnetpool_id, previous)
        record.subnetpool_tags = previous

    def _pool_from_options(self, cidr: nm.IPNetwork, opts: o.NetworkOptions) -> PoolRecord | None:
        """No pending pool (another IPAM driver, or Courier restarted mid-create): use -o pool options."""
        family = opts.v6 if cidr.version == 6 else opts.v4
        pool = self._lookup.subnetpool_by_option(family.pool_uuid, family.pool_name, cidr.version)
        if pool is None:
            return None
        return PoolRecord(pool_id=pool.id if pool.prefixes == (cidr,) else f"{pool.id}/{cidr}",
                          subnetpool_id=pool.id, cidr=cidr, dedicated=False)

    def delete(self, docker_id: str) -> None:
        # Docker ignores a failed DeleteNetwork and forgets the network: what Neutron cannot delete now (it is
        # unavailable) is deleted in the background once it is back, never left behind.
        failure = self._state.deferred.delete(f"deleting Docker network {docker_id[:12]}",
                                              functools.partial(self._delete, docker_id))
        if failure is not None:
            raise NeutronUnavailable(f"{failure}; Courier finishes deleting the network once Neutron answers again")

    def _delete(self, docker_id: str) -> None:
        """Idempotent: after a partial failure, running it again finishes the job (the record stays cached)."""
        with self._state.locks.hold(docker_id):
            record = self._lookup.network(docker_id)
            if record is None:  # gone, or a retry after Courier died between the network and its subnetpools
                self._delete_pools_left_by(docker_id)
                return
            if self._pools is not None:
                self._pools.drain(record.network.id)
            docker_tags = set(tags.docker_id_tags(docker_id))
            if record.existing:
                for subnet in record.subnets:
                    if docker_tags <= subnet.tags:
                        self._delete_subnet(subnet)
                current = self._neutron.get_network(record.network.id)
                # this host's marks go (a host uses a network once: the mark was not there before it)
                mine = {tags.existing_network_tag(docker_id), tags.host_tag(binding_host_id(self._conf))}
                self._neutron.set_network_tags(current.id, {t for t in current.tags if t not in docker_tags
                                                            and t not in mine})
            else:
                self._delete_network(record.network.id)
            for subnet in record.subnets:
                if subnet.subnetpool_id and (not record.existing or docker_tags <= subnet.tags):
                    self._delete_pool_if_dedicated(subnet.subnetpool_id)
            self._state.networks.pop(docker_id, None)
            for pool_id, pool in list(self._state.pools.items()):
                if pool.subnet is not None and pool.subnet.network_id == record.network.id:
                    del self._state.pools[pool_id]

    def _delete_pools_left_by(self, docker_id: str) -> None:
        for pool in self._neutron.list_subnetpools(tags=",".join(tags.docker_id_tags(docker_id))):
            self._delete_pool_if_dedicated(pool.id)

    def _delete_subnet(self, subnet: nm.Subnet) -> None:
        try:
            self._neutron.delete_subnet(subnet.id)
        except Conflict:
            self._delete_leftover_ports(subnet.network_id)
            self._neutron.delete_subnet(subnet.id)

    def _delete_network(self, network_id: str) -> None:
        try:
            self._neutron.delete_network(network_id)
        except Conflict:
            self._delete_leftover_ports(network_id)
            self._neutron.delete_network(network_id)

    def _delete_leftover_ports(self, network_id: str) -> None:
        """Ports Courier made that Docker never released (it crashed in between) would block the delete."""
        # Only this host's: another host's containers on a network shared across hosts keep their ports (the
        # delete then fails with Conflict, and this host's `courier gc` removes the network once they are gone).
        me = binding_host_id(self._conf)
        for port in self._neutron.list_ports(network_id=network_id, device_owner=tags.DEVICE_OWNER):
            if tags.EXISTING_PORT not in port.tags and port.host_id in (me, ""):
                LOG.warning("deleting leftover port %s on network %s", port.id, network_id)
                if self._pools is not None:  # its interface on this host goes too (a pooled or crashed one)
                    self._pools.remove(port)
                else:
                    self._neutron.delete_port(port.id)

    def _delete_pool_if_dedicated(self, subnetpool_id: str) -> None:
        cached = next((p for p in self._state.pools.values() if p.subnetpool_id == subnetpool_id), None)
        if cached is not None:
            dedicated = cached.dedicated
        else:
            try:
                pool = self._neutron.get_subnetpool(subnetpool_id)
            except NotFound:
                return
            dedicated = (pool.name.startswith(tags.SUBNETPOOL_NAME_PREFIX + "-")
                         and tags.EXISTING_SUBNETPOOL not in pool.tags)
        if dedicated:
            with contextlib.suppress(Conflict):  # still used by a subnet elsewhere: not ours to force
                self._neutron.delete_subnetpool(subnetpool_id)


class _StateStep:
    """An undo step on Courier's own state, not Neutron's: always done at once, never deferred."""

    def __init__(self, step: Callable[[], None]):
        self._step = step

    def __call__(self) -> None:
        self._step()


def allocation_pools(cidr: nm.IPNetwork, ip_range: nm.IPNetwork,
                     gateway: nm.IPAddress | None) -> list[dict[str, str]]:
    """--ip-range as Neutron allocation pools: the range, less the subnet's own and gateway addresses."""
    first, last = ip_range[0], ip_range[-1]
    if first == cidr.network_address:
        first += 1
    if cidr.version == 4 and last == cidr.broadcast_address:
        last -= 1
    ranges = [(first, last)]
    if gateway is not None and first <= gateway <= last:  # type: ignore[operator]
        ranges = [r for r in ((first, gateway - 1), (gateway + 1, last)) if r[0] <= r[1]]  # type: ignore[operator]
    return [{"start": str(a), "end": str(b)} for a, b in ranges]


def _cidr(entry: SubnetSpec) -> nm.IPNetwork:
    try:
        return ipaddress.ip_network(entry.cidr, strict=True)
    except ValueError as exc:
        raise InvalidRequest(f"IPAM data: {entry.cidr!r} is not a CIDR") from exc


def _gateway(text: str) -> nm.IPAddress | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_interface(text).ip
    except ValueError as exc:
        raise InvalidRequest(f"IPAM data: gateway {text!r} is not an address") from exc
    return None if address.is_unspecified else address


def _with_tags(subnet: nm.Subnet, new_tags: frozenset[str] | set[str]) -> nm.Subnet:
    return dataclasses.replace(subnet, tags=frozenset(new_tags))
