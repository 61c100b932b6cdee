"""Finds binding drivers by entry point; a built-in table covers a Courier without installed metadata."""

from __future__ import annotations

import importlib.metadata
import logging

from oslo_config import cfg

LOG = logging.getLogger(__name__)

LINK_GROUP = "courier.link_drivers"
PLUG_GROUP = "courier.plug_drivers"  # entry point name = the binding:vif_type it plugs

BUILTIN: dict[str, dict[str, str]] = {
    LINK_GROUP: {
        "veth": "courier.binding.links.veth:VethLink",
        "vlan": "courier.binding.links.vlan:VlanLink",
        "macvlan": "courier.binding.links.macvlan:MacvlanLink",
        "ipvlan": "courier.binding.links.ipvlan:IpvlanLink",
    },
    PLUG_GROUP: {
        "ovs": "courier.binding.plugs.ovs:OvsPlug",
        "bridge": "courier.binding.plugs.bridge:BridgePlug",
        "tap": "courier.binding.plugs.tap:TapPlug",
    },
}


def entry_points(group: str) -> dict[str, importlib.metadata.EntryPoint]:
    """Built-in drivers, overridden and extended by installed entry points of ``group``."""
    found = {name: importlib.metadata.EntryPoint(name, target, group)
             for name, target in BUILTIN.get(group, {}).items()}
    for ep in importlib.metadata.entry_points(group=group):
        found[ep.name] = ep
    return found


def load(group: str, name: str) -> type | None:
    """The driver class registered as ``name`` in ``group``; None if there is none."""
    ep = entry_points(group).get(name)
    if ep is None:
        return None
    driver = ep.load()
    if not isinstance(driver, type):
        raise TypeError(f"Entry point {group}:{name} ({ep.value}) is not a class")
    return driver


def register_builtin_plug_opts(conf: cfg.ConfigOpts) -> None:
    """The built-in plug drivers' own options (CONFIG_OPTS), so kuryr.conf and ``courier doctor`` know them
    before any driver is loaded."""
    from courier.binding.base import PlugDriver

    for name, target in BUILTIN[PLUG_GROUP].items():
        driver = importlib.metadata.EntryPoint(name, target, PLUG_GROUP).load()
        if issubclass(driver, PlugDriver):
            driver.register_opts(conf)
    from courier.binding.plugs.executable import ExecutablePlug  # the fallback, not an entry point

    ExecutablePlug.register_opts(conf)
