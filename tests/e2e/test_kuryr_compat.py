"""Drop-in for kuryr-libnetwork, as an operator's scripts see it (issue 13): the same Docker commands leave the
same names, tags and counts in Neutron that kuryr-libnetwork 18 leaves, and nothing after removal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests import stack
from tests.e2e.conftest import DockerSession

pytestmark = pytest.mark.e2e


def _get(path: str) -> dict:
    return stack.neutron("GET", path)


def _by_name(kind: str, name: str) -> list[dict]:
    return _get(f"/{kind}?name={quote(name, safe='')}")[kind]


def _endpoint_id(container: str, network: str) -> str:
    fmt = f'{{{{(index .NetworkSettings.Networks "{network}").EndpointID}}}}'
    return stack.docker("inspect", "-f", fmt, container).stdout.strip()


def _forget_docker_side(dk: DockerSession) -> None:
    """Remove containers and networks now, so the test can check (and then delete) what the user made."""
    dk.cleanup()
    dk.containers.clear()
    dk.networks.clear()


@pytest.fixture
def user_network() -> Iterator[dict]:
    """A Neutron network made by the user (outside Docker); deleted with all it holds after the test."""
    net = _get("/networks")  # warm the connection
    net = stack.neutron("POST", "/networks", {"network": {"name": f"user-net-{time.monotonic_ns()}"}})["network"]
    try:
        yield net
    finally:
        for port in _get(f"/ports?network_id={net['id']}")["ports"]:
            stack.neutron("DELETE", f"/ports/{port['id']}")
        stack.neutron("DELETE", f"/networks/{net['id']}")


# --- 1. --ip-range: kuryr names the subnetpool and the subnet after the range ---------------------------------


def test_ip_range_names_pool_and_subnet_after_the_range(dk: DockerSession) -> None:
    net = dk.network("--subnet", "10.236.0.0/16", "--ip-range", "10.236.7.0/24")
    pools = _by_name("subnetpools", "kuryrPool-10.236.7.0/24")
    subnets = _by_name("subnets", "kuryr-subnet-10.236.7.0/24")
    assert len(pools) == 1, pools
    assert len(subnets) == 1, subnets
    assert subnets[0]["subnetpool_id"] == pools[0]["id"]
    assert not _by_name("subnetpools", "kuryrPool-10.236.0.0/16")
    assert not _by_name("subnets", "kuryr-subnet-10.236.0.0/16")
    # Courier keeps the user's --subnet as the Neutron CIDR (docs/kuryr-compat.md): addresses come from the range
    assert subnets[0]["cidr"] == "10.236.0.0/16"
    c = dk.run("--net", net)
    assert dk.ip(c, net).startswith("10.236.7."), dk.ip(c, net)
    _forget_docker_side(dk)
    assert not _by_name("subnetpools", "kuryrPool-10.236.7.0/24")


def test_ip_range_names_on_a_dual_stack_network(dk: DockerSession) -> None:
    net = dk.network("--ipv6", "--subnet", "10.237.0.0/16", "--ip-range", "10.237.4.0/24",
                     "--subnet", "fd42:237::/64")
    assert len(_by_name("subnets", "kuryr-subnet-10.237.4.0/24")) == 1
    assert not _by_name("subnets", "kuryr-subnet-10.237.0.0/16")
    assert len(_by_name("subnets", "kuryr-subnet-fd42:237::/64")) == 1
    c = dk.run("--net", net)
    assert dk.ip(c, net).startswith("10.237.4.")


# --- 2. a container's port is found by kuryr's device-owner tag and by its endpoint name --------------------


def test_port_carries_kuryr_tag_and_endpoint_name(dk: DockerSession) -> None:
    net = dk.network("--subnet", "10.238.1.0/24")
    c = dk.run("--net", net)
    endpoint = _endpoint_id(c, net)
    ip = dk.ip(c, net)
    deadline = time.monotonic() + 10  # the name lands right after CreateEndpoint's reply
    while True:
        named = _by_name("ports", f"{endpoint}-port")
        if named or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(named) == 1, f"no port named {endpoint}-port"
    port = named[0]
    assert [f["ip_address"] for f in port["fixed_ips"]] == [ip]
    assert "compute:kuryr" in port["tags"], port["tags"]
    assert port["device_owner"] == "compute:kuryr" and port["device_id"] == endpoint
    tagged = _get(f"/ports?tags=compute:kuryr&network_id={port['network_id']}")["ports"]
    assert [p["id"] for p in tagged] == [port["id"]]
    assert f"kuryr.net.uuid.lh:{endpoint[:32]}" in port["tags"] and f"kuryr.net.uuid.uh:{endpoint[32:]}" in port["tags"]


# --- 3. an existing network that already has a subnet with the requested CIDR --------------------------------


@pytest.mark.parametrize("by", ["name", "uuid"])
def test_existing_network_subnet_with_same_cidr_is_used(dk: DockerSession, user_network: dict, by: str) -> None:
    cidr = "10.238.2.0/24" if by == "name" else "10.238.3.0/24"
    subnet = stack.neutron("POST", "/subnets", {"subnet": {"network_id": user_network["id"], "cidr": cidr,
                                                           "ip_version": 4, "name": "users-own"}})["subnet"]
    option = f"neutron.net.{by}={user_network['name'] if by == 'name' else user_network['id']}"
    pools_before = {p["id"] for p in _get("/subnetpools")["subnetpools"]}
    net = dk.network("--subnet", cidr, "-o", option)
    assert [s["id"] for s in _get(f"/subnets?network_id={user_network['id']}")["subnets"]] == [subnet["id"]]
    c1, c2 = dk.run("--net", net), dk.run("--net", net)
    assert dk.ip(c1, net).startswith(cidr.rsplit(".", 2)[0])
    result = dk.exec(c1, "ping", "-c", "2", "-W", "3", dk.ip(c2, net), check=False)
    assert result.returncode == 0, result.stdout
    _forget_docker_side(dk)
    kept = _get(f"/subnets/{subnet['id']}")["subnet"]
    assert kept["name"] == "users-own" and not [t for t in kept["tags"] if t.startswith(("kuryr", "courier"))]
    network = _get(f"/networks/{user_network['id']}")["network"]
    assert network["subnets"] == [subnet["id"]]
    assert not [t for t in network["tags"] if t.startswith(("kuryr", "courier"))], network["tags"]
    assert {p["id"] for p in _get("/subnetpools")["subnetpools"]} == pools_before
    assert _get(f"/ports?network_id={user_network['id']}&device_owner=compute:kuryr")["ports"] == []


# --- 4. a pre-created dual-stack port, adopted with exactly its two addresses --------------------------------


def test_precreated_dual_stack_port_is_adopted_and_given_back(dk: DockerSession, user_network: dict) -> None:
    v4 = stack.neutron("POST", "/subnets", {"subnet": {"network_id": user_network["id"], "cidr": "10.238.4.0/24",
                                                       "ip_version": 4}})["subnet"]
    v6 = stack.neutron("POST", "/subnets", {"subnet": {
        "network_id": user_network["id"], "cidr": "fd42:238:4::/64", "ip_version": 6,
        "ipv6_address_mode": "dhcpv6-stateful", "ipv6_ra_mode": "dhcpv6-stateful"}})["subnet"]
    port = stack.neutron("POST", "/ports", {"port": {
        "network_id": user_network["id"], "name": "dual-precreated", "tags": ["users-own-tag"],
        "fixed_ips": [{"subnet_id": v4["id"], "ip_address": "10.238.4.40"},
                      {"subnet_id": v6["id"], "ip_address": "fd42:238:4::40"}]}})["port"]
    net = dk.network("--ipv6", "--subnet", "10.238.4.0/24", "--subnet", "fd42:238:4::/64",
                     "-o", f"neutron.net.uuid={user_network['id']}")
    holder = dk.run("--net", net)  # the container is connected afterwards, as the operator did
    stack.docker("network", "disconnect", net, holder)
    stack.docker("network", "connect", "--ip", "10.238.4.40", "--ip6", "fd42:238:4::40", net, holder)
    assert dk.ip(holder, net) == "10.238.4.40" and dk.ip(holder, net, v6=True) == "fd42:238:4::40"
    ours = _get(f"/ports?network_id={user_network['id']}&device_owner=compute:kuryr")["ports"]
    assert [p["id"] for p in ours] == [port["id"]], "the pre-created port is used, no second port made"
    peer = dk.run("--net", net)
    result = dk.exec(peer, "ping", "-c", "2", "-W", "3", "10.238.4.40", check=False)
    assert result.returncode == 0, result.stdout
    _forget_docker_side(dk)
    back = _get(f"/ports/{port['id']}")["port"]
    assert back["device_owner"] == "" and back["device_id"] == "" and back["binding:host_id"] == ""
    assert back["mac_address"] == port["mac_address"] and back["name"] == "dual-precreated"
    assert sorted(back["tags"]) == ["users-own-tag"]
    assert sorted(f["ip_address"] for f in back["fixed_ips"]) == ["10.238.4.40", "fd42:238:4::40"]
    assert [p["id"] for p in _get(f"/ports?network_id={user_network['id']}")["ports"]] == [port["id"]]
