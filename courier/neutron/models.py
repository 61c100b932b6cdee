"""Neutron resources as Courier uses them: plain frozen records, never SDK objects, past this package."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclasses.dataclass(frozen=True)
class Network:
    id: str
    name: str
    mtu: int
    tags: frozenset[str] = frozenset()
    subnet_ids: tuple[str, ...] = ()
    shared: bool = False
    created_at: str = ""  # ISO 8601 (standard-attr-timestamp); "" when Neutron does not say


@dataclasses.dataclass(frozen=True)
class Subnet:
    id: str
    network_id: str
    cidr: IPNetwork
    gateway_ip: IPAddress | None
    subnetpool_id: str | None = None
    name: str = ""
    tags: frozenset[str] = frozenset()
    host_routes: tuple[tuple[IPNetwork, IPAddress], ...] = ()
    dns_nameservers: tuple[str, ...] = ()

    @property
    def ip_version(self) -> int:
        return self.cidr.version


@dataclasses.dataclass(frozen=True)
class SubnetPool:
    id: str
    name: str
    prefixes: tuple[IPNetwork, ...]
    default_prefixlen: int
    ip_version: int
    tags: frozenset[str] = frozenset()
    shared: bool = False
    created_at: str = ""


@dataclasses.dataclass(frozen=True)
class FixedIP:
    subnet_id: str
    ip_address: IPAddress


@dataclasses.dataclass(frozen=True)
class Port:
    id: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[FixedIP, ...]
    name: str = ""
    device_owner: str = ""
    device_id: str = ""
    status: str = ""
    host_id: str = ""
    vif_type: str = ""
    vnic_type: str = "normal"
    vif_details: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    revision_number: int = 0
    allowed_address_pairs: tuple[tuple[str, str], ...] = ()  # (ip_address, mac_address)
    project_id: str = ""
    created_at: str = ""

    def ip_in(self, subnet_id: str) -> IPAddress | None:
        return next((f.ip_address for f in self.fixed_ips if f.subnet_id == subnet_id), None)


@dataclasses.dataclass(frozen=True)
class Agent:
    """A Neutron agent (with ML2/OVN: one "OVN Controller agent" per chassis)."""

    agent_type: str
    host: str
    alive: bool
