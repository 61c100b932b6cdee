"""OvsPlug against a fake OVSDB: what goes into OVSDB, and how readiness is judged and reported."""

from __future__ import annotations

import pytest
from binding_fakes import PORT_ID, FakeOvsdb, iface, make_conf, make_vif

from courier.binding.errors import BindingError, PortNotReady
from courier.binding.ovsdb import _InterfaceEvent
from courier.binding.plugs.ovs import OvsPlug, hybrid_names


def ovs_plug(db: FakeOvsdb, **conf: object) -> OvsPlug:
    plug = OvsPlug(make_conf(**conf))
    plug._db = db  # type: ignore[assignment]
    return plug


def test_plug_adds_port_with_neutron_external_ids_and_mtu():
    db = FakeOvsdb()
    ovs_plug(db).plug(make_vif())

    assert db.ports == {"tap3f1c2a9e-5b": ("br-int", {
        "iface-id": PORT_ID, "attached-mac": "fa:16:3e:aa:bb:cc", "iface-status": "active",
        "vm-uuid": "cbtest0123456789abcdef", "owner": "courier"}, 1442)}


def test_bridge_from_vif_details_then_conf():
    db = FakeOvsdb(bridges=("br-int", "br-custom", "br-other"))
    ovs_plug(db, courier__integration_bridge="br-other").plug(make_vif())
    ovs_plug(db).plug(make_vif(port_id="5e6f7a8b-0000-4000-8000-000000000001",
                               vif_details={"bridge_name": "br-custom"}))

    assert db.ports["tap3f1c2a9e-5b"][0] == "br-other"
    assert db.ports["tap5e6f7a8b-00"][0] == "br-custom"


def test_missing_bridge_is_reported_before_any_change():
    db = FakeOvsdb(bridges=())
    with pytest.raises(BindingError, match=f"OVS bridge br-int does not exist \\(Neutron port {PORT_ID}\\)"):
        ovs_plug(db).plug(make_vif())
    assert db.ports == {}


def test_interface_that_ovs_cannot_open_fails_the_plug():
    db = FakeOvsdb()
    db.current = iface("tap3f1c2a9e-5b", ofport=-1, error="could not open network device (No such device)")

    with pytest.raises(BindingError, match=r"OVS could not attach tap3f1c2a9e-5b .*No such device"):
        ovs_plug(db).plug(make_vif())


def test_unplug_removes_both_plug_styles():
    db = FakeOvsdb()
    ovs_plug(db).unplug(make_vif())

    assert db.deleted == [("tap3f1c2a9e-5b", hybrid_names(PORT_ID)[2])]


def test_hybrid_names_follow_os_vif():
    assert hybrid_names(PORT_ID) == ("qbr3f1c2a9e-5b", "qvb3f1c2a9e-5b", "qvo3f1c2a9e-5b")


def wait_with(db: FakeOvsdb, timeout: float = 2.0, **vif_fields: object) -> None:
    plug = ovs_plug(db)
    vif = make_vif(**vif_fields)
    with plug.watch_ready(vif) as wait:
        wait(timeout)


def test_ready_when_ovn_installed_is_already_set():
    db = FakeOvsdb()
    db.current = iface("tap3f1c2a9e-5b", **{"ovn-installed": "true"})
    wait_with(db)


def test_ready_when_ovn_installs_later():
    db = FakeOvsdb()
    db.current = iface("tap3f1c2a9e-5b")
    db.states = [iface("tap3f1c2a9e-5b", **{"iface-id": PORT_ID}),
                 iface("tap3f1c2a9e-5b", **{"ovn-installed": "true"})]
    wait_with(db)


def test_with_ovn_an_attached_port_is_not_enough():
    db = FakeOvsdb()
    db.current = iface("tap3f1c2a9e-5b", ofport=7)

    with pytest.raises(PortNotReady) as err:
        wait_with(db, timeout=1.5)

    message = str(err.value)
    assert PORT_ID in message and "tap3f1c2a9e-5b" in message and "ovn-installed=true within 1.5 s" in message
    assert "port_ready_timeout" in message and "binding:host_id=" in message


def test_without_ovn_an_attached_port_is_ready():
    db = FakeOvsdb(ovn=False)
    db.current = iface("tap3f1c2a9e-5b", ofport=7)
    wait_with(db)


def test_without_ovn_the_timeout_names_vswitchd():
    db = FakeOvsdb(ovn=False)
    db.current = iface("tap3f1c2a9e-5b", ofport=None)
    with pytest.raises(PortNotReady, match="OVS did not attach interface tap3f1c2a9e-5b"):
        wait_with(db)


def test_ovs_error_ends_the_wait_at_once():
    db = FakeOvsdb()
    db.states = [iface("tap3f1c2a9e-5b", ofport=-1, error="could not add network device")]
    with pytest.raises(PortNotReady, match="OVS reports an error on tap3f1c2a9e-5b: could not add network"):
        wait_with(db)


def test_hybrid_plug_waits_on_the_qvo_end():
    db = FakeOvsdb()
    qvo = hybrid_names(PORT_ID)[2]
    db.current = iface(qvo, **{"ovn-installed": "true"})
    plug = ovs_plug(db)
    vif = make_vif(vif_details={"ovs_hybrid_plug": True})
    with plug.watch_ready(vif) as wait:
        assert db.watching == [qvo]
        wait(1.0)
    assert db.watching == []


class FakeRow:
    def __init__(self, name: str, **external_ids: str) -> None:
        self.name = name
        self.external_ids = external_ids
        self.ofport = [3]
        self.error: list[str] = []
        self.mtu = [1442]


def test_interface_event_matches_only_its_interface_once_done():
    event = _InterfaceEvent("tapA", lambda s: s.external_ids.get("ovn-installed") == "true")

    def matches(row: FakeRow) -> bool:
        return event.base_match("update", row, None) and event.match_fn("update", row, None)

    assert event.table == "Interface" and set(event.events) == {"create", "update"}
    assert not matches(FakeRow("tapA"))
    assert not matches(FakeRow("tapB", **{"ovn-installed": "true"}))
    assert matches(FakeRow("tapA", **{"ovn-installed": "true"}))


def test_interface_events_on_the_same_name_stay_distinct():
    def never(state: object) -> bool:
        return False

    assert len({_InterfaceEvent("tapA", never), _InterfaceEvent("tapA", never)}) == 2


def test_unreachable_ovsdb_is_named_in_the_error():
    plug = OvsPlug(make_conf(courier__ovsdb_connection="unix:/nonexistent/cbtest-db.sock"))

    with pytest.raises(BindingError, match=r"Cannot connect to the local OVSDB at unix:/nonexistent/cbtest-db.sock "
                                           r"\(\[courier\] ovsdb_connection\).*Is ovsdb-server running\?"):
        plug.plug(make_vif())
