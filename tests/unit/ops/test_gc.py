"""courier.ops.gc against FakeNeutron and a fake host: what is a leftover, what is never touched."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest

from courier.neutron import tags
from courier.ops import gc
from courier.ops.docker import DockerEndpoint, DockerNetwork, DockerView
from courier.ops.host import OvsInterface, VethPair
from tests.fakes import FakeNeutron

HOST = "host-a"
KURYR = tags.DEVICE_OWNER


def docker_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


class FakeHost:
    def __init__(self, interfaces: list[OvsInterface] = (), veths: list[VethPair] = ()):  # type: ignore[assignment]
        self.interfaces, self.veths = list(interfaces), list(veths)
        self.removed: list[str] = []
        self.namespaces: set[str] = set()

    def ovs_interfaces(self) -> list[OvsInterface]:
        return self.interfaces

    def veth_pairs(self) -> list[VethPair]:
        return self.veths

    def remove_interface(self, iface: OvsInterface) -> None:
        self.removed.append(iface.name)

    def remove_veth(self, pair: VethPair) -> None:
        self.removed.append(pair.name)

    def namespace_exists(self, name: str) -> bool:
        return name in self.namespaces


class World:
    """Neutron + Docker + host, with helpers that make resources the way Courier does."""

    def __init__(self) -> None:
        self.neutron = FakeNeutron(known_hosts=[HOST, "host-b"])
        self.docker_networks: dict[str, DockerNetwork] = {}
        self.host = FakeHost()

    def now(self, later: float = 3600) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.neutron.clock + later, datetime.UTC)

    def network(self, *, in_docker: bool, host: str | None = HOST, extra: tuple[str, ...] = (),
                endpoints: tuple[DockerEndpoint, ...] = ()) -> tuple[str, Any]:
        did = docker_id()
        marks = (tags.host_tag(host),) if host else ()
        net = self.neutron.add_network(tags.network_name(did), tags=[*tags.docker_id_tags(did), *marks, *extra])
        if in_docker:
            self.docker_networks[did] = DockerNetwork(did, "n-" + did[:4], "kuryr", "kuryr", endpoints)
        return did, net

    def port(self, net: Any, cidr: str, *, device_id: str = "", host: str = HOST, extra_tags: tuple[str, ...] = (),
             owner: str = KURYR) -> Any:
        subnet = next((s for s in self.neutron.subnets.values() if s.network_id == net.id), None) \
            or self.neutron.add_subnet(net.id, cidr)
        return self.neutron.add_port(net.id, [{"subnet_id": subnet.id}], tags=extra_tags, device_owner=owner,
                                     device_id=device_id, **{"binding:host_id": host})

    def view(self) -> DockerView:
        return DockerView(host="unix:///fake", networks=dict(self.docker_networks))

    def plan(self, **kwargs: Any) -> gc.Plan:
        kwargs.setdefault("now", self.now())
        return gc.find_leftovers(self.neutron, self.view(), self.host, HOST, **kwargs)


def leftover_ids(plan: gc.Plan, kind: str) -> set[str]:
    return plan.ids(kind)


@pytest.fixture
def w() -> World:
    return World()


def test_port_whose_endpoint_docker_lost_is_a_leftover_and_live_ones_are_not(w: World) -> None:
    live_ep = docker_id()
    _, net = w.network(in_docker=True, endpoints=(DockerEndpoint(live_ep, "n", "c1", "cid", "", ("10.9.0.5",)),))
    live = w.port(net, "10.9.0.0/24", device_id=live_ep)
    gone = w.port(net, "10.9.0.0/24", device_id=docker_id())
    elsewhere = w.port(net, "10.9.0.0/24", device_id=docker_id(), host="host-b")
    adopted = w.port(net, "10.9.0.0/24", device_id=docker_id(), extra_tags=(tags.EXISTING_PORT,))

    plan = w.plan()

    assert leftover_ids(plan, "port") == {gone.id}
    assert live.id not in leftover_ids(plan, "port") and elsewhere.id not in leftover_ids(plan, "port")
    assert any(k.id == adopted.id and "adopted" in k.reason for k in plan.kept)


def test_cni_attachments_go_only_with_their_namespace_and_cni_pools_stay(w: World) -> None:
    net = w.neutron.add_network("pods")  # a user's network, no Docker tags: CNI's
    w.host.namespaces.add("cni-live")
    live = w.port(net, "10.9.9.0/24", device_id=docker_id(),
                  extra_tags=(tags.CNI_ATTACHMENT, tags.CNI_NETNS + "cni-live"))
    gone = w.port(net, "10.9.9.0/24", device_id=docker_id(),
                  extra_tags=(tags.CNI_ATTACHMENT, tags.CNI_NETNS + "cni-gone"))
    unnamed = w.port(net, "10.9.9.0/24", device_id=docker_id(), extra_tags=(tags.CNI_ATTACHMENT,))
    idle = w.port(net, "10.9.9.0/24", extra_tags=("courier.pool:" + HOST,))

    plan = w.plan()

    assert leftover_ids(plan, "port") == {gone.id}
    assert {live.id, unnamed.id, idle.id} <= {k.id for k in plan.kept}
    assert gc.find_leftovers(w.neutron, w.view(), None, HOST, now=w.now()).ids("port") == set()  # host unknown
    assert w.plan(drain_pools=True).ids("port") == {gone.id, idle.id}


def test_ipam_only_port_is_kept_while_docker_holds_its_address(w: World) -> None:
    did, net = w.network(in_docker=True)
    held = w.port(net, "10.9.1.0/24")
    free = w.port(net, "10.9.1.0/24")
    address = str(held.fixed_ips[0].ip_address)
    w.docker_networks[did] = DockerNetwork(did, "n", "macvlan", "kuryr", (
        DockerEndpoint(docker_id(), did, "c", "cid", "", (address,)),))

    assert leftover_ids(w.plan(), "port") == {free.id}


def test_young_resources_are_left_for_the_docker_call_in_progress(w: World) -> None:
    _, net = w.network(in_docker=False)
    port = w.port(net, "10.9.2.0/24", device_id=docker_id())
    w.neutron.add_subnetpool("kuryrPool-10.9.3.0/24", ["10.9.3.0/24"], 24)

    plan = w.plan(now=w.now(later=10), min_age=60)

    assert plan.leftovers == []
    assert {k.kind for k in plan.kept} >= {"port", "subnetpool"}
    assert port.id in {k.id for k in plan.kept}


def test_gone_network_goes_with_its_orphan_ports_and_its_pool(w: World) -> None:
    _, net = w.network(in_docker=False)
    pool = w.neutron.add_subnetpool("kuryrPool-10.9.4.0/24", ["10.9.4.0/24"], 24)
    subnet = w.neutron.add_subnet(net.id, "10.9.4.0/24", subnetpool_id=pool.id)
    port = w.neutron.add_port(net.id, [{"subnet_id": subnet.id}], device_owner=KURYR, device_id=docker_id(),
                              **{"binding:host_id": HOST})

    plan = w.plan()
    assert {(i.kind, i.id) for i in plan.leftovers} == {("port", port.id), ("network", net.id),
                                                        ("subnetpool", pool.id)}

    outcomes = gc.remove(plan, w.neutron, w.host)

    assert all(o.done for o in outcomes), outcomes
    assert [o.leftover.kind for o in outcomes] == ["port", "network", "subnetpool"]
    assert not w.neutron.networks and not w.neutron.subnets and not w.neutron.subnetpools and not w.neutron.ports


def test_networks_courier_did_not_make_here_are_never_leftovers(w: World) -> None:
    _, other_host = w.network(in_docker=False, host="host-b")
    _, unmarked = w.network(in_docker=False, host=None)
    did = docker_id()
    existing = w.neutron.add_network("user-net", tags=[*tags.docker_id_tags(did), tags.existing_network_tag(did),
                                                        tags.host_tag(HOST)])
    _, in_use = w.network(in_docker=False)
    w.port(in_use, "10.9.5.0/24", owner="network:router_interface")
    _, live = w.network(in_docker=True)

    plan = w.plan()

    assert leftover_ids(plan, "network") == set()
    kept = {k.id: k.reason for k in plan.kept}
    assert "no host mark" in kept[unmarked.id] and "pre-existing" in kept[existing.id]
    assert "ports remain" in kept[in_use.id]
    assert other_host.id not in kept and live.id not in kept
    assert leftover_ids(w.plan(any_host=True), "network") == {unmarked.id}


def test_subnetpools_other_than_free_kuryr_pools_are_kept(w: World) -> None:
    free = w.neutron.add_subnetpool("kuryrPool-10.9.6.0/24", ["10.9.6.0/24"], 24)
    w.neutron.add_subnetpool("kuryrPool-10.9.7.0/24", ["10.9.7.0/24"], 24, tags=[tags.EXISTING_SUBNETPOOL])
    w.neutron.add_subnetpool("user-pool", ["10.9.8.0/24"], 24)
    w.neutron.add_subnetpool("kuryr", ["10.200.0.0/16"], 24)
    used = w.neutron.add_subnetpool("kuryrPool-10.9.9.0/24", ["10.9.9.0/24"], 24)
    _, net = w.network(in_docker=True)
    w.neutron.add_subnet(net.id, "10.9.9.0/24", subnetpool_id=used.id)
    # kuryr-libnetwork's link of a pre-existing subnet: the subnet carries the pool id as a tag
    linked = w.neutron.add_subnetpool("kuryrPool-10.9.10.0/24", ["10.9.10.0/24"], 24)
    w.neutron.add_subnet(net.id, "10.9.10.0/24", tags=[linked.id])

    assert leftover_ids(w.plan(), "subnetpool") == {free.id}


def iface(name: str, port_id: str, owner: str = "courier", endpoint: str = "") -> OvsInterface:
    return OvsInterface(name=name, bridge="br-int", ofport=5,
                        external_ids={"owner": owner, "iface-id": port_id, "vm-uuid": endpoint or docker_id()})


def test_ovs_interfaces_of_gone_ports_are_leftovers_and_others_are_not(w: World) -> None:
    did, net = w.network(in_docker=True)
    port = w.port(net, "10.9.11.0/24", device_id=docker_id(), host="host-b")
    ep = docker_id()
    w.docker_networks[did] = DockerNetwork(did, "n", "kuryr", "kuryr", (DockerEndpoint(ep, did, "c", "i", "", ()),))
    gone = iface("tapgone000001", str(uuid.uuid4()))
    w.host.interfaces = [gone, iface("taplive000001", port.id), iface("tapkuryr00001", str(uuid.uuid4()), "kuryr"),
                         iface("tapinuse00001", str(uuid.uuid4()), endpoint=ep)]

    plan = w.plan()

    assert leftover_ids(plan, "ovs-interface") == {"tapgone000001"}
    assert any(k.id == "tapinuse00001" and "remove its container" in k.reason for k in plan.kept)
    gc.remove(plan, w.neutron, w.host)
    assert w.host.removed == ["tapgone000001"]


def test_veth_pairs_docker_never_took_are_leftovers_unless_plugged_or_a_port_here_has_them(w: World) -> None:
    _, net = w.network(in_docker=True)
    port = w.port(net, "10.9.12.0/24", device_id=docker_id(), extra_tags=(tags.EXISTING_PORT,))
    mine = port.id[:11]
    w.host.interfaces = [iface("tapinovs00001", port.id)]
    w.host.veths = [VethPair("tapaaaaaaaa-aa", "t_caaaaaaaa-aa", "aaaaaaaa-aa", False),
                    VethPair("tapbbbbbbbb-bb", "t_cbbbbbbbb-bb", "bbbbbbbb-bb", True),
                    VethPair("tap" + mine, "t_c" + mine, mine, False),
                    VethPair("tapinovs00001", "t_cinovs00001", "inovs00001", False)]

    assert leftover_ids(w.plan(), "veth") == {"tapaaaaaaaa-aa"}


def test_dry_run_removes_nothing_and_one_failure_does_not_stop_the_rest(w: World) -> None:
    _, net = w.network(in_docker=False)
    w.port(net, "10.9.13.0/24", device_id=docker_id())
    w.neutron.add_subnetpool("kuryrPool-10.9.14.0/24", ["10.9.14.0/24"], 24)
    before = w.neutron.snapshot()

    plan, outcomes = gc.reconcile(w.neutron, w.view(), w.host, HOST, dry_run=True, min_age=0)
    assert len(plan.leftovers) == 3 and outcomes == [] and w.neutron.snapshot() == before

    w.neutron.fail("delete_port")
    outcomes = gc.remove(plan, w.neutron, w.host)
    assert [(o.leftover.kind, o.done) for o in outcomes] == [("port", False), ("network", False),
                                                             ("subnetpool", True)]


def test_network_shared_with_another_hosts_docker_network_is_kept_and_its_ports_judged_locally(w: World) -> None:
    """Host A made the network; host B's Docker network uses it too (B's tags and mark on it)."""
    theirs = docker_id()
    ours_ep = docker_id()
    ours, net = w.network(in_docker=True, extra=(*tags.docker_id_tags(theirs), tags.host_tag("host-b")),
                          endpoints=(DockerEndpoint(ours_ep, "n", "c1", "cid", "", ("10.9.8.5",)),))
    w.port(net, "10.9.8.0/24", device_id=ours_ep)  # in use here
    w.port(net, "10.9.8.0/24", extra_tags=("courier.pool:x",))  # idle in this host's pool of a live network
    w.port(net, "10.9.8.0/24", device_id=docker_id(), host="host-b")  # host B's: never judged here

    plan = w.plan()
    assert leftover_ids(plan, "port") == set() and leftover_ids(plan, "network") == set()
    # host A's Docker network gone, host B's still there: kept (B's DeleteNetwork takes B's mark off)
    del w.docker_networks[ours]
    plan = w.plan()
    assert leftover_ids(plan, "network") == set()
    assert "several hosts" in {k.id: k.reason for k in plan.kept}[net.id]
