"""The configuration values the binding layer reads, with defaults for options not registered (yet)."""

from __future__ import annotations

import socket
from typing import Any, TypeVar

from oslo_config import cfg

T = TypeVar("T")

DEFAULT_OVSDB_CONNECTION = "unix:/run/openvswitch/db.sock"
DEFAULT_OVSDB_TIMEOUT = 10.0
DEFAULT_SCRIPT_TIMEOUT = 30.0


def value(conf: cfg.ConfigOpts, group: str, name: str, default: T) -> T:
    """``conf.<group>.<name>``, or ``default`` when the option is not registered or unset."""
    try:
        section: Any = getattr(conf, group) if group else conf
        found = getattr(section, name)
    except (AttributeError, cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return default
    return default if found is None else found


def ready_timeout(conf: cfg.ConfigOpts) -> float:
    """kuryr.conf's [neutron] vif_plugging_timeout wins when set (> 0), as documented in options.py."""
    legacy = float(value(conf, "neutron", "vif_plugging_timeout", 0))
    if legacy > 0:
        return legacy
    return float(value(conf, "courier", "port_ready_timeout", 20.0))


def host_id(conf: cfg.ConfigOpts) -> str:
    return str(value(conf, "binding", "host_id", "") or socket.gethostname())


def bindir(conf: cfg.ConfigOpts) -> str:
    return str(value(conf, "", "bindir", "/usr/libexec/kuryr"))


def ovsdb_connection(conf: cfg.ConfigOpts) -> str:
    return str(value(conf, "courier", "ovsdb_connection", DEFAULT_OVSDB_CONNECTION))


def ovsdb_timeout(conf: cfg.ConfigOpts) -> float:
    return float(value(conf, "courier", "ovsdb_timeout", DEFAULT_OVSDB_TIMEOUT))


def script_timeout(conf: cfg.ConfigOpts) -> float:
    return float(value(conf, "courier", "plug_script_timeout", DEFAULT_SCRIPT_TIMEOUT))


def integration_bridge(conf: cfg.ConfigOpts) -> str:
    return str(value(conf, "courier", "integration_bridge", "br-int"))


def link_driver_name(conf: cfg.ConfigOpts) -> str:
    """[binding] driver; kuryr-lib module paths work: ``kuryr.lib.binding.drivers.veth`` means ``veth``."""
    configured = str(value(conf, "binding", "driver", "veth"))
    return configured.rsplit(".", 1)[-1]


def deployment_type(conf: cfg.ConfigOpts) -> str:
    return str(value(conf, "", "deployment_type", "baremetal"))


def link_iface(conf: cfg.ConfigOpts) -> str:
    """[binding] link_iface: the VM's interface nested containers hang off ("" = the default route's)."""
    return str(value(conf, "binding", "link_iface", ""))


def nested_netns(conf: cfg.ConfigOpts) -> str | None:
    """Namespace where link_iface lives ([courier] nested_netns); None: Courier's own."""
    return str(value(conf, "courier", "nested_netns", "")) or None
