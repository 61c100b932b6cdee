"""What the driver takes and gives: plain domain values, no front end's wire format.

The Docker adapter (courier.api) builds these from libnetwork requests and turns the results into replies;
another front end (e.g. CNI) builds the same values from its own input.
"""

from __future__ import annotations

import dataclasses

from courier.neutron.models import IPNetwork


@dataclasses.dataclass(frozen=True)
class SubnetSpec:
    """One subnet a network asks for: its CIDR and gateway (address or ``address/len``; empty: none given)."""

    cidr: str
    gateway: str = ""


@dataclasses.dataclass(frozen=True)
class EndpointSpec:
    network_id: str
    endpoint_id: str
    addresses: tuple[str, ...]  # plain or CIDR form, at most one per IP version
    interface_mac: str | None = None  # the MAC the caller gave the interface already (it must be the port's)
    wanted_mac: str | None = None  # a MAC asked for (Docker's --mac-address) when the interface has none yet
    extra_tags: frozenset[str] = frozenset()  # Neutron tags the front end adds to the endpoint's (e.g. CNI's)


@dataclasses.dataclass(frozen=True)
class Route:
    destination: str
    next_hop: str


@dataclasses.dataclass(frozen=True)
class Attachment:
    """What joining an endpoint gives the container: the host-side interface to move in, and its routing."""

    host_ifname: str
    gateway_v4: str | None
    gateway_v6: str | None
    routes: tuple[Route, ...]


@dataclasses.dataclass(frozen=True)
class AddressPool:
    pool_id: str
    cidr: IPNetwork
