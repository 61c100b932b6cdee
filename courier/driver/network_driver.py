"""NetworkDriver: the Docker calls, each mapped to networks or endpoints."""

from __future__ import annotations

from oslo_config import cfg

from courier.api import models as m
from courier.driver.endpoints import Endpoints
from courier.driver.networks import Networks


class NetworkDriver:
    def __init__(self, conf: cfg.ConfigOpts, networks: Networks, endpoints: Endpoints):
        self._conf, self._networks, self._endpoints = conf, networks, endpoints

    def capabilities(self, _: m.Empty) -> m.NetworkCapabilitiesReply:
        scope = self._conf.capability_scope
        return m.NetworkCapabilitiesReply(Scope=scope,
                                          ConnectivityScope=self._conf.capability_connectivity_scope or scope,
                                          GwAllocChecker=True)

    def gw_alloc_check(self, _: m.GwAllocCheckRequest) -> m.GwAllocCheckReply:
        # Neutron subnets have gateways (the router's port): let Docker reserve them.
        return m.GwAllocCheckReply(SkipIPv4=False, SkipIPv6=False)

    def create_network(self, req: m.CreateNetworkRequest) -> m.EmptyReply:
        self._networks.create(req)
        return m.EmptyReply()

    def delete_network(self, req: m.NetworkRequest) -> m.EmptyReply:
        self._networks.delete(req)
        return m.EmptyReply()

    def allocate_network(self, req: m.AllocateNetworkRequest) -> m.AllocateNetworkReply:
        # Swarm managers allocate; each node creates its Neutron side in CreateNetwork.
        return m.AllocateNetworkReply(Options={k: str(v) for k, v in (req.Options or {}).items()})

    def free_network(self, _: m.NetworkRequest) -> m.EmptyReply:
        return m.EmptyReply()

    def create_endpoint(self, req: m.CreateEndpointRequest) -> m.CreateEndpointReply:
        return self._endpoints.create(req)

    def delete_endpoint(self, req: m.EndpointRequest) -> m.EmptyReply:
        self._endpoints.delete(req)
        return m.EmptyReply()

    def endpoint_oper_info(self, req: m.EndpointRequest) -> m.EndpointOperInfoReply:
        return self._endpoints.oper_info(req)

    def join(self, req: m.JoinRequest) -> m.JoinReply:
        return self._endpoints.join(req)

    def leave(self, req: m.EndpointRequest) -> m.EmptyReply:
        self._endpoints.leave(req)
        return m.EmptyReply()

    def program_external_connectivity(self, _: m.EndpointRequest) -> m.EmptyReply:
        # Reachability is Neutron's business (routers, floating IPs, security groups), not port mapping.
        return m.EmptyReply()

    def revoke_external_connectivity(self, _: m.EndpointRequest) -> m.EmptyReply:
        return m.EmptyReply()

    def discover(self, _: m.DiscoveryRequest) -> m.EmptyReply:
        return m.EmptyReply()
