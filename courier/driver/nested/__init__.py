"""``[DEFAULT] deployment_type = nested``: Courier in a Nova VM, containers behind the VM's Neutron port.

The strategy follows ``[binding] driver`` (kuryr's names): vlan (trunk subports), macvlan or ipvlan (allowed
address pairs). See docs/nested.md.
"""

from __future__ import annotations

from oslo_config import cfg

from courier.config.options import link_driver_name
from courier.driver.nested.base import Nesting, VmPort
from courier.driver.nested.macvlan import IpvlanNesting, MacvlanNesting
from courier.driver.nested.vlan import VlanNesting
from courier.exceptions import InvalidRequest
from courier.neutron.api import Neutron

STRATEGIES: dict[str, type[Nesting]] = {"vlan": VlanNesting, "macvlan": MacvlanNesting, "ipvlan": IpvlanNesting}

__all__ = ["STRATEGIES", "IpvlanNesting", "MacvlanNesting", "Nesting", "VlanNesting", "VmPort", "build"]


def build(conf: cfg.ConfigOpts, neutron: Neutron) -> Nesting | None:
    """The strategy the configuration asks for; None on bare metal. A mismatch is refused at start."""
    driver = link_driver_name(conf)
    configured = conf.binding.driver
    if conf.deployment_type != "nested":
        if driver in STRATEGIES:
            raise InvalidRequest(f"[binding] driver = {configured} is for containers nested in a VM: set "
                                 "[DEFAULT] deployment_type = nested (or use driver = veth)")
        return None
    strategy = STRATEGIES.get(driver)
    if strategy is None:
        raise InvalidRequest(f"[DEFAULT] deployment_type = nested needs [binding] driver = vlan, macvlan or ipvlan "
                             f"(kuryr.lib.binding.drivers.<name> works too), not {configured}")
    return strategy(conf, neutron)
