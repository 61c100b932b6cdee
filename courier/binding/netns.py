"""The container end of a binding inside a runtime's network namespace, for front ends whose runtime hands over a
namespace and an interface name (CNI) rather than moving and configuring the interface itself (Docker).

Short-lived pyroute2 handles: ``IPRoute(netns=path)`` opens its netlink socket inside the namespace.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import os
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from courier.binding.errors import BindingError

IFA_F_NODAD = 0x02  # an IPv6 address usable at once: Neutron made it unique, a DAD wait would delay the first packet

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass(frozen=True)
class ContainerInterface:
    netns: str  # path of the namespace, e.g. /run/netns/cni-1234
    ifname: str  # the name the runtime asked for, e.g. eth0
    mac: str
    mtu: int
    addresses: tuple[IPInterface, ...]
    gateways: tuple[IPAddress, ...] = ()  # default routes, at most one per IP version
    routes: tuple[tuple[IPNetwork, IPAddress], ...] = ()  # (destination, next hop)


def move_in(host_side_name: str, iface: ContainerInterface) -> None:
    """Move ``host_side_name`` (a link in this namespace) into ``iface.netns`` and configure it there: name, MAC,
    MTU, addresses, up, routes. The loopback comes up too (a fresh namespace has it down)."""
    fd = _open(iface.netns)
    try:
        with IPRoute() as ipr:
            ipr.link("set", ifname=host_side_name, net_ns_fd=fd)
    except NetlinkError as exc:
        raise BindingError(f"cannot move {host_side_name} into {iface.netns}: {exc}") from exc
    finally:
        os.close(fd)
    try:
        with IPRoute(netns=iface.netns) as ns:
            index = ns.link_lookup(ifname=host_side_name)[0]
            ns.link("set", index=index, state="down")
            ns.link("set", index=index, ifname=iface.ifname, address=iface.mac.lower(), mtu=iface.mtu)
            for address in iface.addresses:
                flags = IFA_F_NODAD if address.version == 6 else 0
                ns.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen,
                        flags=flags)
            ns.link("set", index=index, state="up")
            lo = ns.link_lookup(ifname="lo")
            if lo:
                ns.link("set", index=lo[0], state="up")
            for gateway in iface.gateways:
                ns.route("add", dst="default" if gateway.version == 4 else "::/0", gateway=str(gateway),
                         oif=index, family=_family(gateway))
            for destination, hop in iface.routes:
                ns.route("add", dst=str(destination), gateway=str(hop), oif=index, family=_family(hop))
    except (NetlinkError, IndexError) as exc:
        raise BindingError(f"cannot configure {iface.ifname} in {iface.netns}: {exc}") from exc


def move_out(netns: str, ifname: str, host_side_name: str) -> bool:
    """Bring ``ifname`` back from ``netns`` to this namespace, down, without addresses, as ``host_side_name``
    (how Docker gives an interface back). False: the namespace or the interface is gone already."""
    if not os.path.exists(netns):
        return False
    try:
        with IPRoute(netns=netns) as ns:
            found = ns.link_lookup(ifname=ifname)
            if not found:
                return False
            ns.link("set", index=found[0], state="down")
            ns.flush_addr(index=found[0])
            ns.link("set", index=found[0], ifname=host_side_name, net_ns_pid=os.getpid())
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT):
            return False
        raise BindingError(f"cannot take {ifname} back from {netns}: {exc}") from exc
    except OSError as exc:  # the namespace went away while we looked
        if exc.errno in (errno.ENOENT, errno.EINVAL):
            return False
        raise
    return True


@dataclasses.dataclass(frozen=True)
class Seen:
    """What a namespace's interface has, for CNI CHECK."""

    mac: str
    mtu: int
    up: bool
    addresses: frozenset[str]  # "ip/prefixlen"


def inspect(netns: str, ifname: str) -> Seen | None:
    """The interface as it is now; None when the namespace or the interface does not exist."""
    if not os.path.exists(netns):
        return None
    with IPRoute(netns=netns) as ns:
        found = ns.link_lookup(ifname=ifname)
        if not found:
            return None
        link = ns.link("get", index=found[0])[0]
        addresses = frozenset(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ns.get_addr(index=found[0]))
        return Seen(mac=str(link.get("IFLA_ADDRESS")).lower(), mtu=int(link.get("IFLA_MTU")),
                    up=bool(link["flags"] & 1), addresses=addresses)


def _open(netns: str) -> int:
    try:
        return os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise BindingError(f"network namespace {netns} cannot be opened: {exc.strerror}") from exc


def _family(address: IPAddress) -> int:
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET
