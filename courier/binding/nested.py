"""What the nested driver asks the binding layer about the VM Courier runs in (its public face for nesting)."""

from __future__ import annotations

from oslo_config import cfg

from courier.binding.links.nested import lower_link, lower_namespace


def vm_interface(conf: cfg.ConfigOpts) -> tuple[str, str]:
    """(name, MAC) of the VM's own interface, [binding] link_iface (or the default route's), in its namespace.

    Raises BindingError when it cannot be found.
    """
    with lower_namespace(conf) as ipr:
        name, _, mac, _ = lower_link(conf, ipr)
    return name, mac
