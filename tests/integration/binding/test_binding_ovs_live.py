"""Binding ``ovs`` ports into the real local OVS (br-int, userspace datapath)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from binding_live import (
    link,
    link_exists,
    make_conf,
    needs_ovs,
    needs_root,
    new_vif,
    ovs_interface,
    ovs_map,
    ovs_port_names,
    run,
)

from courier.binding.errors import BindingError, PortNotReady
from courier.binding.manager import Binder
from courier.binding.vif import device_names

pytestmark = [pytest.mark.integration, needs_root, needs_ovs]


@pytest.fixture
def binder() -> Iterator[Binder]:
    b = Binder(make_conf(courier__port_ready_timeout=0.0))
    yield b
    b.close()


def test_bind_plugs_the_host_end_into_br_int_with_neutron_ids_and_mtu(cleanup, binder):
    vif = cleanup.add(new_vif(mtu=1400))

    assert binder.bind(vif) == vif.container_ifname

    row = ovs_interface(vif.host_ifname)
    assert row is not None
    assert ovs_map(row["external_ids"]) == {
        "iface-id": vif.port_id, "attached-mac": vif.mac_address, "iface-status": "active",
        "vm-uuid": vif.endpoint_id, "owner": "courier"}
    assert row["mtu"] == 1400 and row["mtu_request"] == 1400 and row["ofport"] > 0
    assert run("ovs-vsctl", "port-to-br", vif.host_ifname) == "br-int"
    assert link(vif.host_ifname)["mtu"] == link(vif.container_ifname)["mtu"] == 1400


def test_unbind_removes_port_and_veth_and_can_repeat(cleanup, binder):
    vif = cleanup.add(new_vif())
    binder.bind(vif)

    binder.unbind(vif)
    assert ovs_interface(vif.host_ifname) is None
    assert not link_exists(vif.host_ifname) and not link_exists(vif.container_ifname)
    binder.unbind(vif)


def test_unbind_after_the_host_end_was_deleted_by_hand(cleanup, binder):
    vif = cleanup.add(new_vif())
    binder.bind(vif)
    run("ip", "link", "del", vif.host_ifname)

    binder.unbind(vif)
    assert vif.host_ifname not in ovs_port_names()


def test_unbind_after_the_ovs_port_was_deleted_by_hand(cleanup, binder):
    vif = cleanup.add(new_vif())
    binder.bind(vif)
    run("ovs-vsctl", "del-port", vif.host_ifname)

    binder.unbind(vif)
    assert not link_exists(vif.host_ifname)


def test_bind_twice_leaves_one_working_port(cleanup, binder):
    vif = cleanup.add(new_vif())
    binder.bind(vif)
    binder.bind(vif)

    assert sorted(ovs_port_names()).count(vif.host_ifname) == 1
    row = ovs_interface(vif.host_ifname)
    assert row is not None and row["ofport"] > 0 and row["error"] == ["set", []]


def test_failed_plug_leaves_no_veth_behind(cleanup, binder):
    vif = cleanup.add(new_vif(vif_details={"bridge_name": "cbtest-no-such-br"}))

    with pytest.raises(BindingError, match=f"OVS bridge cbtest-no-such-br does not exist .*{vif.port_id}"):
        binder.bind(vif)

    assert not link_exists(vif.host_ifname) and not link_exists(vif.container_ifname)
    assert vif.host_ifname not in ovs_port_names()


def test_unbound_port_leaves_nothing_behind(cleanup, binder):
    vif = cleanup.add(new_vif(vif_type="binding_failed"))
    with pytest.raises(BindingError):
        binder.bind(vif)
    assert not link_exists(vif.host_ifname)


def test_unbind_of_a_port_whose_binding_was_cleared_still_removes_the_ovs_port(cleanup, binder):
    vif = cleanup.add(new_vif())
    binder.bind(vif)

    binder.unbind(new_vif(**{**vif.__dict__, "vif_type": "unbound"}))

    assert vif.host_ifname not in ovs_port_names()
    assert not link_exists(vif.host_ifname)


def test_unbind_knowing_only_the_endpoint_id_cleans_up(cleanup, binder):
    # What the driver does when Neutron has lost the port: only the endpoint id is known.
    vif = cleanup.add(new_vif())
    binder.bind(vif)

    binder.unbind_endpoint(vif.endpoint_id)

    assert vif.host_ifname not in ovs_port_names()
    assert not link_exists(vif.host_ifname)


def test_hybrid_plug_builds_qbr_qvb_qvo_and_unbind_removes_them(cleanup, binder):
    vif = cleanup.add(new_vif(vif_details={"ovs_hybrid_plug": True, "port_filter": True}))
    qbr, qvb, qvo = device_names(vif.port_id).hybrid

    binder.bind(vif)

    assert link(qbr)["linkinfo"]["info_kind"] == "bridge"
    assert link(vif.host_ifname)["master"] == qbr and link(qvb)["master"] == qbr
    assert vif.host_ifname not in ovs_port_names() and qvo in ovs_port_names()
    row = ovs_interface(qvo)
    assert row is not None and ovs_map(row["external_ids"])["iface-id"] == vif.port_id

    binder.unbind(vif)
    assert not any(link_exists(n) for n in (qbr, qvb, qvo, vif.host_ifname))
    assert qvo not in ovs_port_names()


def test_port_ovn_does_not_know_times_out_with_port_not_ready_and_is_undone(cleanup):
    vif = cleanup.add(new_vif())
    b = Binder(make_conf(courier__port_ready_timeout=1.5))
    started = time.monotonic()
    try:
        with pytest.raises(PortNotReady) as err:
            b.bind(vif)
    finally:
        b.close()

    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 4.0
    assert vif.port_id in str(err.value) and vif.host_ifname in str(err.value)
    assert not link_exists(vif.host_ifname) and vif.host_ifname not in ovs_port_names()


def test_concurrent_binds_share_one_ovsdb_connection(cleanup, binder):
    vifs = [cleanup.add(new_vif()) for _ in range(8)]
    errors: list[BaseException] = []

    def bind_unbind(vif) -> None:
        try:
            binder.bind(vif)
            binder.unbind(vif)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=bind_unbind, args=(v,)) for v in vifs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == []
    assert not any(v.host_ifname in ovs_port_names() or link_exists(v.host_ifname) for v in vifs)
