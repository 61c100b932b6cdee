"""OvsPlug over the real ``Ovsdb`` watch logic, with an in-memory database and IDL row changes fed to ovsdbapp's
event handler: what goes into OVSDB, and how readiness is judged, raced and reported."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from courier.binding.errors import BindingError, PortNotReady
from courier.binding.ovsdb import InterfaceEvent
from courier.binding.plugs.ovs import OvsPlug
from courier.binding.vif import device_names
from tests.unit.binding.binding_fakes import PORT_ID, FakeOvsdb, FakeRow, iface, make_conf, make_vif

TAP = "tap3f1c2a9e-5b"
INSTALLED = {"ovn-installed": "true"}


@pytest.fixture
def new_db() -> Iterator[type[FakeOvsdb]]:
    """FakeOvsdb's constructor; every database made is stopped (its event thread ended) after the test."""
    made: list[FakeOvsdb] = []

    def make(*args: object, **kwargs: object) -> FakeOvsdb:
        made.append(FakeOvsdb(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make  # type: ignore[misc]
    for db in made:
        db.stop()


@pytest.fixture
def db(new_db) -> FakeOvsdb:
    return new_db()


def ovs_plug(db: FakeOvsdb, **conf: object) -> OvsPlug:
    plug = OvsPlug(make_conf(**conf))
    plug._db = db
    return plug


def test_plug_adds_port_with_neutron_external_ids_and_mtu(db):
    ovs_plug(db).plug(make_vif())

    assert db.ports == {"tap3f1c2a9e-5b": ("br-int", {
        "iface-id": PORT_ID, "attached-mac": "fa:16:3e:aa:bb:cc", "iface-status": "active",
        "vm-uuid": "cbtest0123456789abcdef", "owner": "courier"}, 1442)}


def test_bridge_from_vif_details_then_conf(new_db):
    db = new_db(bridges=("br-int", "br-custom", "br-other"))
    ovs_plug(db, courier__integration_bridge="br-other").plug(make_vif())
    ovs_plug(db).plug(make_vif(port_id="5e6f7a8b-0000-4000-8000-000000000001",
                               vif_details={"bridge_name": "br-custom"}))

    assert db.ports["tap3f1c2a9e-5b"][0] == "br-other"
    assert db.ports["tap5e6f7a8b-00"][0] == "br-custom"


def test_missing_bridge_is_reported_before_any_change(new_db):
    db = new_db(bridges=())
    with pytest.raises(BindingError, match=f"OVS bridge br-int does not exist \\(Neutron port {PORT_ID}\\)"):
        ovs_plug(db).plug(make_vif())
    assert db.ports == {}


def test_interface_that_ovs_cannot_open_fails_the_plug(db):
    db.current = iface(TAP, ofport=-1, error="could not open network device (No such device)")

    with pytest.raises(BindingError, match=r"OVS could not attach tap3f1c2a9e-5b .*No such device"):
        ovs_plug(db).plug(make_vif())


def test_unplug_removes_both_plug_styles(db):
    ovs_plug(db).unplug(make_vif())

    assert db.deleted == [(TAP, device_names(PORT_ID).qvo)]


def test_device_names_follow_nova_and_os_vif():
    names = device_names(PORT_ID)
    assert names.all() == (TAP, "t_c3f1c2a9e-5b", "qbr3f1c2a9e-5b", "qvb3f1c2a9e-5b", "qvo3f1c2a9e-5b")
    assert make_vif().host_ifname == names.tap and make_vif().container_ifname == names.container


def test_orphans_are_found_by_endpoint_and_removed(db, monkeypatch):
    removed_devices: list[str] = []
    monkeypatch.setattr("courier.binding.netdev.delete", lambda ipr, name: removed_devices.append(name))
    monkeypatch.setattr("courier.binding.plugs.ovs.IPRoute", _NoNetlink)
    db.orphans = {"ep-1": [TAP]}

    assert ovs_plug(db).remove_orphans("ep-1") == [TAP]
    assert db.deleted == [(TAP,)] and removed_devices == [TAP]
    assert ovs_plug(db).remove_orphans("ep-2") == []
    assert db.deleted == [(TAP,)]


class _NoNetlink:
    def __enter__(self) -> _NoNetlink:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def wait_with(db: FakeOvsdb, timeout: float = 2.0, **vif_fields: object) -> float:
    """Watch, plug, wait, as Binder.bind does; the seconds the wait took. Raises PortNotReady."""
    plug = ovs_plug(db)
    vif = make_vif(**vif_fields)
    with plug.watch_ready(vif) as wait:
        db.add_port("br-int", plug.ovs_ifname(vif), {}, vif.mtu)
        started = time.monotonic()
        wait(timeout)
    assert db.watched == []  # the watch ends with the bind
    return time.monotonic() - started


def test_ready_when_ovn_installed_is_already_set(db):
    db.current = iface(TAP, **INSTALLED)
    assert wait_with(db, timeout=0.0) < 0.5  # no event needed: the state read after arming the watch is done


def test_a_change_during_plug_is_caught_by_the_watch_armed_before_it(db):
    db.current = iface(TAP)  # what a read returns, though the IDL already reported the change below
    db.on_plug = [iface(TAP, **{"iface-id": PORT_ID}), iface(TAP, **INSTALLED)]
    assert wait_with(db, timeout=5.0) < 2.0


def test_ready_when_ovn_installs_while_waiting(db):
    db.current = iface(TAP)
    timer = db.change_later(iface(TAP, **INSTALLED), delay=0.1)
    assert wait_with(db, timeout=5.0) < 2.0  # woken by the change, not by the timeout
    timer.join()


def test_changes_of_other_interfaces_do_not_end_the_wait(db):
    db.current = iface(TAP)
    db.on_plug = [iface("tapother", **INSTALLED)]
    with pytest.raises(PortNotReady):
        wait_with(db, timeout=0.2)


def test_with_ovn_an_attached_port_is_not_enough(db):
    db.current = iface(TAP, ofport=7)
    db.on_plug = [iface(TAP, ofport=7)]

    with pytest.raises(PortNotReady) as err:
        wait_with(db, timeout=0.3)

    message = str(err.value)
    assert PORT_ID in message and TAP in message and "ovn-installed=true within 0.3 s" in message
    assert "port_ready_timeout" in message and "binding:host_id=" in message


def test_without_ovn_an_attached_port_is_ready(new_db):
    db = new_db(ovn=False)
    db.on_plug = [iface(TAP, ofport=7)]
    assert wait_with(db, timeout=5.0) < 2.0


def test_without_ovn_the_timeout_names_vswitchd(new_db):
    db = new_db(ovn=False)
    db.current = iface(TAP, ofport=None)
    with pytest.raises(PortNotReady, match=f"OVS did not attach interface {TAP}"):
        wait_with(db, timeout=0.2)


def test_ovs_error_ends_the_wait_at_once(db):
    db.on_plug = [iface(TAP, ofport=-1, error="could not add network device")]
    with pytest.raises(PortNotReady, match=f"OVS reports an error on {TAP}: could not add network"):
        wait_with(db, timeout=30.0)


def test_hybrid_plug_waits_on_the_qvo_end(db):
    qvo = device_names(PORT_ID).qvo
    db.on_plug = [iface(TAP, **INSTALLED), iface(qvo, **INSTALLED)]
    plug = ovs_plug(db)
    vif = make_vif(vif_details={"ovs_hybrid_plug": True})
    with plug.watch_ready(vif) as wait:
        assert db.watched == [qvo]
        db.add_port("br-int", qvo, {}, vif.mtu)
        wait(1.0)
    assert db.watched == []


def test_interface_event_matches_only_its_interface_once_done():
    event = InterfaceEvent("tapA", lambda s: s.ovn_installed)

    assert event.table == "Interface" and set(event.events) == {"create", "update"} and event.ONETIME
    assert not event.matches("update", FakeRow(iface("tapA")))
    assert not event.matches("update", FakeRow(iface("tapB", **INSTALLED)))
    assert not event.matches("delete", FakeRow(iface("tapA", **INSTALLED)))
    assert event.matches("update", FakeRow(iface("tapA", **INSTALLED)))


def test_interface_events_on_the_same_name_stay_distinct():
    def never(state: object) -> bool:
        return False

    assert len({InterfaceEvent("tapA", never), InterfaceEvent("tapA", never)}) == 2


def test_unreachable_ovsdb_is_named_in_the_error():
    plug = OvsPlug(make_conf(courier__ovsdb_connection="unix:/nonexistent/cbtest-db.sock"))

    with pytest.raises(BindingError, match=r"Cannot connect to the local OVSDB at unix:/nonexistent/cbtest-db.sock "
                                           r"\(\[courier\] ovsdb_connection\).*Is ovsdb-server running\?"):
        plug.plug(make_vif())
