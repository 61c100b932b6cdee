"""deployment_type = nested over FakeNeutron: trunk subports (vlan), allowed address pairs (macvlan/ipvlan)."""

from __future__ import annotations

import ipaddress
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from courier.driver import nested
from courier.driver.nested.vlan import SegmentationIds, VlanNesting
from courier.exceptions import InvalidRequest
from tests.fakes import FakeBinder, FakeNeutron, _failure
from tests.unit.dockerd import ENDPOINT_OPTIONS, Container, Dockerd, Network, docker_id, make_conf

VM_NET_CIDR = "10.60.0.0/24"


class Vm:
    """A Nova VM's port (optionally a trunk parent) in FakeNeutron."""

    def __init__(self, neutron: FakeNeutron, trunk: bool = True):
        self.net = neutron.add_network("vm-net")
        self.subnet = neutron.add_subnet(self.net.id, VM_NET_CIDR)
        self.port = neutron.add_port(self.net.id, [{"subnet_id": self.subnet.id}], name="vm",
                                     **{"binding:host_id": "compute-1", "device_owner": "compute:nova"})
        self.trunk_id = neutron.add_trunk(self.port.id) if trunk else None


def conf(vm: Vm, driver: str, **extra: Any):
    return make_conf(deployment_type="nested", binding__driver=f"kuryr.lib.binding.drivers.{driver}",
                     courier__nested_vm_port=vm.port.id, **extra)


def run(d: Dockerd, net: Network, mac: str = "") -> Container:
    """`docker run`; mac "" is what dockerd sends when the IPAM driver does not require a MAC."""
    pool = net.v4[0].pool_id
    options = {"com.docker.network.endpoint.macaddress": mac} if mac else {}
    address = d.ok("IpamDriver.RequestAddress", {"PoolID": pool, "Address": "", "Options": options})["Address"]
    c = Container(net, docker_id(), mac, address, "")
    reply = d.ok("NetworkDriver.CreateEndpoint", d.create_endpoint_request(c))
    c.mac = mac or (reply.get("Interface") or {}).get("MacAddress") or ""
    c.join = d.ok("NetworkDriver.Join", d.join_request(c))
    return c


def rm(d: Dockerd, c: Container) -> None:
    d.rm(c)


def subports(neutron: FakeNeutron, vm: Vm) -> dict[str, int]:
    assert vm.trunk_id is not None
    return {s["port_id"]: s["segmentation_id"] for s in neutron.trunks[vm.trunk_id]["sub_ports"]}


def port_of(neutron: FakeNeutron, c: Container):
    ip = ipaddress.ip_interface(c.address).ip
    return next(p for p in neutron.ports.values() if any(f.ip_address == ip for f in p.fixed_ips))


# --- configuration ------------------------------------------------------------------------------------------------


def test_baremetal_builds_no_strategy():
    assert nested.build(make_conf(), FakeNeutron()) is None


@pytest.mark.parametrize("overrides, message", [
    ({"deployment_type": "nested"}, "needs [binding] driver = vlan, macvlan or ipvlan"),
    ({"deployment_type": "nested", "binding__driver": "kuryr.lib.binding.drivers.sriov"}, "not kuryr.lib.binding"),
    ({"binding__driver": "macvlan"}, "set [DEFAULT] deployment_type = nested"),
    ({"deployment_type": "nested", "binding__driver": "vlan", "courier__nested_vlan_min": 10,
      "courier__nested_vlan_max": 9}, "nested_vlan_min (10) is above nested_vlan_max (9)"),
])
def test_inconsistent_configuration_is_refused_at_start(overrides, message):
    with pytest.raises(InvalidRequest, match=None) as exc:
        nested.build(make_conf(**overrides), FakeNeutron())
    assert message in str(exc.value)


def test_kuryr_driver_paths_choose_the_strategy():
    neutron = FakeNeutron()
    vm = Vm(neutron)
    for name, cls in nested.STRATEGIES.items():
        assert type(nested.build(conf(vm, name), neutron)) is cls


# --- VLAN ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def neutron() -> FakeNeutron:
    return FakeNeutron()


@pytest.fixture
def vm(neutron: FakeNeutron) -> Vm:
    return Vm(neutron)


def vlan_docker(neutron: FakeNeutron, vm: Vm, **extra: Any) -> Dockerd:
    return Dockerd(neutron, FakeBinder(), conf(vm, "vlan", **extra))


def test_vlan_containers_become_subports_with_distinct_vlan_ids_and_go_without_a_trace(neutron, vm):
    d = vlan_docker(neutron, vm)
    net = d.network_create("10.61.0.0/24")
    before = neutron.snapshot(revisions=False)
    containers = [d.run(net) for _ in range(3)]

    subs = subports(neutron, vm)
    assert len(set(subs.values())) == 3
    for c in containers:
        port = port_of(neutron, c)
        assert port.host_id == ""  # no host binds a subport; the trunk carries it
        vif = next(v for v in d.binder.bind_calls if v.endpoint_id == c.endpoint_id)
        assert vif.segmentation_id == subs[port.id]
    assert d.ok("IpamDriver.GetCapabilities")["RequiresMACAddress"] is True

    for c in containers:
        d.rm(c)
    assert subports(neutron, vm) == {}
    assert neutron.snapshot(revisions=False) == before
    d.network_rm(net)
    d.close()


def test_vlan_ids_come_from_the_configured_range_and_exhaustion_is_a_clear_error(neutron, vm):
    d = vlan_docker(neutron, vm, courier__nested_vlan_min=100, courier__nested_vlan_max=101)
    net = d.network_create("10.61.0.0/24")
    before = neutron.snapshot(revisions=False)
    a, b = d.run(net), d.run(net)
    assert sorted(subports(neutron, vm).values()) == [100, 101]

    address, _ = d.request_addresses(net, "02:42:00:00:00:99")
    c = Container(net, docker_id(), "02:42:00:00:00:99", address, "")
    status, err = d.fails("NetworkDriver.CreateEndpoint", d.create_endpoint_request(c))
    assert status == 409 and "no free VLAN id in 100..101" in err and "nested_vlan_max" in err
    d.release_addresses(c)  # what Docker does after a failed CreateEndpoint

    d.rm(a)
    c2 = d.run(net)  # a released id is given out again
    assert sorted(subports(neutron, vm).values()) == [100, 101]
    for x in (b, c2):
        d.rm(x)
    assert neutron.snapshot(revisions=False) == before
    d.close()


def test_vlan_without_a_trunk_is_a_clear_error_and_leaves_nothing(neutron):
    vm = Vm(neutron, trunk=False)
    d = vlan_docker(neutron, vm)
    net = d.network_create("10.61.0.0/24")
    before = neutron.snapshot(revisions=False)
    address, _ = d.request_addresses(net, "02:42:00:00:00:98")
    c = Container(net, docker_id(), "02:42:00:00:00:98", address, "")
    status, err = d.fails("NetworkDriver.CreateEndpoint", d.create_endpoint_request(c))
    assert status == 400 and f"VM port {vm.port.id} is not the parent of a trunk" in err
    d.release_addresses(c)
    assert neutron.snapshot(revisions=False) == before
    d.close()


def test_twenty_parallel_containers_get_distinct_vlan_ids(neutron, vm):
    d = vlan_docker(neutron, vm)
    d.settles = False
    net = d.network_create("10.61.0.0/24")
    before = neutron.snapshot(revisions=False)
    with ThreadPoolExecutor(20) as pool:
        containers = list(pool.map(lambda _: d.run(net), range(20)))
    subs = subports(neutron, vm)
    assert len(subs) == 20 and len(set(subs.values())) == 20
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(d.rm, containers))
    d.settle()
    assert neutron.snapshot(revisions=False) == before
    d.close()


def test_two_processes_on_one_trunk_retry_on_neutrons_duplicate_vlan_conflict(neutron, vm):
    """Each process only knows its own ids; Neutron's DuplicateSubPort makes the loser re-read and pick again."""
    d1, d2 = vlan_docker(neutron, vm), vlan_docker(neutron, vm)
    net = d1.network_create("10.61.0.0/24")
    first = d1.run(net)
    assert d2.plugin.nesting is not None
    ids = d2.plugin.nesting.segmentation_ids()  # seeded now; then d1 adds more behind its back
    same = random.Random(7)
    seg1 = subports(neutron, vm)[port_of(neutron, first).id]
    ids._rng = type("Fixed", (), {"choice": staticmethod(lambda free: seg1 if seg1 in free else same.choice(free))})()
    ids._known.pop(port_of(neutron, first).id, None)  # d2 does not know d1's subport (as if seeded earlier)

    address, _ = d2.request_addresses(net, "02:42:00:00:00:97")
    c = Container(net, docker_id(), "02:42:00:00:00:97", address, "")
    d2.start(c)
    subs = subports(neutron, vm)
    assert len(subs) == 2 and len(set(subs.values())) == 2
    assert neutron.calls["add_subports"] == 3  # d1 once, d2 twice (conflict, then another id)
    d2.rm(c)
    d1.rm(first)
    assert subports(neutron, vm) == {}
    d1.close()
    d2.close()


def test_vlan_id_survives_a_restart_and_release_without_delete_endpoint_still_cleans_up(neutron, vm):
    d = vlan_docker(neutron, vm)
    net = d.network_create("10.61.0.0/24")
    before = neutron.snapshot(revisions=False)
    address, _ = d.request_addresses(net, "02:42:00:00:00:96")
    c = Container(net, docker_id(), "02:42:00:00:00:96", address, "")
    d.ok("NetworkDriver.CreateEndpoint", d.create_endpoint_request(c))
    seg = subports(neutron, vm)[port_of(neutron, c).id]

    d = d.restart()  # a new process: the VLAN id is read back from the trunk
    d.ok("NetworkDriver.Join", d.join_request(c))
    assert d.binder.bind_calls[-1].segmentation_id == seg
    d.ok("NetworkDriver.Leave", d.endpoint_request(net, c.endpoint_id))

    d = d.restart()  # DeleteEndpoint never comes (Docker died): ReleaseAddress detaches and deletes
    d.release_addresses(c)
    assert subports(neutron, vm) == {}
    assert neutron.snapshot(revisions=False) == before
    d.close()


def test_segmentation_ids_never_hand_out_one_id_twice_under_contention():
    neutron = FakeNeutron()
    vm = Vm(neutron)
    net = neutron.add_network("c")
    sub = neutron.add_subnet(net.id, "10.62.0.0/24")
    ports = [neutron.add_port(net.id, [{"subnet_id": sub.id}]) for _ in range(30)]
    assert vm.trunk_id is not None
    ids = SegmentationIds(neutron, vm.trunk_id, 1, 30, [])
    barrier = threading.Barrier(30)

    def add(port_id: str) -> int:
        barrier.wait()
        return ids.add(port_id)

    with ThreadPoolExecutor(30) as pool:
        got = list(pool.map(add, [p.id for p in ports]))
    assert sorted(got) == list(range(1, 31))
    assert neutron.calls["add_subports"] <= 30  # no conflicts: the in-process lock kept them apart (and batched)


@pytest.mark.parametrize("host, vif_type, message", [
    ("compute-9", "ovs", "is bound to host compute-9"),
    ("", "vhostuser", "has binding:vif_type vhostuser, which nested mode cannot use"),
])
def test_a_bound_port_or_an_unknown_vif_type_is_refused_and_nothing_changes(neutron, vm, host, vif_type, message):
    import dataclasses

    strategy = VlanNesting(conf(vm, "vlan"), neutron)  # type: ignore[arg-type]
    net = neutron.add_network("c")
    sub = neutron.add_subnet(net.id, "10.62.0.0/24")
    port = neutron.add_port(net.id, [{"subnet_id": sub.id}])
    neutron.ports[port.id] = port = dataclasses.replace(port, host_id=host, vif_type=vif_type)
    before = neutron.snapshot()
    with pytest.raises(InvalidRequest) as exc:
        strategy.attach(port, None)
    assert message in str(exc.value)
    assert neutron.snapshot() == before


# --- MACVLAN / IPVLAN ---------------------------------------------------------------------------------------------


def pair_docker(neutron: FakeNeutron, vm: Vm, driver: str, **extra: Any) -> tuple[Dockerd, Network]:
    d = Dockerd(neutron, FakeBinder(), conf(vm, driver, **extra))
    net = d.network_create(VM_NET_CIDR, options={"neutron.net.uuid": vm.net.id})
    return d, net


def vm_pairs(neutron: FakeNeutron, vm: Vm) -> set[tuple[str, str]]:
    return set(neutron.ports[vm.port.id].allowed_address_pairs)


def test_macvlan_containers_get_vrrp_macs_in_the_vm_ports_pairs(neutron, vm):
    d, net = pair_docker(neutron, vm, "macvlan")
    before = neutron.snapshot(revisions=False)
    assert d.ok("IpamDriver.GetCapabilities")["RequiresMACAddress"] is False
    a, b = run(d, net), run(d, net)
    for c in (a, b):
        port = port_of(neutron, c)
        assert port.mac_address.startswith("00:00:5e:00:01:") and c.mac == port.mac_address
        assert port.host_id == "" and neutron.port_admin_state[port.id] is False
        assert d.binder.bind_calls[-1 if c is b else -2].mac_address == port.mac_address
    assert vm_pairs(neutron, vm) == {(str(ipaddress.ip_interface(c.address).ip), c.mac) for c in (a, b)}
    assert a.mac != b.mac
    rm(d, a)
    rm(d, b)
    assert vm_pairs(neutron, vm) == set()
    assert neutron.snapshot(revisions=False) == before
    d.close()


def test_ipvlan_pairs_carry_the_vm_mac_and_docker_gets_no_mac(neutron, vm):
    d, net = pair_docker(neutron, vm, "ipvlan")
    before = neutron.snapshot(revisions=False)
    c = run(d, net)
    assert c.mac == ""  # CreateEndpoint answered no MAC: the ipvlan device keeps the VM's
    assert vm_pairs(neutron, vm) == {(str(ipaddress.ip_interface(c.address).ip), vm.port.mac_address)}
    rm(d, c)
    assert neutron.snapshot(revisions=False) == before
    d.close()


def test_macvlan_port_mode_pairs_the_container_port_mac_like_kuryr(neutron, vm):
    d, net = pair_docker(neutron, vm, "macvlan", courier__nested_macvlan_mac="port")
    c = run(d, net)
    port = port_of(neutron, c)
    assert not port.mac_address.startswith("00:00:5e") and c.mac == port.mac_address
    assert vm_pairs(neutron, vm) == {(str(ipaddress.ip_interface(c.address).ip), port.mac_address)}
    rm(d, c)
    assert vm_pairs(neutron, vm) == set()
    d.close()


def test_twenty_parallel_macvlan_containers_all_get_their_pairs(neutron, vm):
    d, net = pair_docker(neutron, vm, "macvlan")
    d.settles = False
    before = neutron.snapshot(revisions=False)
    with ThreadPoolExecutor(20) as pool:
        containers = list(pool.map(lambda _: run(d, net), range(20)))
    assert len(vm_pairs(neutron, vm)) == 20
    assert len({c.mac for c in containers}) == 20
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda c: rm(d, c), containers))
    d.settle()
    assert vm_pairs(neutron, vm) == set()
    assert neutron.snapshot(revisions=False) == before
    d.close()


def test_a_concurrent_change_of_the_vm_port_is_never_lost(neutron, vm, monkeypatch):
    """Someone else adds a pair between Courier's read and write: If-Match fails (412), Courier re-reads."""
    d, net = pair_docker(neutron, vm, "ipvlan")
    real = neutron.update_port
    done = []

    def racing(port_id: str, if_revision: int | None = None, **attrs: Any):
        if port_id == vm.port.id and not done:
            done.append(True)
            current = neutron.ports[vm.port.id]
            real(port_id, allowed_address_pairs=[{"ip_address": "10.60.0.250", "mac_address": current.mac_address}])
        return real(port_id, if_revision=if_revision, **attrs)

    monkeypatch.setattr(neutron, "update_port", racing)
    c = run(d, net)
    assert vm_pairs(neutron, vm) == {("10.60.0.250", vm.port.mac_address),
                                     (str(ipaddress.ip_interface(c.address).ip), vm.port.mac_address)}
    rm(d, c)
    assert vm_pairs(neutron, vm) == {("10.60.0.250", vm.port.mac_address)}
    d.close()


def test_one_refused_pair_does_not_fail_the_others_written_with_it(neutron, vm):
    from courier.driver.nested.macvlan import AddressPairs

    strategy = nested.build(conf(vm, "ipvlan"), neutron)
    assert strategy is not None
    pairs = AddressPairs(neutron, strategy.vm_port)
    real = neutron.update_port

    def picky(port_id: str, if_revision: int | None = None, **attrs: Any):
        if any(p["ip_address"] == "10.60.0.66" for p in attrs.get("allowed_address_pairs", [])):
            raise _failure(InvalidRequest, "AllowedAddressPairExhausted", 400, "updating port",
                           "The number of allowed address pair exceeds the maximum 1.")
        return real(port_id, if_revision=if_revision, **attrs)

    neutron.update_port = picky  # type: ignore[method-assign]
    from courier.driver.nested.macvlan import _Change

    good, bad = _Change({("10.60.0.55", vm.port.mac_address)}, set()), _Change({("10.60.0.66", "x")}, set())
    pairs._write_batch([good, bad])
    assert good.error is None and isinstance(bad.error, InvalidRequest) and "maximum" in str(bad.error)
    assert vm_pairs(neutron, vm) == {("10.60.0.55", vm.port.mac_address)}


def test_macvlan_on_another_network_than_the_vms_is_refused(neutron, vm):
    d = Dockerd(neutron, FakeBinder(), conf(vm, "macvlan"))
    net = d.network_create("10.63.0.0/24")
    before = neutron.snapshot(revisions=False)
    address = d.ok("IpamDriver.RequestAddress", {"PoolID": net.v4[0].pool_id, "Address": "", "Options": {}})
    c = Container(net, docker_id(), "", address["Address"], "")
    status, err = d.fails("NetworkDriver.CreateEndpoint", d.create_endpoint_request(c))
    assert status == 400 and f"-o neutron.net.uuid={vm.net.id}" in err
    d.release_addresses(c)
    assert neutron.snapshot(revisions=False) == before
    d.close()


def test_macvlan_refuses_a_docker_mac_it_cannot_pair(neutron, vm):
    d, net = pair_docker(neutron, vm, "macvlan")
    address = d.ok("IpamDriver.RequestAddress", {"PoolID": net.v4[0].pool_id, "Address": "", "Options": {}})
    c = Container(net, docker_id(), "02:42:aa:bb:cc:dd", address["Address"], "")
    status, err = d.fails("NetworkDriver.CreateEndpoint", {**d.create_endpoint_request(c), "Options": ENDPOINT_OPTIONS})
    assert status == 400 and "VRRP MAC" in err
    d.release_addresses(c)
    assert vm_pairs(neutron, vm) == set()
    d.close()
