"""Nested VLAN: an 802.1Q device on link_iface tagged with the trunk subport's segmentation id."""

from __future__ import annotations

from typing import Any

from courier.binding.errors import BindingError
from courier.binding.links.nested import NestedLink
from courier.binding.vif import VIF


class VlanLink(NestedLink):
    name = "vlan"
    kind = "vlan"
    kernel_module = "8021q"

    def attributes(self, vif: VIF) -> dict[str, Any]:
        if vif.segmentation_id is None:
            raise BindingError(f"Neutron port {vif.port_id} has no VLAN id: it is not a subport of this VM's trunk")
        return {"vlan_id": vif.segmentation_id, "address": vif.mac_address.lower()}
