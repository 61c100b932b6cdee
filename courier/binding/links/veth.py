"""A veth pair per endpoint: the host end is plugged into the backend, Docker moves the other end."""

from __future__ import annotations

import logging

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from courier.binding import netdev
from courier.binding.base import LinkDriver
from courier.binding.errors import BindingError
from courier.binding.vif import VIF

LOG = logging.getLogger(__name__)


class VethLink(LinkDriver):
    name = "veth"

    def create(self, vif: VIF) -> str:
        host, container = vif.host_ifname, vif.container_ifname
        try:
            with IPRoute() as ipr:
                # Recreating (rather than adopting a leftover pair) gives the same result on every call.
                netdev.create_veth(ipr, host, container, vif.mtu, peer_mac=vif.mac_address)
            netdev.isolate_host_port(host)
            netdev.disable_tx_checksum(container)
            with IPRoute() as ipr:
                netdev.set_up(ipr, host)
        except NetlinkError as exc:
            raise BindingError(f"Cannot create veth pair {host}/{container} (MTU {vif.mtu}, MAC "
                               f"{vif.mac_address}) for Neutron port {vif.port_id}: {exc}") from exc
        LOG.debug("Created veth %s/%s for port %s", host, container, vif.port_id)
        return container

    def delete(self, vif: VIF) -> None:
        try:
            with IPRoute() as ipr:
                # Deleting the host end removes its peer; the second name matters only if that one is gone.
                for name in (vif.host_ifname, vif.container_ifname):
                    netdev.delete(ipr, name)
        except NetlinkError as exc:
            raise BindingError(f"Cannot delete veth pair {vif.host_ifname}/{vif.container_ifname} "
                               f"of Neutron port {vif.port_id}: {exc}") from exc

    def present(self, vif: VIF) -> bool:
        with IPRoute() as ipr:
            return all(netdev.exists(ipr, name) for name in (vif.host_ifname, vif.container_ifname))

    def reset(self, vif: VIF) -> None:
        """The container end as Docker gives it back: down (addresses went with the sandbox); MAC and MTU again."""
        try:
            with IPRoute() as ipr:
                ipr.link("set", ifname=vif.container_ifname, state="down", address=vif.mac_address.lower(),
                         mtu=vif.mtu)
        except NetlinkError as exc:
            raise BindingError(f"Cannot reset {vif.container_ifname} of Neutron port {vif.port_id}: {exc}") from exc
