"""driver.attachments over FakeNeutron and a fake namespace: a CNI ADD/DEL/CHECK on the same core as Docker's calls."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from courier.binding import netns
from courier.binding.errors import BindingError
from courier.driver import attachments as att
from courier.driver.attachments import AttachSpec
from courier.driver.plugin import Plugin
from courier.exceptions import AddressInUse, InvalidRequest, NotFound
from courier.neutron import tags
from tests.fakes import FakeBinder, FakeNeutron
from tests.unit.dockerd import make_conf
from tests.unit.pool.test_pools import settle


class FakeNamespaces:
    """Stands in for courier.binding.netns: which interface is in which namespace, with what."""

    def __init__(self) -> None:
        self.inside: dict[tuple[str, str], netns.ContainerInterface] = {}
        self.moved_out: list[tuple[str, str, str]] = []
        self.fail_next: BaseException | None = None
        self._lock = threading.Lock()

    def move_in(self, host_side_name: str, iface: netns.ContainerInterface) -> None:
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure
        with self._lock:
            self.inside[(iface.netns, iface.ifname)] = iface

    def move_out(self, path: str, ifname: str, host_side_name: str) -> bool:
        with self._lock:
            self.moved_out.append((path, ifname, host_side_name))
            return self.inside.pop((path, ifname), None) is not None

    def inspect(self, path: str, ifname: str) -> netns.Seen | None:
        iface = self.inside.get((path, ifname))
        if iface is None:
            return None
        return netns.Seen(mac=iface.mac.lower(), mtu=iface.mtu, up=True,
                          addresses=frozenset(str(a) for a in iface.addresses))


@pytest.fixture
def namespaces(monkeypatch: pytest.MonkeyPatch) -> FakeNamespaces:
    fake = FakeNamespaces()
    for name in ("move_in", "move_out", "inspect"):
        monkeypatch.setattr(att.netns, name, getattr(fake, name))
    return fake


@pytest.fixture
def binder(namespaces: FakeNamespaces) -> FakeBinder:
    """Deleting a veth pair's host end takes the container end with it, wherever that is."""
    fake = FakeBinder()
    unbind = fake.unbind

    def unbind_and_drop(vif):  # type: ignore[no-untyped-def]
        unbind(vif)
        for key, iface in list(namespaces.inside.items()):
            if iface.mac.lower() == vif.mac_address.lower():
                del namespaces.inside[key]

    fake.unbind = unbind_and_drop  # type: ignore[method-assign]
    return fake


def _plugin(neutron: FakeNeutron, binder: FakeBinder, pools: bool, describe_delay: float = 0.0) -> Plugin:
    conf = make_conf(vif_pool__enabled=pools, vif_pool__ports_pool_min=3, vif_pool__ports_pool_batch=3,
                     vif_pool__describe_delay=describe_delay)
    plugin = Plugin(conf, neutron, binder)  # type: ignore[arg-type]
    plugin.pools.active_timeout = 0  # FakeNeutron's ports never go ACTIVE
    return plugin


@pytest.fixture(params=["cold", "warm"])
def plugin(request: pytest.FixtureRequest, neutron: FakeNeutron, binder: FakeBinder,
           network: str) -> Iterator[Plugin]:
    """Warm: the network's pool is full before the test's first ADD."""
    p = _plugin(neutron, binder, pools=request.param == "warm")
    _warm_up(p, network)
    yield p
    p.close()


@pytest.fixture
def network(neutron: FakeNeutron) -> str:
    net = neutron.add_network("pods")
    neutron.add_subnet(net.id, "10.50.0.0/24", dns_nameservers=["10.50.0.2"])
    return net.id


def _spec(network: str, n: int = 1, **kw: str) -> AttachSpec:
    return AttachSpec(container_id=f"{n:064x}", ifname="eth0", netns=f"/run/netns/pod{n}", network=network, **kw)


def _warm_up(plugin: Plugin, network: str) -> None:
    """The first ADD registers the network's pool; fill it before measuring."""
    if plugin.pools.enabled:
        record = plugin.attachments._lookup.neutron_network(network)
        plugin.pools.register(record.network, record.subnets)
        plugin.pools._check()
        settle(plugin.pools)


def _courier_ports(neutron: FakeNeutron) -> list[str]:
    return [p.id for p in neutron.ports.values() if p.device_owner == tags.DEVICE_OWNER]


def test_add_gives_the_namespace_the_ports_address_mac_and_routes(plugin: Plugin, neutron: FakeNeutron,
                                                                  namespaces: FakeNamespaces, network: str) -> None:
    attached = plugin.attachments.add(_spec(network))

    port = neutron.ports[attached.port_id]
    iface = namespaces.inside[("/run/netns/pod1", "eth0")]
    assert iface.mac == port.mac_address and [str(a) for a in iface.addresses] == [
        f"{port.fixed_ips[0].ip_address}/24"]
    assert [str(g) for g in iface.gateways] == ["10.50.0.1"] and attached.dns == ("10.50.0.2",)
    assert iface.mtu == neutron.networks[network].mtu


def test_the_attachment_is_named_in_neutron_by_its_container_and_interface(plugin: Plugin, neutron: FakeNeutron,
                                                                           namespaces: FakeNamespaces,
                                                                           network: str) -> None:
    spec = _spec(network)
    attached = plugin.attachments.add(spec)
    if plugin.pools.enabled:
        settle(plugin.pools)
        plugin.state.settle(attached.port_id)
        _wait_for(lambda: att.CNI_TAG in neutron.ports[attached.port_id].tags)
    port = neutron.ports[attached.port_id]
    assert tags.docker_id_from_tags(port.tags) == att.attachment_id(spec.container_id, "eth0")
    assert {att.CNI_TAG, "courier.cni.netns:pod1"} <= port.tags


def test_warm_add_makes_no_neutron_call(neutron: FakeNeutron, binder: FakeBinder, namespaces: FakeNamespaces,
                                        network: str) -> None:
    plugin = _plugin(neutron, binder, pools=True, describe_delay=30)  # Neutron hears of it after the ADD
    try:
        plugin.attachments.add(_spec(network, 1))  # registers the network; the first ADD is cold
        _warm_up(plugin, network)
        neutron.reset_calls()
        plugin.attachments.add(_spec(network, 2))
        assert neutron.total_calls == 0
    finally:
        plugin.close()


def test_del_removes_everything_and_is_idempotent(plugin: Plugin, neutron: FakeNeutron, binder: FakeBinder,
                                                  namespaces: FakeNamespaces, network: str) -> None:
    spec = _spec(network)
    attached = plugin.attachments.add(spec)
    plugin.attachments.delete(spec)
    plugin.attachments.delete(spec)  # DEL twice, as runtimes do

    assert not namespaces.inside
    if plugin.pools.enabled:  # back in the pool: idle, identity scrubbed
        settle(plugin.pools)
        assert plugin.pools.holds(attached.port_id) and not plugin.pools.taken(attached.port_id)
        assert att.CNI_TAG not in neutron.ports[attached.port_id].tags
        assert ("/run/netns/pod1", "eth0", f"t_c{attached.port_id}"[:14]) in namespaces.moved_out
    else:
        assert _courier_ports(neutron) == [] and not binder.bound


def test_del_without_add_is_no_error(plugin: Plugin, neutron: FakeNeutron, namespaces: FakeNamespaces,
                                     network: str) -> None:
    plugin.attachments.delete(_spec(network, 9))
    plugin.attachments.delete(AttachSpec("c", "eth0", "/run/netns/gone", "no-such-network"))
    assert not _courier_ports(neutron) or plugin.pools.enabled


def test_add_retried_returns_the_same_attachment(plugin: Plugin, neutron: FakeNeutron, namespaces: FakeNamespaces,
                                                 network: str) -> None:
    first = plugin.attachments.add(_spec(network))
    again = plugin.attachments.add(_spec(network))
    assert again == first and len(namespaces.inside) == 1


def test_a_specific_address_is_given(plugin: Plugin, neutron: FakeNeutron, namespaces: FakeNamespaces,
                                     network: str) -> None:
    attached = plugin.attachments.add(_spec(network, address="10.50.0.77"))
    assert [str(a) for a in attached.addresses] == ["10.50.0.77/24"]
    with pytest.raises(AddressInUse):
        plugin.attachments.add(_spec(network, 2, address="10.50.0.77"))
    with pytest.raises(InvalidRequest, match="in no subnet"):
        plugin.attachments.add(_spec(network, 3, address="10.99.0.1"))
    assert set(namespaces.inside) == {("/run/netns/pod1", "eth0")}


def test_a_failure_after_the_port_leaves_nothing(plugin: Plugin, neutron: FakeNeutron, binder: FakeBinder,
                                                 namespaces: FakeNamespaces, network: str) -> None:
    before = set(_courier_ports(neutron))
    namespaces.fail_next = BindingError("cannot move it")
    with pytest.raises(BindingError):
        plugin.attachments.add(_spec(network))
    if plugin.pools.enabled:
        settle(plugin.pools)
        assert not any(plugin.pools.taken(p) for p in _courier_ports(neutron))
    else:
        assert set(_courier_ports(neutron)) == before and not binder.bound
    assert not namespaces.inside


def test_unknown_network_is_a_clear_error(plugin: Plugin, namespaces: FakeNamespaces) -> None:
    with pytest.raises(NotFound, match="no Neutron networks have id or name 'nope'"):
        plugin.attachments.add(_spec("nope"))


def test_network_by_name(plugin: Plugin, neutron: FakeNeutron, namespaces: FakeNamespaces, network: str) -> None:
    attached = plugin.attachments.add(_spec("pods"))
    assert neutron.ports[attached.port_id].network_id == network


def test_check_sees_a_missing_or_changed_interface(plugin: Plugin, namespaces: FakeNamespaces,
                                                   network: str) -> None:
    spec = _spec(network)
    plugin.attachments.add(spec)
    plugin.attachments.check(spec)
    iface = namespaces.inside[("/run/netns/pod1", "eth0")]
    namespaces.inside[("/run/netns/pod1", "eth0")] = netns.ContainerInterface(
        iface.netns, iface.ifname, "02:00:00:00:00:01", iface.mtu, ())
    with pytest.raises(InvalidRequest, match="MAC 02:00:00:00:00:01 is not the port's"):
        plugin.attachments.check(spec)
    namespaces.inside.clear()
    with pytest.raises(NotFound, match="eth0 is not in /run/netns/pod1"):
        plugin.attachments.check(spec)


def test_twenty_adds_at_once_get_twenty_ports(plugin: Plugin, neutron: FakeNeutron, namespaces: FakeNamespaces,
                                              network: str) -> None:
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda n: plugin.attachments.add(_spec(network, n)), range(1, 21)))
    assert len({r.port_id for r in results}) == 20 and len({r.addresses for r in results}) == 20
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda n: plugin.attachments.delete(_spec(network, n)), range(1, 21)))
    assert not namespaces.inside


def test_gc_removes_attachments_the_runtime_no_longer_has(plugin: Plugin, neutron: FakeNeutron,
                                                          namespaces: FakeNamespaces, network: str) -> None:
    kept, gone = _spec(network, 1), _spec(network, 2)
    for spec in (kept, gone):
        plugin.attachments.add(spec)
    if plugin.pools.enabled:
        _wait_for(lambda: sum(att.CNI_TAG in p.tags for p in neutron.ports.values()) == 2)
    for ep in list(plugin.state.endpoints.values()):
        plugin.state.settle(ep.port.id)

    assert plugin.attachments.collect(network, {(kept.container_id, "eth0")}) == 1
    if plugin.pools.enabled:
        settle(plugin.pools)  # recycled: scrubbed in the background
    remaining = [p for p in neutron.ports.values() if att.CNI_TAG in p.tags]
    assert [tags.docker_id_from_tags(p.tags) for p in remaining] == [kept.attachment_id]


def test_netns_tag_only_for_named_namespaces() -> None:
    assert att.netns_tag("/run/netns/cni-1") == "courier.cni.netns:cni-1"
    assert att.netns_tag("/var/run/netns/x/") == "courier.cni.netns:x"
    assert att.netns_tag("/proc/42/ns/net") is None


def _wait_for(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        time.sleep(0.01)
