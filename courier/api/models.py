"""Typed requests and replies of the libnetwork remote network driver and IPAM protocols.

Field names are Docker's. Requests are strict about types (a string where Docker sends a string) and
ignore fields they do not know, so a newer Docker keeps working.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

DockerId = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="Docker's 64-hex id")]


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Empty(Request):
    pass


class EmptyReply(Reply):
    pass


# --- Plugin -------------------------------------------------------------------------------------------


class ActivateReply(Reply):
    Implements: list[str]


# --- NetworkDriver ---------------------------------------------------------------------------------------


class NetworkCapabilitiesReply(Reply):
    Scope: str
    ConnectivityScope: str
    GwAllocChecker: bool = True


class GwAllocCheckRequest(Request):
    Options: dict[str, Any] | None = None


class GwAllocCheckReply(Reply):
    SkipIPv4: bool = False
    SkipIPv6: bool = False


class IPAMData(Request):
    AddressSpace: str = ""
    Pool: str
    Gateway: str = ""  # CIDR form, e.g. 10.0.0.1/24
    AuxAddresses: dict[str, str] | None = None


class CreateNetworkRequest(Request):
    NetworkID: DockerId
    Options: dict[str, Any] | None = None
    IPv4Data: list[IPAMData] | None = None
    IPv6Data: list[IPAMData] | None = None


class NetworkRequest(Request):
    NetworkID: DockerId


class AllocateNetworkRequest(Request):
    NetworkID: DockerId
    Options: dict[str, Any] | None = None
    IPv4Data: list[IPAMData] | None = None
    IPv6Data: list[IPAMData] | None = None


class AllocateNetworkReply(Reply):
    Options: dict[str, str] = Field(default_factory=dict)


class EndpointInterface(Request):
    Address: str = ""
    AddressIPv6: str = ""
    MacAddress: str = ""


class CreateEndpointRequest(Request):
    NetworkID: DockerId
    EndpointID: DockerId
    Interface: EndpointInterface | None = None
    Options: dict[str, Any] | None = None


class EndpointInterfaceReply(Reply):
    # Only what Docker left empty: echoing a value back that differs makes Docker roll back.
    Address: str | None = None
    AddressIPv6: str | None = None
    MacAddress: str | None = None


class CreateEndpointReply(Reply):
    Interface: EndpointInterfaceReply = Field(default_factory=EndpointInterfaceReply)


class EndpointRequest(Request):
    NetworkID: DockerId
    EndpointID: DockerId
    Options: dict[str, Any] | None = None


class EndpointOperInfoReply(Reply):
    Value: dict[str, Any]


class JoinRequest(Request):
    NetworkID: DockerId
    EndpointID: DockerId
    SandboxKey: str
    Options: dict[str, Any] | None = None


class InterfaceName(Reply):
    SrcName: str
    DstPrefix: str


class StaticRoute(Reply):
    Destination: str
    RouteType: int  # 0: via NextHop, 1: connected
    NextHop: str = ""


class JoinReply(Reply):
    InterfaceName: InterfaceName
    Gateway: str = ""
    GatewayIPv6: str = ""
    StaticRoutes: list[StaticRoute] = Field(default_factory=list)
    DisableGatewayService: bool = True


class DiscoveryRequest(Request):
    DiscoveryType: int
    DiscoveryData: Any = None


# --- IpamDriver ---------------------------------------------------------------------------------------------


class IpamCapabilitiesReply(Reply):
    RequiresMACAddress: bool
    RequiresRequestReplay: bool = False


class AddressSpacesReply(Reply):
    LocalDefaultAddressSpace: str
    GlobalDefaultAddressSpace: str


class RequestPoolRequest(Request):
    AddressSpace: str  # dockerd always sends it: a body without it is not dockerd's (e.g. an empty replay)
    Pool: str = ""
    SubPool: str = ""
    Options: dict[str, str] | None = None
    V6: bool = False


class RequestPoolReply(Reply):
    PoolID: str
    Pool: str
    Data: dict[str, str] = Field(default_factory=dict)


class ReleasePoolRequest(Request):
    PoolID: Annotated[str, Field(min_length=1)]


class RequestAddressRequest(Request):
    PoolID: Annotated[str, Field(min_length=1)]
    Address: str = ""
    Options: dict[str, str] | None = None


class RequestAddressReply(Reply):
    Address: str
    Data: dict[str, str] = Field(default_factory=dict)


class ReleaseAddressRequest(Request):
    PoolID: Annotated[str, Field(min_length=1)]
    Address: Annotated[str, Field(min_length=1)]
