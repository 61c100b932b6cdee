"""A Neutron port as the binding layer's VIF: what both the Docker driver and the warm pool plug."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from courier.binding.vif import VIF, FixedIP
from courier.neutron import models as nm


def vif_for(port: nm.Port, network: nm.Network, subnets: Iterable[nm.Subnet], endpoint_id: str) -> VIF:
    by_id = {s.id: s for s in subnets}
    fixed = []
    for f in port.fixed_ips:
        subnet = by_id.get(f.subnet_id)
        if subnet is not None:
            fixed.append(FixedIP(ipaddress.ip_interface(f"{f.ip_address}/{subnet.cidr.prefixlen}"),
                                 subnet.gateway_ip))
    return VIF(endpoint_id=endpoint_id, port_id=port.id, network_id=port.network_id, mac_address=port.mac_address,
               mtu=network.mtu, vif_type=port.vif_type, vnic_type=port.vnic_type, vif_details=port.vif_details,
               fixed_ips=tuple(fixed), project_id=port.project_id)
