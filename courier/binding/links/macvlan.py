"""Nested MACVLAN: a bridge-mode macvlan device on link_iface with the container's own MAC."""

from __future__ import annotations

from typing import Any

from courier.binding.links.nested import NestedLink
from courier.binding.vif import VIF


class MacvlanLink(NestedLink):
    name = "macvlan"
    kind = "macvlan"
    kernel_module = "macvlan"

    def attributes(self, vif: VIF) -> dict[str, Any]:
        return {"macvlan_mode": "bridge", "address": vif.mac_address.lower()}
