"""courier.ops.status.collect and courier.ops.docker.snapshot without a stack: what lines up, what is reported."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from courier.neutron import tags
from courier.ops import status
from courier.ops.docker import DockerEndpoint, DockerNetwork, DockerView, snapshot
from courier.ops.host import OvsInterface
from tests.fakes import FakeNeutron

HOST = "host-a"


def docker_id() -> str:
    return uuid.uuid4().hex * 2


def setup_network(neutron: FakeNeutron, *, active: bool = True) -> tuple[DockerNetwork, Any, Any]:
    did, eid = docker_id(), docker_id()
    net = neutron.add_network(tags.network_name(did), tags=[*tags.docker_id_tags(did), tags.host_tag(HOST)])
    subnet = neutron.add_subnet(net.id, "10.9.0.0/24")
    port = neutron.add_port(net.id, [{"subnet_id": subnet.id}], device_owner=tags.DEVICE_OWNER, device_id=eid,
                            **{"binding:host_id": HOST})
    if active:
        neutron.ports[port.id] = dataclasses.replace(port, status="ACTIVE")
    address = str(port.fixed_ips[0].ip_address)
    dnet = DockerNetwork(did, "net1", "kuryr", "kuryr", (DockerEndpoint(eid, did, "c1", "cid", "", (address,)),))
    return dnet, net, neutron.ports[port.id]


def ovs_for(port: Any) -> list[OvsInterface]:
    return [OvsInterface("tap" + port.id[:11], "br-int", {"iface-id": port.id, "owner": "courier",
                                                          "ovn-installed": "true"}, 7)]


def test_a_consistent_network_has_no_problems() -> None:
    neutron = FakeNeutron(known_hosts=[HOST])
    dnet, net, port = setup_network(neutron)
    doc = status.collect(neutron, DockerView("d", {dnet.id: dnet}), ovs_for(port), HOST, "kuryr")

    (entry,) = doc["networks"]
    assert doc["problems"] == [] and entry["neutron"]["id"] == net.id and entry["neutron"]["host_mark"] == HOST
    (ep,) = entry["endpoints"]
    assert ep["port"]["id"] == port.id and ep["port"]["vif_type"] == "ovs" and ep["port"]["status"] == "ACTIVE"
    assert ep["port"]["ovs"] == {"name": "tap" + port.id[:11], "bridge": "br-int", "ofport": 7, "error": "",
                                 "ovn_installed": True, "owner": "courier"}
    assert [s["cidr"] for s in entry["subnets"]] == ["10.9.0.0/24"]


def test_what_does_not_line_up_is_reported() -> None:
    neutron = FakeNeutron(known_hosts=[HOST])
    dnet, _, port = setup_network(neutron, active=False)
    lost = DockerNetwork(docker_id(), "lost", "kuryr", "kuryr")
    gone_did = docker_id()
    neutron.add_network("gone", tags=[*tags.docker_id_tags(gone_did), tags.host_tag(HOST)])
    other = DockerNetwork(docker_id(), "bridge", "bridge", "default")
    view = DockerView("d", {dnet.id: dnet, lost.id: lost, other.id: other})

    doc = status.collect(neutron, view, [], HOST, "kuryr")

    problems = "\n".join(doc["problems"])
    assert f"port {port.id} is DOWN" in problems
    assert f"port {port.id} has no OVS interface" in problems
    assert "Docker network lost (driver kuryr) has no Neutron network" in problems
    assert f"Docker network {gone_did} that Docker no longer has: courier gc removes it" in problems
    assert "bridge" not in {n["docker"]["name"] for n in doc["networks"] if n["docker"]}


class StubClient:
    host = "unix:///stub"

    def __init__(self, networks: dict[str, dict[str, Any]]):
        self._networks = networks

    def networks(self) -> list[dict[str, Any]]:
        return [{"Id": i} for i in self._networks]

    def network(self, network_id: str) -> dict[str, Any]:
        return self._networks[network_id]


def test_snapshot_reads_endpoints_of_containers_and_of_endpoints_without_one() -> None:
    did, eid1, eid2 = docker_id(), docker_id(), docker_id()
    client = StubClient({did: {"Id": did, "Name": "n", "Driver": "kuryr", "IPAM": {"Driver": "kuryr"}, "Containers": {
        "c0ffee": {"Name": "web", "EndpointID": eid1, "MacAddress": "02:42:AA:00:00:01",
                   "IPv4Address": "10.9.0.5/24", "IPv6Address": "fd00::5/64"},
        f"ep-{eid2}": {"Name": "", "EndpointID": eid2, "MacAddress": "", "IPv4Address": "10.9.0.6/24",
                       "IPv6Address": ""}}}})

    view = snapshot(client)  # type: ignore[arg-type]

    (net,) = view.networks.values()
    assert (net.name, net.driver, net.ipam_driver) == ("n", "kuryr", "kuryr")
    assert view.endpoints[eid1] == DockerEndpoint(eid1, did, "web", "c0ffee", "02:42:aa:00:00:01",
                                                  ("10.9.0.5", "fd00::5"))
    assert view.endpoints[eid2].container_id == "" and view.endpoints[eid2].addresses == ("10.9.0.6",)
    assert view.holds_address(did, "10.9.0.6") and not view.holds_address(did, "10.9.0.7")
    assert view.holds_address(None, "fd00::5") and not view.holds_address(docker_id(), "10.9.0.5")


def test_cni_attachments_are_listed_with_their_namespace_and_are_no_problem() -> None:
    neutron = FakeNeutron(known_hosts=[HOST])
    net = neutron.add_network("pods")
    subnet = neutron.add_subnet(net.id, "10.9.7.0/24")
    port = neutron.add_port(net.id, [{"subnet_id": subnet.id}], device_owner=tags.DEVICE_OWNER,
                            device_id=docker_id(), tags=[tags.CNI_ATTACHMENT, tags.CNI_NETNS + "cni-1"],
                            **{"binding:host_id": HOST})

    doc = status.collect(neutron, DockerView("d", {}), ovs_for(port), HOST, "kuryr")

    (entry,) = doc["networks"]
    assert doc["problems"] == [] and entry["neutron"]["id"] == net.id
    assert [(a["id"], a["netns"]) for a in entry["cni_attachments"]] == [(port.id, "cni-1")]
