"""Driver lookup by entry point (with the built-in fallback), and the options plug drivers declare and read."""

from __future__ import annotations

import importlib.metadata

import pytest
from oslo_config import cfg

from courier.binding import registry
from courier.binding.links.veth import VethLink
from courier.binding.plugs.bridge import BridgePlug
from courier.binding.plugs.executable import ExecutablePlug
from courier.binding.plugs.ovs import OvsPlug
from courier.binding.plugs.tap import TapPlug
from courier.config import options
from tests.unit.binding.binding_fakes import make_conf


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
    assert options.link_driver_name(make_conf(binding__driver=configured)) == expected


def test_ready_timeout_precedence():
    assert options.port_ready_timeout(make_conf()) == 20.0
    assert options.port_ready_timeout(make_conf(courier__port_ready_timeout=0.0)) == 0.0
    both = make_conf(courier__port_ready_timeout=5.0, neutron__vif_plugging_timeout=9)
    assert options.port_ready_timeout(both) == 9


def test_host_id_defaults_to_hostname(monkeypatch):
    monkeypatch.setattr(options.socket, "gethostname", lambda: "compute-3")

    assert options.binding_host_id(make_conf()) == "compute-3"
    assert options.binding_host_id(make_conf(binding__host_id="chassis-9")) == "chassis-9"


def core_conf() -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    options.register_core_opts(conf)
    conf([])
    return conf


def test_a_plug_driver_registers_its_own_options_when_loaded():
    conf = core_conf()
    with pytest.raises(cfg.NoSuchOptError):
        conf.courier.ovsdb_timeout  # noqa: B018 - not Courier's core option: the OVS plug declares it

    OvsPlug(conf)
    ExecutablePlug(conf)

    assert conf.courier.ovsdb_connection == "unix:/run/openvswitch/db.sock"
    assert conf.courier.ovsdb_timeout == 10.0 and conf.courier.integration_bridge == "br-int"
    assert conf.courier.plug_script_timeout == 30.0


def test_registering_plug_options_again_is_harmless():
    conf = make_conf(courier__ovsdb_timeout=3.5)
    OvsPlug(conf)
    OvsPlug(conf)
    options.register_opts(conf)

    assert conf.courier.ovsdb_timeout == 3.5


def test_register_opts_knows_the_builtin_plug_options_with_kuryr_names_and_defaults():
    conf = make_conf()
    assert {"ovsdb_connection", "ovsdb_timeout", "integration_bridge", "plug_script_timeout"} <= set(conf.courier)
    assert conf.bindir == "/usr/libexec/kuryr" and conf.binding.driver == "kuryr.lib.binding.drivers.veth"


def test_plug_options_are_typed(tmp_path):
    path = tmp_path / "kuryr.conf"
    path.write_text("[courier]\novsdb_timeout = 2.5\n")
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf(["--config-file", str(path)])

    assert conf.courier.ovsdb_timeout == 2.5
