"""Binder: driver selection, ordering, undo on failure, error messages, idempotent unbind."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from courier.binding import registry
from courier.binding.errors import BindingError, PortNotBound, PortNotReady, UnsupportedVifType
from courier.binding.manager import Binder
from courier.binding.plugs.executable import ExecutablePlug
from tests.unit.binding.binding_fakes import PORT_ID, FakeLink, FakePlug, Recorder, make_conf, make_vif


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    recorder = Recorder()
    link = type("Link", (FakeLink,), {"recorder": recorder})
    plug = type("Plug", (FakePlug,), {"recorder": recorder})

    def load(group: str, name: str) -> type | None:
        if group == registry.LINK_GROUP:
            return link if name == "veth" else None
        return plug if name == "ovs" else None

    monkeypatch.setattr(registry, "load", load)
    return SimpleNamespace(link=link, plug=plug, calls=recorder.calls)


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    path = tmp_path / "libexec"
    path.mkdir()
    return path


def binder(bindir: Path, **overrides: object) -> Binder:
    return Binder(make_conf(bindir=str(bindir), **overrides))


def test_bind_creates_plugs_then_waits_with_the_watch_armed_before_plug(fakes, bindir):
    src = binder(bindir, courier__port_ready_timeout=7.5).bind(make_vif())

    assert src == make_vif().container_ifname
    assert fakes.calls == ["link.create", "watch", "plug", "wait 7.5", "unwatch"]


def test_zero_timeout_does_not_wait(fakes, bindir):
    binder(bindir, courier__port_ready_timeout=0.0).bind(make_vif())

    assert fakes.calls == ["link.create", "plug"]


def test_kuryr_vif_plugging_timeout_overrides_port_ready_timeout(fakes, bindir):
    binder(bindir, courier__port_ready_timeout=0.0, neutron__vif_plugging_timeout=3).bind(make_vif())

    assert "wait 3" in fakes.calls


@pytest.mark.parametrize("vif_type", ["unbound", "binding_failed", ""])
def test_unbound_port_is_refused_before_anything_is_created(fakes, bindir, vif_type):
    with pytest.raises(PortNotBound) as err:
        binder(bindir, binding__host_id="node-7").bind(make_vif(vif_type=vif_type))

    message = str(err.value)
    assert PORT_ID in message
    assert f"binding:vif_type={vif_type or 'unset'}" in message
    assert "'node-7'" in message and "chassis" in message
    assert fakes.calls == []


def test_unknown_vif_type_names_port_type_and_missing_executable(fakes, bindir):
    with pytest.raises(UnsupportedVifType) as err:
        binder(bindir).bind(make_vif(vif_type="vhostuser"))

    message = str(err.value)
    assert PORT_ID in message and "binding:vif_type=vhostuser" in message
    assert f"{bindir}/vhostuser" in message
    assert fakes.calls == []


def test_unknown_vif_type_with_an_executable_uses_it(fakes, bindir):
    script = bindir / "midonet"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    b = binder(bindir, courier__port_ready_timeout=0.0)

    assert isinstance(b._plug("midonet"), ExecutablePlug)
    assert b.bind(make_vif(vif_type="midonet")) == make_vif().container_ifname


def test_plug_failure_undoes_everything_and_says_what_failed(fakes, bindir):
    fakes.plug.fail_plug = RuntimeError("bridge exploded")

    with pytest.raises(BindingError) as err:
        binder(bindir).bind(make_vif())

    assert fakes.calls == ["link.create", "watch", "plug", "unwatch", "unplug", "link.delete"]
    message = str(err.value)
    assert PORT_ID in message and "plug tap3f1c2a9e-5b" in message and "bridge exploded" in message
    assert isinstance(err.value.__cause__, RuntimeError)


def test_link_failure_is_wrapped_and_cleaned_up(fakes, bindir):
    fakes.link.fail_create = OSError("EPERM")

    with pytest.raises(BindingError, match=r"failed to create veth pair tap3f1c2a9e-5b/t_c3f1c2a9e-5b: EPE"):
        binder(bindir).bind(make_vif())

    assert fakes.calls == ["link.create", "unplug", "link.delete"]


def test_not_ready_is_raised_as_is_after_undo(fakes, bindir):
    fakes.plug.fail_wait = PortNotReady("port not ready")

    with pytest.raises(PortNotReady, match="port not ready"):
        binder(bindir).bind(make_vif())

    assert fakes.calls[-3:] == ["unwatch", "unplug", "link.delete"]


def test_failing_cleanup_does_not_hide_the_original_error(fakes, bindir):
    fakes.plug.fail_plug = BindingError("the real problem")
    fakes.plug.fail_unplug = RuntimeError("cleanup trouble")
    fakes.link.fail_delete = RuntimeError("more cleanup trouble")

    with pytest.raises(BindingError, match="the real problem"):
        binder(bindir).bind(make_vif())


def test_unbind_unplugs_then_deletes_and_can_repeat(fakes, bindir):
    b = binder(bindir)
    b.unbind(make_vif())
    b.unbind(make_vif())

    assert fakes.calls == ["unplug", "link.delete"] * 2


def test_unbind_goes_on_past_a_failed_unplug_and_reports_it(fakes, bindir):
    fakes.plug.fail_unplug = BindingError("OVSDB is down")

    with pytest.raises(BindingError, match="left things behind: OVSDB is down"):
        binder(bindir).unbind(make_vif())

    assert fakes.calls == ["unplug", "link.delete"]


@pytest.mark.parametrize("vif_type", ["binding_failed", "unbound", "no-such-type"])
def test_unbind_of_a_port_without_usable_vif_type_still_cleans_ovs_best_effort(fakes, bindir, vif_type):
    fakes.plug.fail_unplug = BindingError("no OVSDB here")

    binder(bindir).unbind(make_vif(vif_type=vif_type))  # the guessed unplug may fail silently

    assert fakes.calls == ["unplug", "link.delete"]


def test_drivers_are_created_once_and_closed(fakes, bindir):
    b = binder(bindir, courier__port_ready_timeout=0.0)
    b.bind(make_vif())
    first = b._plug("ovs")
    b.bind(make_vif(endpoint_id="cbtestother"))

    assert b._plug("ovs") is first
    b.close()
    assert fakes.calls[-2:] == ["plug.close", "link.close"]


@pytest.mark.parametrize("configured", ["kuryr.lib.binding.drivers.veth", "veth"])
def test_link_driver_from_kuryr_conf(fakes, bindir, configured):
    assert isinstance(binder(bindir, binding__driver=configured)._link, fakes.link)


def test_unknown_link_driver_fails_at_startup(fakes, bindir):
    with pytest.raises(BindingError, match=r"driver = kuryr.lib.binding.drivers.macvlan.*driver 'macvlan'"):
        binder(bindir, binding__driver="kuryr.lib.binding.drivers.macvlan")


def test_plug_entry_point_that_is_not_a_plug_driver_is_refused(monkeypatch, bindir):
    monkeypatch.setattr(registry, "load",
                        lambda group, name: FakeLink if group == registry.LINK_GROUP else dict)

    with pytest.raises(BindingError, match="not a PlugDriver"):
        binder(bindir).bind(make_vif())


def test_executable_must_be_executable(fakes, bindir):
    (bindir / "iovisor").write_text("#!/bin/sh\n")
    os.chmod(bindir / "iovisor", 0o644)

    with pytest.raises(UnsupportedVifType):
        binder(bindir).bind(make_vif(vif_type="iovisor"))
