"""courier.neutron.api.Neutron against the real local Neutron: one call per method, records back."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator

import pytest
from oslo_config import cfg

from courier import metrics
from courier.config import options
from courier.exceptions import AddressInUse, NeutronUnavailable, PoolExhausted
from courier.neutron.api import Neutron
from courier.neutron.connection import connect
from tests import stack

pytestmark = pytest.mark.integration


def _neutron(endpoint: str) -> Neutron:
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf([])
    conf.set_override("auth_type", "none", group="neutron")
    options.ks_loading.load_auth_from_conf_options(conf, "neutron")  # registers the "none" plugin's options
    conf.set_override("endpoint", endpoint, group="neutron")
    conf.set_override("neutron_timeout", 3.0, group="courier")
    return Neutron(connect(conf))


@pytest.fixture
def neutron() -> Iterator[Neutron]:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    yield _neutron(stack.NEUTRON_URL)


@pytest.fixture
def network(neutron: Neutron) -> Iterator[tuple[str, str]]:
    net = neutron.create_network(f"cit-{uuid.uuid4().hex[:8]}")
    subnet = neutron.create_subnet(net.id, ipaddress.ip_network("10.232.0.0/29"), name="cit", gateway_ip="10.232.0.1",
                                   subnetpool_id=None, enable_dhcp=False)
    yield net.id, subnet.id
    neutron.delete_network(net.id)


def _count() -> float:
    return sum(s.value for m in metrics.NEUTRON_CALLS.collect() for s in m.samples if s.name.endswith("_total"))


def test_port_lifecycle_is_one_call_each(neutron: Neutron, network: tuple[str, str]) -> None:
    net_id, subnet_id = network
    neutron.list_networks(limit=1)  # version discovery happens once per process, before this
    before = _count()
    port = neutron.create_port(net_id, [{"subnet_id": subnet_id}], device_owner="compute:kuryr",
                               **{"binding:host_id": stack.os.uname().nodename})
    assert port.vif_type == "ovs", "binding happens in the create call"
    neutron.set_port_tags(port.id, {"a", "b"})
    updated = neutron.update_port(port.id, device_id="x")
    assert updated.device_id == "x"
    neutron.delete_port(port.id)
    assert _count() - before == 4


def test_address_errors_are_named(neutron: Neutron, network: tuple[str, str]) -> None:
    net_id, subnet_id = network
    ports = [neutron.create_port(net_id, [{"subnet_id": subnet_id, "ip_address": "10.232.0.2"}])]
    try:
        with pytest.raises(AddressInUse) as in_use:
            neutron.create_port(net_id, [{"subnet_id": subnet_id, "ip_address": "10.232.0.2"}])
        assert in_use.value.neutron_type == "IpAddressAlreadyAllocated"  # type: ignore[attr-defined]
        with pytest.raises(PoolExhausted):
            for _ in range(8):
                ports.append(neutron.create_port(net_id, [{"subnet_id": subnet_id}]))
    finally:
        for port in ports:
            neutron.delete_port(port.id)


def test_unreachable_neutron_is_a_clear_bounded_error() -> None:
    dead = _neutron("http://127.0.0.1:9")
    with pytest.raises(NeutronUnavailable, match="unreachable"):
        dead.list_networks()


def test_clouds_yaml_entry_is_used(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  local:\n    auth_type: none\n"
                      f"    auth:\n      endpoint: {stack.NEUTRON_URL}\n"
                      f"    network_endpoint_override: {stack.NEUTRON_URL}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf([])
    conf.set_override("cloud", "local", group="courier")
    pools = Neutron(connect(conf)).list_subnetpools(name="kuryr")
    assert [p.name for p in pools] == ["kuryr"]
