"""Typed description of one container interface, shared by every binding driver (cf. os-vif's VIF objects)."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

IFNAMSIZ = 15  # Linux interface names are at most 15 characters.
# Each device name is a prefix and as much of the port id as fits: prefix + 11 characters.
PORT_SUFFIX_LEN = IFNAMSIZ - 4
# A Courier veth end: tap (host) or t_c (container, until Docker moves and renames it).
VETH_NAME = re.compile(rf"(tap|t_c)([0-9a-f-]{{{PORT_SUFFIX_LEN}}})")


@dataclasses.dataclass(frozen=True)
class DeviceNames:
    """The host devices named after one Neutron port, as Nova, os-vif, kuryr and the agents name them.

    Derived from the port id alone, so that unbind, gc and status find them without any state.
    """

    tap: str  # host end of the veth (ML2/linuxbridge and Calico scan for tap<port>)
    container: str  # container end, created in the host namespace
    qbr: str  # hybrid plug: the per-port Linux bridge...
    qvb: str  # ...its end of the veth pair to OVS...
    qvo: str  # ...and the OVS end

    @property
    def hybrid(self) -> tuple[str, str, str]:
        return self.qbr, self.qvb, self.qvo

    def all(self) -> tuple[str, ...]:
        return self.tap, self.container, self.qbr, self.qvb, self.qvo


def device_names(port_id: str) -> DeviceNames:
    def name(prefix: str) -> str:
        return (prefix + port_id)[:IFNAMSIZ - 1]

    return DeviceNames(tap=name("tap"), container=name("t_c"), qbr=name("qbr"), qvb=name("qvb"), qvo=name("qvo"))


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
        return device_names(self.port_id).tap

    @property
    def container_ifname(self) -> str:
        """Container end, created in the host namespace; Docker moves and renames it."""
        return device_names(self.port_id).container
