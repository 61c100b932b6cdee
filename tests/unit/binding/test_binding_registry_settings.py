"""Driver lookup by entry point (with the built-in fallback) and the configuration the binding layer reads."""

from __future__ import annotations

import importlib.metadata

import pytest
from binding_fakes import make_conf
from oslo_config import cfg

from courier.binding import registry, settings
from courier.binding.links.veth import VethLink
from courier.binding.plugs.bridge import BridgePlug
from courier.binding.plugs.ovs import OvsPlug
from courier.binding.plugs.tap import TapPlug


def test_builtin_drivers_without_installed_metadata(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [])

    assert registry.load(registry.LINK_GROUP, "veth") is VethLink
    assert registry.load(registry.PLUG_GROUP, "ovs") is OvsPlug
    assert registry.load(registry.PLUG_GROUP, "bridge") is BridgePlug
    assert registry.load(registry.PLUG_GROUP, "tap") is TapPlug
    assert registry.load(registry.PLUG_GROUP, "other") is None


def test_installed_entry_points_extend_and_override_builtins(monkeypatch):
    installed = [
        importlib.metadata.EntryPoint("tap", "courier.binding.plugs.bridge:BridgePlug", registry.PLUG_GROUP),
        importlib.metadata.EntryPoint("vpp", "courier.binding.plugs.tap:TapPlug", registry.PLUG_GROUP),
    ]
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: installed if group == registry.PLUG_GROUP else [])

    assert registry.load(registry.PLUG_GROUP, "tap") is BridgePlug
    assert registry.load(registry.PLUG_GROUP, "vpp") is TapPlug
    assert registry.load(registry.PLUG_GROUP, "ovs") is OvsPlug


def test_entry_point_that_is_not_a_class_is_refused(monkeypatch):
    bad = [importlib.metadata.EntryPoint("ovs", "os.path:join", registry.PLUG_GROUP)]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: bad)

    with pytest.raises(TypeError, match="not a class"):
        registry.load(registry.PLUG_GROUP, "ovs")


def test_builtin_classes_declare_their_vif_types():
    for name, target in registry.BUILTIN[registry.PLUG_GROUP].items():
        driver = registry.load(registry.PLUG_GROUP, name)
        assert driver is not None and name in driver.vif_types, target


@pytest.mark.parametrize(("configured", "expected"), [
    ("kuryr.lib.binding.drivers.veth", "veth"),
    ("veth", "veth"),
    ("kuryr.lib.binding.drivers.vlan", "vlan"),
])
def test_link_driver_name(configured, expected):
    assert settings.link_driver_name(make_conf(binding__driver=configured)) == expected


def test_ready_timeout_precedence():
    assert settings.ready_timeout(make_conf()) == 20.0
    assert settings.ready_timeout(make_conf(courier__port_ready_timeout=0.0)) == 0.0
    both = make_conf(courier__port_ready_timeout=5.0, neutron__vif_plugging_timeout=9)
    assert settings.ready_timeout(both) == 9


def test_options_not_registered_yet_fall_back_to_defaults():
    conf = make_conf()
    assert settings.script_timeout(conf) == settings.DEFAULT_SCRIPT_TIMEOUT
    assert settings.ovsdb_timeout(conf) == settings.DEFAULT_OVSDB_TIMEOUT
    empty = cfg.ConfigOpts()
    empty([])
    assert settings.ovsdb_connection(empty) == settings.DEFAULT_OVSDB_CONNECTION
    assert settings.bindir(empty) == "/usr/libexec/kuryr"


def test_host_id_defaults_to_hostname(monkeypatch):
    monkeypatch.setattr(settings.socket, "gethostname", lambda: "compute-3")

    assert settings.host_id(make_conf()) == "compute-3"
    assert settings.host_id(make_conf(binding__host_id="chassis-9")) == "chassis-9"
