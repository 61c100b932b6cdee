"""Typed description of one container interface, shared by every binding driver (cf. os-vif's VIF objects)."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from typing import Any

IFNAMSIZ = 15  # Linux interface names are at most 15 characters.


@dataclasses.dataclass(frozen=True)
class FixedIP:
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface  # address with the subnet's prefix length
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None


@dataclasses.dataclass(frozen=True)
class VIF:
    """Everything a binding driver needs about a Neutron port, and nothing it must look up again."""

    endpoint_id: str  # Docker endpoint id: names the host-side devices so unbind works without any state
    port_id: str
    network_id: str  # Neutron network id
    mac_address: str
    mtu: int
    vif_type: str  # binding:vif_type, e.g. "ovs", "bridge", "tap"
    vnic_type: str = "normal"
    vif_details: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    fixed_ips: tuple[FixedIP, ...] = ()
    segmentation_id: int | None = None  # VLAN id when nested on a trunk
    project_id: str = ""  # the port's project: kuryr-lib's <bindir>/<vif_type> scripts receive it

    @property
    def host_ifname(self) -> str:
        """Host end of the veth: tap + port id, what Nova, kuryr and agents that scan for devices
        (ML2/linuxbridge, Calico) expect."""
        return ("tap" + self.port_id)[:IFNAMSIZ - 1]

    @property
    def container_ifname(self) -> str:
        """Container end, created in the host namespace; Docker moves and renames it."""
        return ("t_c" + self.port_id)[:IFNAMSIZ - 1]
