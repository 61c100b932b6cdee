"""Typed Docker requests and replies: what they accept, what they refuse, how replies serialise."""

from __future__ import annotations

import json

import pydantic
import pytest

from courier.api import models as m

NET = "574b19b7f738c23238f8cc8fcca5b8b163ea21ba16d1fa09e8cc1ab1803e1a1f"
EP = "9a6a9543c4ddfef61c092dc467cb9abc81b0fffa6556181fa952dcc242dde428"

# Verbatim request bodies dockerd 20.10 sent (docker-requests.sample.jsonl), with the model that reads each.
DOCKER_SAMPLES = [
    (m.RequestPoolRequest,
     '{"AddressSpace":"spklocal","Pool":"10.99.0.0/24","SubPool":"","Options":{},"V6":false}\n'),
    (m.RequestPoolRequest,
     '{"AddressSpace":"spklocal","Pool":"fd00:97::/64","SubPool":"","Options":{},"V6":true}\n'),
    (m.RequestAddressRequest,
     '{"PoolID":"spk-spklocal-10.99.0.0/24","Address":"","Options":{"RequestAddressType":'
     '"com.docker.network.gateway"}}\n'),
    (m.RequestAddressRequest,
     '{"PoolID":"spk-spklocal-10.99.0.0/24","Address":"","Options":{"com.docker.network.endpoint.macaddress":'
     '"02:42:96:2a:57:5d"}}\n'),
    (m.CreateNetworkRequest,
     '{"NetworkID":"574b19b7f738c23238f8cc8fcca5b8b163ea21ba16d1fa09e8cc1ab1803e1a1f","Options":{'
     '"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{"com.example.mtu":"1400","foo":"bar"}},'
     '"IPv4Data":[{"AddressSpace":"spklocal","Gateway":"10.99.0.1/24","Pool":"10.99.0.0/24"}],"IPv6Data":[]}\n'),
    (m.CreateEndpointRequest,
     '{"NetworkID":"574b19b7f738c23238f8cc8fcca5b8b163ea21ba16d1fa09e8cc1ab1803e1a1f","EndpointID":'
     '"bbc53f365eb0d1575d101be1f6c3a4275490434f46f5ed03e91a29782a4f2e70","Interface":{"Address":"10.99.0.50/24",'
     '"AddressIPv6":"","MacAddress":"02:aa:bb:cc:dd:ee"},"Options":{"com.docker.network.endpoint.exposedports":[],'
     '"com.docker.network.endpoint.macaddress":"Aqq7zN3u","com.docker.network.portmap":[]}}\n'),
    (m.JoinRequest,
     '{"NetworkID":"574b19b7f738c23238f8cc8fcca5b8b163ea21ba16d1fa09e8cc1ab1803e1a1f","EndpointID":'
     '"9a6a9543c4ddfef61c092dc467cb9abc81b0fffa6556181fa952dcc242dde428","SandboxKey":'
     '"/var/run/docker/netns/1cb92349aeb4","Options":{"com.docker.network.endpoint.exposedports":[],'
     '"com.docker.network.portmap":[]}}\n'),
    (m.EndpointRequest,
     '{"NetworkID":"574b19b7f738c23238f8cc8fcca5b8b163ea21ba16d1fa09e8cc1ab1803e1a1f","EndpointID":'
     '"9a6a9543c4ddfef61c092dc467cb9abc81b0fffa6556181fa952dcc242dde428"}\n'),
    (m.ReleaseAddressRequest, '{"PoolID":"spk-spklocal-10.99.0.0/24","Address":"10.99.0.2"}\n'),
    (m.ReleasePoolRequest, '{"PoolID":"spk-spklocal-10.99.0.0/24"}\n'),
    (m.NetworkRequest, '{"NetworkID":"574b19b7f738c23238f8cc8fcca5b8b163ea21ba16d1fa09e8cc1ab1803e1a1f"}\n'),
]


@pytest.mark.parametrize(("model", "body"), DOCKER_SAMPLES, ids=[f"{mod.__name__}-{i}"
                                                                 for i, (mod, _) in enumerate(DOCKER_SAMPLES)])
def test_every_request_docker_sent_validates(model: type[m.Request], body: str) -> None:
    payload = json.loads(body)
    assert model.model_validate(payload).model_dump(exclude_unset=True) == payload


def test_create_network_reads_ipam_data() -> None:
    req = m.CreateNetworkRequest.model_validate(json.loads(DOCKER_SAMPLES[4][1]))
    assert req.IPv4Data == [m.IPAMData(AddressSpace="spklocal", Gateway="10.99.0.1/24", Pool="10.99.0.0/24")]
    assert req.IPv6Data == []
    assert req.Options is not None and req.Options["com.docker.network.generic"]["foo"] == "bar"


def test_fields_a_newer_docker_adds_are_ignored() -> None:
    req = m.NetworkRequest.model_validate({"NetworkID": NET, "SomethingNew": {"x": 1}})
    assert req.NetworkID == NET
    assert not hasattr(req, "SomethingNew")


@pytest.mark.parametrize("value", [NET, "0" * 64, "f" * 64])
def test_docker_id_accepts_64_lowercase_hex(value: str) -> None:
    assert m.NetworkRequest(NetworkID=value).NetworkID == value


@pytest.mark.parametrize("value", ["", NET[:63], NET + "0", NET.upper(), "g" * 64, NET[:60] + "-abc",
                                   " " + NET[1:], NET[:63] + "\n"])
def test_docker_id_refuses_anything_else(value: str) -> None:
    with pytest.raises(pydantic.ValidationError) as err:
        m.NetworkRequest.model_validate({"NetworkID": value})
    assert err.value.errors()[0]["loc"] == ("NetworkID",)


@pytest.mark.parametrize(("model", "payload", "field"), [
    (m.NetworkRequest, {"NetworkID": 12}, ("NetworkID",)),
    (m.RequestPoolRequest, {"V6": "true"}, ("V6",)),
    (m.RequestPoolRequest, {"V6": 1}, ("V6",)),
    (m.RequestPoolRequest, {"Pool": ["10.0.0.0/24"]}, ("Pool",)),
    (m.RequestPoolRequest, {"Options": ["a"]}, ("Options",)),
    (m.RequestPoolRequest, {"Options": {"k": 1}}, ("Options", "k")),
    (m.RequestAddressRequest, {"PoolID": 5}, ("PoolID",)),
    (m.CreateNetworkRequest, {"NetworkID": NET, "IPv4Data": {"Pool": "x"}}, ("IPv4Data",)),
    (m.CreateNetworkRequest, {"NetworkID": NET, "IPv4Data": [{"Gateway": "10.0.0.1/24"}]}, ("IPv4Data", 0, "Pool")),
    (m.CreateEndpointRequest, {"NetworkID": NET, "EndpointID": EP, "Interface": "eth0"}, ("Interface",)),
    (m.JoinRequest, {"NetworkID": NET, "EndpointID": EP, "SandboxKey": None}, ("SandboxKey",)),
    (m.DiscoveryRequest, {"DiscoveryType": "1"}, ("DiscoveryType",)),
])
def test_requests_are_strict_about_types(model: type[m.Request], payload: dict, field: tuple) -> None:
    with pytest.raises(pydantic.ValidationError) as err:
        model.model_validate(payload)
    assert field in [e["loc"] for e in err.value.errors()]


@pytest.mark.parametrize(("model", "payload", "missing"), [
    (m.NetworkRequest, {}, "NetworkID"),
    (m.EndpointRequest, {"NetworkID": NET}, "EndpointID"),
    (m.JoinRequest, {"NetworkID": NET, "EndpointID": EP}, "SandboxKey"),
    (m.ReleasePoolRequest, {}, "PoolID"),
    (m.ReleaseAddressRequest, {"PoolID": "p"}, "Address"),
    (m.RequestAddressRequest, {}, "PoolID"),
])
def test_required_fields(model: type[m.Request], payload: dict, missing: str) -> None:
    with pytest.raises(pydantic.ValidationError) as err:
        model.model_validate(payload)
    assert [(e["loc"], e["type"]) for e in err.value.errors()] == [((missing,), "missing")]


@pytest.mark.parametrize(("model", "payload"), [
    (m.ReleasePoolRequest, {"PoolID": ""}),
    (m.RequestAddressRequest, {"PoolID": ""}),
    (m.ReleaseAddressRequest, {"PoolID": "p", "Address": ""}),
])
def test_empty_ids_are_refused(model: type[m.Request], payload: dict) -> None:
    with pytest.raises(pydantic.ValidationError):
        model.model_validate(payload)


def test_defaults_match_what_docker_may_leave_out() -> None:
    pool = m.RequestPoolRequest.model_validate({"AddressSpace": "local"})
    assert (pool.Pool, pool.SubPool, pool.Options, pool.V6) == ("", "", None, False)
    with pytest.raises(pydantic.ValidationError, match="AddressSpace"):  # dockerd always sends it
        m.RequestPoolRequest.model_validate({})
    assert m.RequestAddressRequest.model_validate({"PoolID": "p"}).Address == ""
    ep = m.CreateEndpointRequest.model_validate({"NetworkID": NET, "EndpointID": EP, "Options": None})
    assert ep.Interface is None and ep.Options is None
    assert m.IPAMData.model_validate({"Pool": "10.0.0.0/24"}).Gateway == ""


def test_requests_are_immutable() -> None:
    req = m.NetworkRequest(NetworkID=NET)
    with pytest.raises(pydantic.ValidationError):
        req.NetworkID = "0" * 64  # type: ignore[misc]


def test_replies_refuse_unknown_fields() -> None:
    with pytest.raises(pydantic.ValidationError):
        m.EmptyReply(Surprise=1)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        m.JoinReply(InterfaceName=m.InterfaceName(SrcName="a", DstPrefix="eth"), Gatway="10.0.0.1")  # type: ignore


def test_create_endpoint_reply_leaves_out_what_docker_supplied() -> None:
    assert m.CreateEndpointReply().model_dump(exclude_none=True) == {"Interface": {}}
    reply = m.CreateEndpointReply(Interface=m.EndpointInterfaceReply(MacAddress="fa:16:3e:00:00:01"))
    assert reply.model_dump(exclude_none=True) == {"Interface": {"MacAddress": "fa:16:3e:00:00:01"}}


def test_join_reply_shape() -> None:
    reply = m.JoinReply(InterfaceName=m.InterfaceName(SrcName="t_c123", DstPrefix="eth"), Gateway="10.0.0.1",
                        StaticRoutes=[m.StaticRoute(Destination="10.1.0.0/16", RouteType=0, NextHop="10.0.0.254")])
    assert reply.model_dump(exclude_none=True) == {
        "InterfaceName": {"SrcName": "t_c123", "DstPrefix": "eth"}, "Gateway": "10.0.0.1", "GatewayIPv6": "",
        "StaticRoutes": [{"Destination": "10.1.0.0/16", "RouteType": 0, "NextHop": "10.0.0.254"}],
        "DisableGatewayService": True}


def test_capability_replies() -> None:
    assert m.NetworkCapabilitiesReply(Scope="local", ConnectivityScope="local").model_dump() == {
        "Scope": "local", "ConnectivityScope": "local", "GwAllocChecker": True}
    assert m.IpamCapabilitiesReply(RequiresMACAddress=True).model_dump() == {
        "RequiresMACAddress": True, "RequiresRequestReplay": False}


def test_ipam_replies_carry_data() -> None:
    assert m.RequestPoolReply(PoolID="p", Pool="10.0.0.0/24").model_dump() == {
        "PoolID": "p", "Pool": "10.0.0.0/24", "Data": {}}
    assert m.RequestAddressReply(Address="10.0.0.2/24").model_dump() == {"Address": "10.0.0.2/24", "Data": {}}
