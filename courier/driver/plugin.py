"""Wires one Courier core: Neutron client, cache, binder, warm pools, networks, endpoints and addresses.

Front ends call it: the Docker adapter (courier.api) ``networks``, ``endpoints`` and ``ipam``; the CNI one
(courier.cni) ``attachments``, which runs the same steps in one call.
"""

from __future__ import annotations

from oslo_config import cfg

from courier.binding.manager import Binder
from courier.config.options import binding_host_id
from courier.driver import nested
from courier.driver.attachments import Attachments
from courier.driver.endpoints import Endpoints
from courier.driver.ipam import Ipam
from courier.driver.lookup import Lookup
from courier.driver.networks import Networks
from courier.driver.ports import Ports
from courier.driver.state import State
from courier.neutron.api import Neutron
from courier.pool import PortPools


class Plugin:
    def __init__(self, conf: cfg.ConfigOpts, neutron: Neutron, binder: Binder):
        self.conf = conf
        self.state = State()
        lookup = Lookup(neutron, self.state)
        self.nesting = nested.build(conf, neutron)  # None unless deployment_type = nested
        self.pools = PortPools(conf, neutron, binder, binding_host_id(conf), nested=self.nesting is not None)
        ports = Ports(neutron, self.state, lookup, binding_host_id(conf), self.nesting, self.pools)
        self.endpoints = Endpoints(conf, neutron, self.state, lookup, ports, binder, self.nesting, self.pools)
        self.networks = Networks(conf, neutron, self.state, lookup, self.pools)
        self.ipam = Ipam(conf, neutron, self.state, lookup, ports, self.pools)
        self.attachments = Attachments(self.state, lookup, ports, self.endpoints, binder, self.pools,
                                       binding_host_id(conf))  # CNI
        self._binder = binder

    def start(self) -> None:
        """Background work that outlives a call: the warm pools."""
        self.pools.start()

    def close(self) -> None:
        self.pools.close()
        self.state.deferred.close()
        self.endpoints.close()
        self._binder.close()
