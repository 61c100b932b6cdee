"""Docker's calls for one container, split where the nested tests need to look in between."""

from __future__ import annotations

import ipaddress
import os
import uuid
from typing import Any

from tests.unit.dockerd import Container, Dockerd, Network


def docker_id() -> str:
    """Unique across runs: Courier finds Docker's networks and endpoints again by these ids in Neutron."""
    return uuid.uuid4().hex + uuid.uuid4().hex


def docker_mac() -> str:
    return "02:42:" + ":".join(f"{b:02x}" for b in os.urandom(4))


def network(d: Dockerd, cidr: str, **kwargs: Any) -> Network:
    return d.network_create(cidr, network_id=docker_id(), **kwargs)


def endpoint(d: Dockerd, net: Network, *, with_mac: bool, address: str = "") -> Container:
    """RequestAddress + CreateEndpoint, with Docker's MAC when the IPAM driver requires one (vlan)."""
    mac = docker_mac() if with_mac else ""
    options = {"com.docker.network.endpoint.macaddress": mac} if mac else {}
    got = d.ok("IpamDriver.RequestAddress", {"PoolID": net.v4[0].pool_id, "Address": address, "Options": options})
    c = Container(net, docker_id(), mac, got["Address"], "")
    reply = d.ok("NetworkDriver.CreateEndpoint", d.create_endpoint_request(c))
    c.mac = mac or (reply.get("Interface") or {}).get("MacAddress") or ""
    return c


def join(d: Dockerd, c: Container) -> str:
    c.join = d.ok("NetworkDriver.Join", d.join_request(c))
    return str(c.join["InterfaceName"]["SrcName"])


def remove(d: Dockerd, c: Container, *, joined: bool = False) -> None:
    ep = d.endpoint_request(c.network, c.endpoint_id)
    if joined:
        d.ok("NetworkDriver.Leave", ep)
    d.ok("NetworkDriver.DeleteEndpoint", ep)
    d.release_addresses(c)


def ip(c: Container) -> str:
    return str(ipaddress.ip_interface(c.address).ip)


def port_of(ports: list[dict[str, Any]], c: Container) -> dict[str, Any]:
    return next(p for p in ports if any(f["ip_address"] == ip(c) for f in p["fixed_ips"]))
