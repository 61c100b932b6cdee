"""Container interfaces hung off the VM's own NIC ([binding] link_iface) when Courier runs nested in a VM.

The device is made in the namespace where link_iface lives (Courier's own, or ``[courier] nested_netns``) and
left down, named ``vif.container_ifname``: Docker moves it into the sandbox like the container end of a veth.
There is nothing to plug: the VM's port carries the traffic (trunk subport VLAN or allowed address pair).
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Iterator
from typing import Any, ClassVar

from oslo_config import cfg
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from courier.binding import netdev
from courier.binding.base import LinkDriver
from courier.binding.errors import BindingError
from courier.binding.vif import VIF
from courier.config.options import nested_netns

LOG = logging.getLogger(__name__)


@contextlib.contextmanager
def lower_namespace(conf: cfg.ConfigOpts) -> Iterator[IPRoute]:
    """Netlink in the namespace of link_iface; a configured namespace that does not exist is an error."""
    netns = nested_netns(conf)
    try:
        # flags=0: never create the namespace (pyroute2 would, by default)
        ipr = IPRoute(netns=netns, flags=0) if netns else IPRoute()
    except OSError as exc:
        raise BindingError(f"Cannot enter network namespace {netns!r} ([courier] nested_netns): {exc}") from exc
    with ipr:
        yield ipr


def link_iface_name(conf: cfg.ConfigOpts, ipr: IPRoute) -> str:
    """[binding] link_iface, or else the interface of the IPv4 default route (as a VM's NIC normally is)."""
    name = conf.binding.link_iface
    if name:
        return name
    for route in ipr.get_default_routes(family=2):
        oif = route.get_attr("RTA_OIF")
        if oif:
            links = ipr.link("get", index=oif)
            return str(links[0].get_attr("IFLA_IFNAME"))
    raise BindingError("[binding] link_iface is not set and there is no IPv4 default route to guess the VM's "
                       "interface from: set [binding] link_iface")


def lower_link(conf: cfg.ConfigOpts, ipr: IPRoute) -> tuple[str, int, str, int]:
    """(name, index, MAC, MTU) of link_iface; a clear error when it does not exist."""
    name = link_iface_name(conf, ipr)
    link = netdev.get(ipr, name)
    netns = nested_netns(conf)
    if link is None:
        where = f"network namespace {netns}" if netns else "Courier's network namespace"
        raise BindingError(f"The VM interface {name} ([binding] link_iface) does not exist in {where}")
    return name, link["index"], str(link.get_attr("IFLA_ADDRESS")).lower(), int(link.get_attr("IFLA_MTU") or 1500)


class NestedLink(LinkDriver):
    """One kernel device per container on top of link_iface; subclasses say which kind and its attributes."""

    plugs = False
    kind: ClassVar[str]
    kernel_module: ClassVar[str]

    def attributes(self, vif: VIF) -> dict[str, Any]:
        raise NotImplementedError

    def create(self, vif: VIF) -> str:
        name = vif.container_ifname
        attrs = self.attributes(vif)
        with lower_namespace(self.conf) as ipr:
            lower, lower_idx, _, lower_mtu = lower_link(self.conf, ipr)
            mtu = min(vif.mtu, lower_mtu) if vif.mtu else lower_mtu
            try:
                if netdev.delete(ipr, name):  # a leftover of an earlier try: recreate, same result every time
                    LOG.warning("Replaced existing device %s", name)
                ipr.link("add", ifname=name, kind=self.kind, link=lower_idx, mtu=mtu, **attrs)
            except NetlinkError as exc:
                if exc.code == errno.EOPNOTSUPP:
                    raise BindingError(
                        f"Cannot create {self.kind} device {name} on {lower} for Neutron port {vif.port_id}: this "
                        f"kernel has no {self.kind} support (module {self.kernel_module} missing)") from exc
                raise BindingError(f"Cannot create {self.kind} device {name} on {lower} (MTU {mtu}) for Neutron "
                                   f"port {vif.port_id}: {exc}") from exc
        LOG.debug("Created %s device %s on %s for port %s", self.kind, name, lower, vif.port_id)
        return name

    def delete(self, vif: VIF) -> None:
        try:
            with lower_namespace(self.conf) as ipr:
                netdev.delete(ipr, vif.container_ifname)
        except NetlinkError as exc:
            raise BindingError(f"Cannot delete {self.kind} device {vif.container_ifname} of Neutron port "
                               f"{vif.port_id}: {exc}") from exc
