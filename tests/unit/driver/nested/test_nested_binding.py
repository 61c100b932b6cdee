"""The Binder with a nested link driver: the device is the whole binding, whatever the port's vif_type."""

from __future__ import annotations

from typing import Any

import pytest

from courier.binding import registry
from courier.binding.base import LinkDriver
from courier.binding.errors import BindingError
from courier.binding.links.ipvlan import IpvlanLink
from courier.binding.links.macvlan import MacvlanLink
from courier.binding.links.vlan import VlanLink
from courier.binding.manager import Binder
from courier.binding.vif import VIF
from tests.unit.dockerd import make_conf

CALLS: list[str] = []


class NestedFake(LinkDriver):
    name = "fake"
    plugs = False
    fail = False

    def create(self, vif: VIF) -> str:
        CALLS.append("create")
        if self.fail:
            raise BindingError("no such device")
        return vif.container_ifname

    def delete(self, vif: VIF) -> None:
        CALLS.append("delete")


def vif(**fields: Any) -> VIF:
    values: dict[str, Any] = {"endpoint_id": "e" * 64, "port_id": "p" * 36, "network_id": "n", "mtu": 1442,
                              "mac_address": "00:00:5e:00:01:07", "vif_type": "unbound"}
    return VIF(**{**values, **fields})


@pytest.fixture
def binder(monkeypatch: pytest.MonkeyPatch) -> Binder:
    CALLS.clear()

    def load(group: str, name: str) -> type | None:
        if group == registry.LINK_GROUP:
            return NestedFake
        CALLS.append(f"load plug {name}")
        return None

    monkeypatch.setattr(registry, "load", load)
    # Should a plug driver be created anyway, it must not find this host's real OVSDB.
    return Binder(make_conf(courier__ovsdb_connection="unix:/nonexistent/cbtest-db.sock"))


def test_an_unbound_port_is_bound_by_making_the_device_only(binder: Binder):
    assert binder.bind(vif()) == vif().container_ifname
    binder.unbind(vif())
    assert CALLS == ["create", "delete"]


def test_a_failed_device_is_cleaned_up_and_reported(binder: Binder, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(NestedFake, "fail", True)
    with pytest.raises(BindingError, match="no such device"):
        binder.bind(vif())
    assert CALLS == ["create", "delete"]


def test_orphan_cleanup_needs_no_ovs_in_a_vm(binder: Binder):
    binder.unbind_endpoint("e" * 64)  # would need OVSDB on bare metal

    assert CALLS == [] and binder._plugs == {}  # no plug driver looked for, none created


def test_link_driver_attributes():
    conf = make_conf()
    assert VlanLink(conf).attributes(vif(segmentation_id=42)) == {"vlan_id": 42, "address": "00:00:5e:00:01:07"}
    with pytest.raises(BindingError, match="no VLAN id"):
        VlanLink(conf).attributes(vif())
    assert MacvlanLink(conf).attributes(vif()) == {"macvlan_mode": "bridge", "address": "00:00:5e:00:01:07"}
    assert IpvlanLink(conf).attributes(vif()) == {"ipvlan_mode": 0}
    assert {"vlan", "macvlan", "ipvlan"} <= set(registry.entry_points(registry.LINK_GROUP))
