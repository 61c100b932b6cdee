"""Find and remove what Courier created that no longer belongs to anything (after a crash, a lost Docker state...).

``find_leftovers`` compares Neutron, this host's OVSDB and devices with what the local Docker daemon holds and
returns a ``Plan``; ``remove`` carries it out. ``reconcile`` does both: the server can call it at start.

Only what Courier creates is ever a leftover, and only on this binding host:

* ports with device_owner ``compute:kuryr`` bound to this host whose endpoint (device_id) Docker no longer has
  (or, without a device_id, whose address no Docker endpoint holds);
* networks with kuryr's Docker-id tags and this host's ``courier.host:`` mark whose Docker network is gone and
  which have no other ports;
* ``kuryrPool-*`` subnetpools without subnets;
* OVS interfaces with ``external_ids:owner=courier`` whose Neutron port no longer exists;
* ``tap*``/``t_c*`` veth pairs that Docker never took, not in OVS or a bridge, of no port on this host.

Never touched: pre-existing networks (``kuryr.net.existing:*``), adopted ports (``kuryr.port.existing``),
subnetpools tagged ``kuryr.subnetpool.existing`` or not named ``kuryrPool-*``, anything younger than
``min_age`` (it may be half-way through a Docker call), and networks another host made.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from courier.neutron import models as nm
from courier.neutron import tags
from courier.ops.docker import DockerView
from courier.ops.host import OWNER, OvsInterface, VethPair

LOG = logging.getLogger(__name__)

DEFAULT_MIN_AGE = 300.0  # seconds
POOL_TAG_PREFIX = "courier.pool:"  # courier.pool.pool_tag: an idle warm-pool port
# Ports Neutron makes and removes with the network itself: they do not keep a network in use.
NETWORK_OWNED = ("network:dhcp", "network:distributed")
KINDS = ("port", "ovs-interface", "veth", "network", "subnetpool")  # removal order


class HostOps(Protocol):
    """What gc needs from this host (``courier.ops.host.LocalHost``; a fake in unit tests)."""

    def ovs_interfaces(self) -> list[OvsInterface]: ...

    def veth_pairs(self) -> list[VethPair]: ...

    def remove_interface(self, iface: OvsInterface) -> None: ...

    def remove_veth(self, pair: VethPair) -> None: ...

    def namespace_exists(self, name: str) -> bool: ...


@dataclasses.dataclass(frozen=True)
class Leftover:
    kind: str  # one of KINDS
    id: str  # Neutron id, or device name
    name: str
    reason: str
    target: Any = dataclasses.field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class Kept:
    """Something that looked like a leftover but is left alone, and why."""

    kind: str
    id: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Plan:
    leftovers: list[Leftover] = dataclasses.field(default_factory=list)
    kept: list[Kept] = dataclasses.field(default_factory=list)

    def ids(self, kind: str) -> set[str]:
        return {item.id for item in self.leftovers if item.kind == kind}


@dataclasses.dataclass(frozen=True)
class Outcome:
    leftover: Leftover
    done: bool
    error: str = ""

    def as_dict(self) -> dict[str, str]:
        return {**self.leftover.as_dict(), "result": "removed" if self.done else "failed", "error": self.error}


# --- finding ------------------------------------------------------------------------------------------------------


def find_leftovers(neutron: Any, docker: DockerView, host: HostOps | None, host_id: str, *,
                   min_age: float = DEFAULT_MIN_AGE, any_host: bool = False,
                   now: datetime.datetime | None = None, drain_pools: bool = False) -> Plan:
    """What ``remove`` would remove; reads only. ``host`` None: Neutron only (no OVS or device checks)."""
    now = now or datetime.datetime.now(datetime.UTC)
    plan = Plan()

    def old_enough(resource: Any, kind: str) -> bool:
        age = _age(getattr(resource, "created_at", ""), now)
        if age is not None and age < min_age:
            plan.kept.append(Kept(kind, resource.id, f"younger than --min-age ({age:.0f} s < {min_age:g} s): "
                                  "possibly half-way through a Docker call"))
            return False
        return True

    networks = {n.id: n for n in neutron.list_networks()}
    docker_of = {n.id: _local_docker_id(n, docker) for n in networks.values()}
    host_ports = neutron.list_ports(device_owner=tags.DEVICE_OWNER, **{"binding:host_id": host_id})
    _ports(plan, host_ports, docker, docker_of, old_enough, host.namespace_exists if host is not None else None,
           drain_pools)
    if host is not None:
        interfaces = host.ovs_interfaces()
        _interfaces(plan, neutron, docker, interfaces)
        _veths(plan, host, interfaces, host_ports)
    _networks(plan, neutron, docker, networks.values(), host_id, any_host, old_enough)
    _subnetpools(plan, neutron, old_enough)
    return plan


def _local_docker_id(net: nm.Network, docker: DockerView) -> str | None:
    """The Docker network of this host that ``net`` backs (on a network shared across hosts: the one this
    Docker daemon has), else the one its tags name."""
    candidates = tags.docker_ids_from_tags(net.tags)
    return next((c for c in candidates if c in docker.networks), tags.docker_id_from_tags(net.tags))


def _age(created_at: str, now: datetime.datetime) -> float | None:
    if not created_at:
        return None  # Neutron without standard-attr-timestamp: age unknown
    try:
        when = datetime.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return (now - when).total_seconds()


def _ports(plan: Plan, ports: list[nm.Port], docker: DockerView, docker_of: dict[str, str | None],
           old_enough: Any, namespace_exists: Callable[[str], bool] | None, drain_pools: bool) -> None:
    endpoints = docker.endpoints
    for port in ports:
        if drain_pools and not port.device_id and any(t.startswith(POOL_TAG_PREFIX) for t in port.tags):
            plan.leftovers.append(Leftover("port", port.id, port.name, "idle in a warm pool (--drain-pools)", port))
            continue
        if tags.CNI_ATTACHMENT in port.tags:  # a CNI attachment: its runtime, not Docker, knows it
            namespace = next((t[len(tags.CNI_NETNS):] for t in port.tags if t.startswith(tags.CNI_NETNS)), None)
            if namespace is None or namespace_exists is None or namespace_exists(namespace):
                plan.kept.append(Kept("port", port.id, "a CNI attachment (its runtime's DEL or GC removes it)"))
                continue
            reason = f"a CNI attachment whose network namespace {namespace} is gone"
            if old_enough(port, "port"):
                plan.leftovers.append(Leftover("port", port.id, port.name, reason, port))
            continue
        if tags.EXISTING_PORT in port.tags:
            if port.device_id and port.device_id not in endpoints:
                plan.kept.append(Kept("port", port.id, "adopted pre-existing port (kuryr.port.existing): "
                                      "not Courier's to delete"))
            continue
        if port.device_id:
            if port.device_id in endpoints:
                continue
            reason = f"its endpoint {port.device_id[:12]} no longer exists in Docker"
        elif any(t.startswith(POOL_TAG_PREFIX) for t in port.tags) and docker_of.get(port.network_id) is None:
            plan.kept.append(Kept("port", port.id, "idle in the warm pool of a network Docker does not know "
                                  "(CNI's)"))
            continue
        elif any(t.startswith(POOL_TAG_PREFIX) for t in port.tags) and docker.has_network(
                docker_of.get(port.network_id)):
            plan.kept.append(Kept("port", port.id, "idle in the warm pool of a Docker network that exists"))
            continue
        else:
            addresses = [str(f.ip_address) for f in port.fixed_ips]
            if any(docker.holds_address(docker_of.get(port.network_id), a) for a in addresses):
                continue
            reason = f"no Docker endpoint and no Docker endpoint holds {', '.join(addresses) or 'its address'}"
        if old_enough(port, "port"):
            plan.leftovers.append(Leftover("port", port.id, port.name, reason, port))


def _interfaces(plan: Plan, neutron: Any, docker: DockerView, interfaces: list[OvsInterface]) -> None:
    ours = [i for i in interfaces if i.owner == OWNER]
    wanted = sorted({i.port_id for i in ours if i.port_id})
    existing = {p.id for chunk in _chunks(wanted, 50) for p in neutron.list_ports(id=chunk)} - plan.ids("port")
    endpoints = docker.endpoints
    for iface in ours:
        if iface.port_id in existing:
            continue
        if iface.endpoint_id in endpoints:
            plan.kept.append(Kept("ovs-interface", iface.name, f"Neutron port {iface.port_id} is gone but Docker "
                                  f"still has endpoint {iface.endpoint_id[:12]}: remove its container"))
            continue
        gone = "is being removed" if iface.port_id in plan.ids("port") else "no longer exists"
        plan.leftovers.append(Leftover("ovs-interface", iface.name, iface.bridge,
                                       f"Neutron port {iface.port_id or '(none)'} {gone}", iface))


def _veths(plan: Plan, host: HostOps, interfaces: list[OvsInterface], ports: list[nm.Port]) -> None:
    in_ovs = {i.name for i in interfaces}  # an OVS leftover's removal takes its veth along
    live = [p.id for p in ports if p.id not in plan.ids("port")]
    for pair in host.veth_pairs():
        if pair.has_master or pair.name in in_ovs or pair.peer in in_ovs:
            continue
        if any(port_id.startswith(pair.suffix) for port_id in live):
            continue
        plan.leftovers.append(Leftover("veth", pair.name, pair.peer, "veth pair still on the host (Docker never "
                                       "took it), in no OVS bridge, of no port on this host", pair))


def _networks(plan: Plan, neutron: Any, docker: DockerView, networks: Iterable[nm.Network], host_id: str,
              any_host: bool, old_enough: Any) -> None:
    mark = tags.host_tag(host_id)
    doomed_ports = plan.ids("port")
    for net in networks:
        candidates = tags.docker_ids_from_tags(net.tags)
        if not candidates or any(c in docker.networks for c in candidates):
            continue
        if sum(t.startswith(tags.LOW_HALF) for t in net.tags) > 1:
            plan.kept.append(Kept("network", net.id, "shared by Docker networks of several hosts: each host's "
                                  "DeleteNetwork takes its own mark off"))
            continue
        docker_id = candidates[0]
        marks = {t for t in net.tags if t.startswith(tags.HOST)}
        if marks and mark not in marks:
            continue  # another host's network: its own gc decides
        if any(t.startswith(tags.EXISTING_NETWORK) for t in net.tags):
            plan.kept.append(Kept("network", net.id, f"pre-existing network (kuryr.net.existing) of gone Docker "
                                  f"network {docker_id[:12]}: not Courier's to delete"))
            continue
        if not marks and not any_host:
            plan.kept.append(Kept("network", net.id, f"Docker network {docker_id[:12]} is gone, but the network "
                                  "has no host mark (made by kuryr-libnetwork or an older Courier): --any-host "
                                  "includes it when this is the only Docker host using the project"))
            continue
        if not old_enough(net, "network"):
            continue
        others = [p for p in neutron.list_ports(network_id=net.id)
                  if p.id not in doomed_ports and p.device_owner not in NETWORK_OWNED]
        if others:
            listed = ", ".join(f"{p.id} ({p.device_owner or 'no owner'})" for p in others[:3])
            plan.kept.append(Kept("network", net.id, f"Docker network {docker_id[:12]} is gone but ports remain: "
                                  f"{listed}"))
            continue
        plan.leftovers.append(Leftover("network", net.id, net.name,
                                       f"its Docker network {docker_id[:12]} no longer exists", net))


def _subnetpools(plan: Plan, neutron: Any, old_enough: Any) -> None:
    prefix = tags.SUBNETPOOL_NAME_PREFIX + "-"
    pools = [p for p in neutron.list_subnetpools() if p.name.startswith(prefix)
             and tags.EXISTING_SUBNETPOOL not in p.tags]
    if not pools:
        return
    doomed = plan.ids("network")
    subnets = [s for s in neutron.list_subnets() if s.network_id not in doomed]
    subnet_ids = {s.id for s in subnets}
    for pool in pools:
        used = [s for s in subnets if s.subnetpool_id == pool.id or pool.id in s.tags]
        # kuryr-libnetwork links a pre-existing subnet by tagging the pool with the subnet's id.
        linked = [t for t in pool.tags if t in subnet_ids]
        if used or linked:
            continue
        if old_enough(pool, "subnetpool"):
            plan.leftovers.append(Leftover("subnetpool", pool.id, pool.name, "no subnet uses it", pool))


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- removing -----------------------------------------------------------------------------------------------------


def remove(plan: Plan, neutron: Any, host: HostOps | None) -> list[Outcome]:
    """Remove the leftovers, ports first and pools last; one failure does not stop the others."""
    outcomes = []
    for kind in KINDS:
        for item in (i for i in plan.leftovers if i.kind == kind):
            try:
                _remove_one(item, neutron, host)
            except Exception as exc:  # CourierError from Neutron, OSError/NetlinkError from the host
                LOG.warning("gc: could not remove %s %s: %s", item.kind, item.id, exc)
                outcomes.append(Outcome(item, False, str(exc)))
            else:
                LOG.info("gc: removed %s %s (%s)", item.kind, item.id, item.reason)
                outcomes.append(Outcome(item, True))
    return outcomes


def _remove_one(item: Leftover, neutron: Any, host: HostOps | None) -> None:
    if item.kind == "port":
        neutron.delete_port(item.id)
    elif item.kind == "network":
        neutron.delete_network(item.id)  # Neutron deletes its subnets with it
    elif item.kind == "subnetpool":
        neutron.delete_subnetpool(item.id)
    elif host is None:
        raise RuntimeError(f"cannot remove {item.kind} {item.id} without access to this host")
    elif item.kind == "ovs-interface":
        host.remove_interface(item.target)
    elif item.kind == "veth":
        host.remove_veth(item.target)


def reconcile(neutron: Any, docker: DockerView, host: HostOps | None, host_id: str, *, dry_run: bool = False,
              min_age: float = DEFAULT_MIN_AGE, any_host: bool = False,
              drain_pools: bool = False) -> tuple[Plan, list[Outcome]]:
    """Find the leftovers and, unless ``dry_run``, remove them."""
    plan = find_leftovers(neutron, docker, host, host_id, min_age=min_age, any_host=any_host,
                          drain_pools=drain_pools)
    return plan, [] if dry_run else remove(plan, neutron, host)
