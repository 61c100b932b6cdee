"""Nested VLAN on the real stack: container ports become subports of the VM port's trunk.

This kernel may lack 8021q: then the VLAN device (Join) cannot be made and that part skips, saying so, but the
Neutron/OVN side is still proven: subports go ACTIVE with the VLAN ids Courier gave them, and ARP written
from the VM with those tags is answered on exactly those VLANs.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from courier.binding.manager import Binder
from tests.integration.nested.flows import endpoint, ip, join, network, port_of, remove
from tests.integration.nested.live import HOST, Lab, in_ns, kernel_lacks, move_into, needs_root, ping, real_neutron
from tests.unit.dockerd import Dockerd

pytestmark = [pytest.mark.integration, needs_root]

VM_CIDR = "10.251.0.0/24"
C_CIDR = "10.252.0.0/24"


def courier(lab: Lab, vm, **overrides) -> Dockerd:
    conf = vm.conf("vlan", **overrides)
    return lab.track(Dockerd(real_neutron(), Binder(conf), conf))  # type: ignore[arg-type]


def container_network(lab: Lab, d: Dockerd):
    """A Docker network (Courier makes its Neutron network) with a peer port on it, plugged in a namespace."""
    net = network(d, C_CIDR)
    neutron_net = d.plugin.state.networks[net.network_id].network.id
    peer = lab.create("port", network_id=neutron_net, name=f"cnest-{lab.tag}-peer", **{"binding:host_id": HOST})
    lab.plugged("peer", peer, 24)
    assert lab.wait_status(peer["id"], "ACTIVE") == "ACTIVE"
    return net, neutron_net, peer


def vm_snapshot(vm) -> dict:
    port = vm.fresh_port()
    return {k: port[k] for k in ("mac_address", "fixed_ips", "allowed_address_pairs", "device_owner",
                                 "binding:host_id", "status")} | {"trunk": vm.subports()}


def test_subports_go_active_on_their_vlan_ids_and_ovn_answers_on_exactly_those(lab: Lab):
    vm = lab.vm(VM_CIDR, trunk=True)
    before = vm_snapshot(vm)
    d = courier(lab, vm)
    net, neutron_net, peer = container_network(lab, d)
    peer_ip = peer["fixed_ips"][0]["ip_address"]

    containers = [endpoint(d, net, with_mac=True) for _ in range(2)]
    subs = vm.subports()
    ports = [port_of(lab.ports(neutron_net), c) for c in containers]
    assert set(subs) == {p["id"] for p in ports} and len(set(subs.values())) == 2
    for port in ports:
        assert lab.wait_status(port["id"], "ACTIVE") == "ACTIVE"
        bound = lab.get("port", port["id"])
        assert bound["binding:profile"].get("tag") == subs[port["id"]]  # OVN's view of the VLAN
        assert bound["binding:profile"].get("parent_name") == vm.port["id"]
    vlans = [subs[p["id"]] for p in ports]
    unused = next(v for v in range(2, 4000) if v not in vlans)

    requests = [{"vlan": vlans[i], "src_mac": ports[i]["mac_address"], "src_ip": ip(c), "target_ip": peer_ip}
                for i, c in enumerate(containers)]
    requests += [
        {**requests[0], "vlan": unused},  # a VLAN no subport has
        {**requests[0], "vlan": vlans[1]},  # container 0's MAC/IP on container 1's VLAN: port security drops it
    ]
    replies = lab.probe(vm.ns, requests)
    for i, c in enumerate(containers):
        answered = {(r["vlan"], r["mac"]) for r in replies if r["ip"] == peer_ip and r["to"] == ip(c)}
        # answered on the container's own VLAN, by the peer; never on the unused VLAN nor on the other's
        assert answered == {(vlans[i], peer["mac_address"])}, replies
    assert all(r["vlan"] in vlans for r in replies), replies

    for c in containers:
        remove(d, c)
    assert vm.subports() == {}
    assert [p["id"] for p in lab.ports(neutron_net)] == [peer["id"]]  # Courier's ports are gone
    assert vm_snapshot(vm) == before
    d.close()


def test_twenty_parallel_containers_get_distinct_vlan_ids_and_leave_the_trunk_as_it_was(lab: Lab):
    vm = lab.vm(VM_CIDR, trunk=True)
    before = vm_snapshot(vm)
    d = courier(lab, vm)
    d.settles = False
    net = network(d, C_CIDR)
    with ThreadPoolExecutor(20) as pool:
        containers = list(pool.map(lambda _: endpoint(d, net, with_mac=True), range(20)))
    subs = vm.subports()
    assert len(subs) == 20 and len(set(subs.values())) == 20
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda c: remove(d, c), containers))
    d.settle()
    assert vm_snapshot(vm) == before
    neutron_net = d.plugin.state.networks[net.network_id].network.id
    assert lab.ports(neutron_net) == []
    d.network_rm(net)
    d.close()


def test_two_courier_processes_on_one_trunk_never_share_a_vlan_id(lab: Lab):
    """Each process knows only its own ids: Neutron's DuplicateSubPort sends the loser to another id."""
    vm = lab.vm(VM_CIDR, trunk=True)
    before = vm_snapshot(vm)
    d1 = courier(lab, vm, courier__nested_vlan_max=24)
    d2 = courier(lab, vm, courier__nested_vlan_max=24)
    for d in (d1, d2):
        d.settles = False
    net = network(d1, C_CIDR)
    for d in (d1, d2):  # both processes start before either adds anything: neither knows the other's ids
        assert d.plugin.nesting is not None
        d.plugin.nesting.segmentation_ids()._rng = random.Random(42)  # type: ignore[attr-defined]
    jobs = [d1] * 10 + [d2] * 10
    with ThreadPoolExecutor(20) as pool:
        containers = list(pool.map(lambda d: (d, endpoint(d, net, with_mac=True)), jobs))
    subs = vm.subports()
    assert len(subs) == 20 and len(set(subs.values())) == 20 and max(subs.values()) <= 24
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda dc: remove(dc[0], dc[1]), containers))
    assert vm_snapshot(vm) == before
    d1.network_rm(net)
    d1.close()
    d2.close()


def test_join_fails_clearly_without_8021q_and_leaves_no_device(lab: Lab):
    reason = kernel_lacks("vlan", "8021q")
    if reason is None:
        pytest.skip("this kernel has 8021q: the VLAN device is tested end to end instead")
    vm = lab.vm(VM_CIDR, trunk=True)
    d = courier(lab, vm)
    net = network(d, C_CIDR)
    c = endpoint(d, net, with_mac=True)
    status, _ = d.fails("NetworkDriver.Join", d.join_request(c))
    assert status == 500
    assert "t_c" not in in_ns(vm.ns, "ip", "-o", "link")
    binder = Binder(vm.conf("vlan"))
    vif = d.plugin.endpoints.vif(d.plugin.endpoints.endpoint(net.network_id, c.endpoint_id))
    vif = d.plugin.nesting.vif(vif, d.plugin.endpoints.endpoint(net.network_id, c.endpoint_id).port)  # type: ignore[union-attr]
    from courier.binding.errors import BindingError

    with pytest.raises(BindingError, match="this kernel has no vlan support \\(module 8021q missing\\)"):
        binder.bind(vif)
    remove(d, c)
    assert vm.subports() == {}
    d.network_rm(net)
    d.close()


def test_vlan_device_end_to_end(lab: Lab):
    reason = kernel_lacks("vlan", "8021q")
    if reason is not None:
        pytest.skip(reason)
    vm = lab.vm(VM_CIDR, trunk=True)
    d = courier(lab, vm)
    net, _, peer = container_network(lab, d)
    containers = [endpoint(d, net, with_mac=True) for _ in range(2)]
    for i, c in enumerate(containers):
        src = join(d, c)
        ns = lab.namespace(f"c{i}")
        move_into(vm.ns, src, ns, c.address)
    for i, _ in enumerate(containers):
        assert ping(f"cn{lab.tag}c{i}", peer["fixed_ips"][0]["ip_address"])
    for c in containers:
        remove(d, c, joined=True)
    assert vm.subports() == {}
    d.close()
