"""The Docker adapter: each libnetwork call's request becomes the driver's domain values, its result a reply.

Only Docker's protocol lives here (field names, option keys, what a reply may echo back); what the call does is
the driver's business (courier.driver), which a CNI front end shares.
"""

from __future__ import annotations

from courier.api import models as m
from courier.driver import options as o
from courier.driver.models import EndpointSpec, SubnetSpec
from courier.driver.plugin import Plugin

# Docker's address spaces mean nothing to Neutron (subnetpools do that job): one name for both.
ADDRESS_SPACE = "no_address_space"


def activate(_: m.Empty) -> m.ActivateReply:
    return m.ActivateReply(Implements=["NetworkDriver", "IpamDriver"])


class NetworkDriver:
    def __init__(self, plugin: Plugin):
        self._conf, self._networks, self._endpoints = plugin.conf, plugin.networks, plugin.endpoints

    def capabilities(self, _: m.Empty) -> m.NetworkCapabilitiesReply:
        scope = self._conf.capability_scope
        return m.NetworkCapabilitiesReply(Scope=scope,
                                          ConnectivityScope=self._conf.capability_connectivity_scope or scope,
                                          GwAllocChecker=True)

    def gw_alloc_check(self, _: m.GwAllocCheckRequest) -> m.GwAllocCheckReply:
        # Neutron subnets have gateways (the router's port): let Docker reserve them.
        return m.GwAllocCheckReply(SkipIPv4=False, SkipIPv6=False)

    def create_network(self, req: m.CreateNetworkRequest) -> m.EmptyReply:
        self._networks.create(req.NetworkID, req.Options, _subnets(req.IPv4Data), _subnets(req.IPv6Data))
        return m.EmptyReply()

    def delete_network(self, req: m.NetworkRequest) -> m.EmptyReply:
        self._networks.delete(req.NetworkID)
        return m.EmptyReply()

    def allocate_network(self, req: m.AllocateNetworkRequest) -> m.AllocateNetworkReply:
        # Swarm managers allocate; each node creates its Neutron side in CreateNetwork.
        return m.AllocateNetworkReply(Options={k: str(v) for k, v in (req.Options or {}).items()})

    def free_network(self, _: m.NetworkRequest) -> m.EmptyReply:
        return m.EmptyReply()

    def create_endpoint(self, req: m.CreateEndpointRequest) -> m.CreateEndpointReply:
        iface = req.Interface or m.EndpointInterface()
        interface_mac = o.normalize_mac(iface.MacAddress, "Interface.MacAddress") if iface.MacAddress else None
        user_mac = (req.Options or {}).get(o.MAC_OPTION)  # --mac-address, when Docker did not set it itself
        wanted_mac = o.normalize_mac(str(user_mac), o.MAC_OPTION) if user_mac and not interface_mac else None
        mac = self._endpoints.create(EndpointSpec(
            network_id=req.NetworkID, endpoint_id=req.EndpointID,
            addresses=tuple(a for a in (iface.Address, iface.AddressIPv6) if a),
            interface_mac=interface_mac, wanted_mac=wanted_mac))
        # Only what Docker left empty: a value echoed back that differs from Docker's makes it roll back.
        return m.CreateEndpointReply(Interface=m.EndpointInterfaceReply(MacAddress=None if interface_mac else mac))

    def delete_endpoint(self, req: m.EndpointRequest) -> m.EmptyReply:
        self._endpoints.delete(req.NetworkID, req.EndpointID)
        return m.EmptyReply()

    def endpoint_oper_info(self, req: m.EndpointRequest) -> m.EndpointOperInfoReply:
        return m.EndpointOperInfoReply(Value=self._endpoints.oper_info(req.NetworkID, req.EndpointID))

    def join(self, req: m.JoinRequest) -> m.JoinReply:
        joined = self._endpoints.join(req.NetworkID, req.EndpointID)
        return m.JoinReply(
            InterfaceName=m.InterfaceName(SrcName=joined.host_ifname, DstPrefix=self._conf.binding.veth_dst_prefix),
            Gateway=joined.gateway_v4 or "", GatewayIPv6=joined.gateway_v6 or "",
            StaticRoutes=[m.StaticRoute(Destination=r.destination, RouteType=0, NextHop=r.next_hop)
                          for r in joined.routes],
            DisableGatewayService=True)

    def leave(self, req: m.EndpointRequest) -> m.EmptyReply:
        self._endpoints.leave(req.NetworkID, req.EndpointID)
        return m.EmptyReply()

    def program_external_connectivity(self, _: m.EndpointRequest) -> m.EmptyReply:
        # Reachability is Neutron's business (routers, floating IPs, security groups), not port mapping.
        return m.EmptyReply()

    def revoke_external_connectivity(self, _: m.EndpointRequest) -> m.EmptyReply:
        return m.EmptyReply()

    def discover(self, _: m.DiscoveryRequest) -> m.EmptyReply:
        return m.EmptyReply()


class IpamDriver:
    def __init__(self, plugin: Plugin):
        self._ipam = plugin.ipam

    def capabilities(self, _: m.Empty) -> m.IpamCapabilitiesReply:
        return m.IpamCapabilitiesReply(RequiresMACAddress=self._ipam.requires_mac(), RequiresRequestReplay=False)

    def default_address_spaces(self, _: m.Empty) -> m.AddressSpacesReply:
        return m.AddressSpacesReply(LocalDefaultAddressSpace=ADDRESS_SPACE, GlobalDefaultAddressSpace=ADDRESS_SPACE)

    def request_pool(self, req: m.RequestPoolRequest) -> m.RequestPoolReply:
        pool = self._ipam.request_pool(req.Pool, req.SubPool, req.Options, req.V6)
        return m.RequestPoolReply(PoolID=pool.pool_id, Pool=str(pool.cidr))

    def release_pool(self, req: m.ReleasePoolRequest) -> m.EmptyReply:
        self._ipam.release_pool(req.PoolID)
        return m.EmptyReply()

    def request_address(self, req: m.RequestAddressRequest) -> m.RequestAddressReply:
        opts = req.Options or {}
        mac = o.normalize_mac(opts[o.MAC_OPTION], o.MAC_OPTION) if opts.get(o.MAC_OPTION) else None
        gateway = opts.get(o.REQUEST_ADDRESS_TYPE) == o.GATEWAY_REQUEST
        return m.RequestAddressReply(Address=self._ipam.request_address(req.PoolID, req.Address, mac, gateway))

    def release_address(self, req: m.ReleaseAddressRequest) -> m.EmptyReply:
        self._ipam.release_address(req.PoolID, req.Address)
        return m.EmptyReply()


def _subnets(data: list[m.IPAMData] | None) -> list[SubnetSpec]:
    return [SubnetSpec(cidr=entry.Pool, gateway=entry.Gateway) for entry in data or []]
