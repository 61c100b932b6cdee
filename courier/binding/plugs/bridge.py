"""vif_type ``bridge``: the host end goes into a Linux bridge (ML2/linuxbridge's brq<network>, or the one
vif_details names), created if missing as kuryr's bridge script does."""

from __future__ import annotations

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from courier.binding import netdev
from courier.binding.base import PlugDriver
from courier.binding.errors import BindingError
from courier.binding.vif import VIF


def bridge_name(vif: VIF) -> str:
    return str(vif.vif_details.get("bridge_name") or "brq" + vif.network_id[:11])


class BridgePlug(PlugDriver):
    vif_types = ("bridge",)

    def plug(self, vif: VIF) -> None:
        bridge = bridge_name(vif)
        try:
            with IPRoute() as ipr:
                netdev.ensure_bridge(ipr, bridge)
                netdev.set_master(ipr, vif.host_ifname, bridge)
                netdev.set_up(ipr, vif.host_ifname)
        except NetlinkError as exc:
            raise BindingError(f"Cannot put {vif.host_ifname} into Linux bridge {bridge} for Neutron port "
                               f"{vif.port_id}: {exc}") from exc

    def unplug(self, vif: VIF) -> None:
        # The bridge is shared by the network's ports (and owned by the agent): leave it.
        try:
            with IPRoute() as ipr:
                if netdev.exists(ipr, vif.host_ifname):
                    netdev.set_master(ipr, vif.host_ifname, None)
        except NetlinkError as exc:
            raise BindingError(f"Cannot take {vif.host_ifname} out of its Linux bridge (Neutron port "
                               f"{vif.port_id}): {exc}") from exc
