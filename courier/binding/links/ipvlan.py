"""Nested IPVLAN: an L2-mode ipvlan device on link_iface; it shares the VM port's MAC."""

from __future__ import annotations

from typing import Any

from courier.binding.links.nested import NestedLink
from courier.binding.vif import VIF

IPVLAN_MODE_L2 = 0


class IpvlanLink(NestedLink):
    name = "ipvlan"
    kind = "ipvlan"
    kernel_module = "ipvlan"

    def attributes(self, vif: VIF) -> dict[str, Any]:
        return {"ipvlan_mode": IPVLAN_MODE_L2}
