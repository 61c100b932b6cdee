"""Dispatcher: every route answers; every bad request becomes a Docker error reply naming what was wrong."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pydantic
import pytest
from prometheus_client import REGISTRY

from courier.api import models as m
from courier.api.routes import Dispatcher, Route, build_routes
from tests.fakes import FakeNeutron
from tests.unit.dockerd import ENDPOINT_OPTIONS, Container, Dockerd, Network, docker_id, docker_mac

NET = "574b19b7f738c23238f8cc8fcca5b8b163ea21ba16d1fa09e8cc1ab1803e1a1f"
EP = "9a6a9543c4ddfef61c092dc467cb9abc81b0fffa6556181fa952dcc242dde428"


class World:
    def __init__(self, docker: Dockerd):
        self.docker = docker
        self.net: Network = docker.network_create("10.99.0.0/24")
        self.container: Container = docker.run(self.net)

    @property
    def ep(self) -> dict[str, str]:
        return {"NetworkID": self.net.network_id, "EndpointID": self.container.endpoint_id}


# A valid request for every route, in a world with one network and one running container.
VALID: dict[str, Callable[[World], Any]] = {
    "Plugin.Activate": lambda w: None,
    "NetworkDriver.GetCapabilities": lambda w: None,
    "NetworkDriver.GwAllocCheck": lambda w: {"Options": {}},
    "NetworkDriver.CreateNetwork": lambda w: Dockerd.create_network_request(w.net),  # a repeat: idempotent
    "NetworkDriver.DeleteNetwork": lambda w: {"NetworkID": docker_id()},  # unknown: nothing to do
    "NetworkDriver.AllocateNetwork": lambda w: {"NetworkID": docker_id(), "Options": {"k": "v"}, "IPv4Data": []},
    "NetworkDriver.FreeNetwork": lambda w: {"NetworkID": docker_id()},
    "NetworkDriver.CreateEndpoint": lambda w: Dockerd.create_endpoint_request(w.container),
    "NetworkDriver.DeleteEndpoint": lambda w: w.ep,
    "NetworkDriver.EndpointOperInfo": lambda w: w.ep,
    "NetworkDriver.Join": lambda w: Dockerd.join_request(w.container),
    "NetworkDriver.Leave": lambda w: w.ep,
    "NetworkDriver.ProgramExternalConnectivity": lambda w: {**w.ep, "Options": ENDPOINT_OPTIONS},
    "NetworkDriver.RevokeExternalConnectivity": lambda w: w.ep,
    "NetworkDriver.DiscoverNew": lambda w: {"DiscoveryType": 1, "DiscoveryData": {"Address": "10.0.0.5"}},
    "NetworkDriver.DiscoverDelete": lambda w: {"DiscoveryType": 1, "DiscoveryData": {"Address": "10.0.0.5"}},
    "IpamDriver.GetCapabilities": lambda w: None,
    "IpamDriver.GetDefaultAddressSpaces": lambda w: None,
    "IpamDriver.RequestPool": lambda w: w.docker.request_pool("10.98.0.0/24"),
    "IpamDriver.ReleasePool": lambda w: {"PoolID": w.net.v4[0].pool_id},
    "IpamDriver.RequestAddress": lambda w: w.docker.address_request(w.net.v4[0].pool_id, docker_mac()),
    "IpamDriver.ReleaseAddress": lambda w: {"PoolID": w.net.v4[0].pool_id, "Address": w.container.ips[0]},
}


@pytest.fixture
def world(docker: Dockerd) -> World:
    return World(docker)


@pytest.fixture
def dispatcher(docker: Dockerd) -> Dispatcher:
    return docker.dispatcher


def dispatch_json(dispatcher: Dispatcher, method: str, payload: Any) -> tuple[int, dict[str, Any]]:
    return dispatcher.dispatch(method, json.dumps(payload).encode() + b"\n")


def assert_error(status: int, reply: dict[str, Any], expected_status: int, *fragments: str) -> None:
    assert status == expected_status, reply
    assert set(reply) == {"Err", "Error"}
    assert reply["Err"] == reply["Error"]
    for fragment in fragments:
        assert fragment in reply["Err"]


def test_every_route_is_covered_here(docker: Dockerd) -> None:
    assert set(build_routes(docker.plugin)) == set(VALID)


@pytest.mark.parametrize("method", sorted(VALID))
def test_every_route_answers(world: World, method: str) -> None:
    payload = VALID[method](world)
    body = b"" if payload is None else json.dumps(payload).encode() + b"\n"
    status, reply = world.docker.dispatcher.dispatch(method, body)
    assert status == 200, reply
    assert "Err" not in reply and "Error" not in reply
    json.dumps(reply)  # the server must be able to send it


def test_activate_and_capabilities(dispatcher: Dispatcher) -> None:
    assert dispatcher.dispatch("Plugin.Activate", b"") == (200, {"Implements": ["NetworkDriver", "IpamDriver"]})
    assert dispatcher.dispatch("NetworkDriver.GetCapabilities", b"") == (
        200, {"Scope": "local", "ConnectivityScope": "local", "GwAllocChecker": True})
    assert dispatcher.dispatch("IpamDriver.GetCapabilities", b"") == (
        200, {"RequiresMACAddress": True, "RequiresRequestReplay": False})
    assert dispatcher.dispatch("IpamDriver.GetDefaultAddressSpaces", b"") == (
        200, {"LocalDefaultAddressSpace": "no_address_space", "GlobalDefaultAddressSpace": "no_address_space"})


def test_empty_object_body_is_the_same_as_no_body(dispatcher: Dispatcher) -> None:
    assert dispatcher.dispatch("Plugin.Activate", b"{}\n") == dispatcher.dispatch("Plugin.Activate", b"")
    assert dispatcher.dispatch("Plugin.Activate", b"  \n") == dispatcher.dispatch("Plugin.Activate", b"")


def test_allocate_network_echoes_options_as_strings(dispatcher: Dispatcher) -> None:
    status, reply = dispatch_json(dispatcher, "NetworkDriver.AllocateNetwork",
                                  {"NetworkID": NET, "Options": {"a": "b", "n": 3}})
    assert (status, reply) == (200, {"Options": {"a": "b", "n": "3"}})


@pytest.mark.parametrize("method", ["NetworkDriver.Bogus", "", "plugin.activate", "IpamDriver.RequestPool/x",
                                    "NetworkDriver.", "../etc/passwd", "NetworkDriver.CreateNetwork\x00"])
def test_unknown_method_is_404(dispatcher: Dispatcher, method: str) -> None:
    status, reply = dispatcher.dispatch(method, b"{}")
    assert_error(status, reply, 404, "unknown method", repr(method))


def test_unknown_methods_share_one_metrics_label(dispatcher: Dispatcher) -> None:
    def count(label: str) -> float:
        return REGISTRY.get_sample_value("courier_requests_total", {"method": label, "status": "404"}) or 0.0

    before = count("unknown")
    dispatcher.dispatch("Totally.Random.Name", b"")
    assert count("unknown") == before + 1
    assert count("Totally.Random.Name") == 0.0


@pytest.mark.parametrize("body", [b"{", b"{'NetworkID': 'x'}", b"nul", b'{"NetworkID": }', b"\x00", b"{}}",
                                  b'{"NetworkID": "' + NET.encode() + b'"', b"NaN-ish"])
def test_malformed_json_is_400(dispatcher: Dispatcher, body: bytes) -> None:
    status, reply = dispatcher.dispatch("NetworkDriver.DeleteNetwork", body)
    assert_error(status, reply, 400, "invalid request", "not JSON")


@pytest.mark.parametrize("body", [b"[]", b"1", b'"NetworkID"', b"null", b"true", b'[{"NetworkID": "x"}]'])
def test_json_that_is_not_an_object_is_400(dispatcher: Dispatcher, body: bytes) -> None:
    status, reply = dispatcher.dispatch("NetworkDriver.DeleteNetwork", body)
    assert_error(status, reply, 400, "invalid request", "must be a JSON object")


@pytest.mark.parametrize(("method", "payload", "field"), [
    ("NetworkDriver.CreateNetwork", {}, "NetworkID: Field required"),
    ("NetworkDriver.DeleteNetwork", {"NetworkId": NET}, "NetworkID: Field required"),
    ("NetworkDriver.CreateEndpoint", {"NetworkID": NET}, "EndpointID: Field required"),
    ("NetworkDriver.Join", {"NetworkID": NET, "EndpointID": EP}, "SandboxKey: Field required"),
    ("IpamDriver.RequestAddress", {"Address": "10.0.0.2"}, "PoolID: Field required"),
    ("IpamDriver.ReleaseAddress", {"PoolID": "p"}, "Address: Field required"),
    ("IpamDriver.ReleasePool", {}, "PoolID: Field required"),
    ("NetworkDriver.CreateNetwork", {"NetworkID": NET, "IPv4Data": [{"Gateway": "10.0.0.1/24"}]},
     "IPv4Data.0.Pool: Field required"),
    ("NetworkDriver.DiscoverNew", {}, "DiscoveryType: Field required"),
])
def test_missing_fields_are_400_naming_the_field(dispatcher: Dispatcher, method: str, payload: dict,
                                                 field: str) -> None:
    status, reply = dispatch_json(dispatcher, method, payload)
    assert_error(status, reply, 400, field)


BODY_METHODS = ["NetworkDriver.GwAllocCheck", "NetworkDriver.CreateNetwork", "NetworkDriver.DeleteNetwork",
                "NetworkDriver.AllocateNetwork", "NetworkDriver.FreeNetwork", "NetworkDriver.CreateEndpoint",
                "NetworkDriver.DeleteEndpoint", "NetworkDriver.EndpointOperInfo", "NetworkDriver.Join",
                "NetworkDriver.Leave", "NetworkDriver.ProgramExternalConnectivity",
                "NetworkDriver.RevokeExternalConnectivity", "NetworkDriver.DiscoverNew",
                "NetworkDriver.DiscoverDelete", "IpamDriver.RequestPool", "IpamDriver.ReleasePool",
                "IpamDriver.RequestAddress", "IpamDriver.ReleaseAddress"]


@pytest.mark.parametrize("method", BODY_METHODS)
@pytest.mark.parametrize("body", [b"", b"  \n"])
def test_empty_body_is_never_answered_with_a_guess(dispatcher: Dispatcher, method: str, body: bytes) -> None:
    """dockerd's replay after a plugin crash comes with an empty body (moby#39331): refuse, never default."""
    status, reply = dispatcher.dispatch(method, body)
    assert_error(status, reply, 400, f"{method} needs a JSON body and got an empty one", "moby/moby#39331")


def test_request_pool_without_address_space_is_not_dockers() -> None:
    with pytest.raises(pydantic.ValidationError):
        m.RequestPoolRequest.model_validate({"Pool": "10.0.0.0/24"})


@pytest.mark.parametrize(("method", "payload", "field"), [
    ("NetworkDriver.CreateNetwork", {"NetworkID": 123}, "NetworkID: Input should be a valid string"),
    ("NetworkDriver.CreateNetwork", {"NetworkID": NET, "Options": ["a", "b"]},
     "Options: Input should be a valid dictionary"),
    ("NetworkDriver.CreateNetwork", {"NetworkID": NET, "IPv4Data": "10.0.0.0/24"},
     "IPv4Data: Input should be a valid list"),
    ("NetworkDriver.CreateNetwork", {"NetworkID": NET, "IPv4Data": [{"Pool": 10}]},
     "IPv4Data.0.Pool: Input should be a valid string"),
    ("NetworkDriver.CreateEndpoint", {"NetworkID": NET, "EndpointID": EP, "Interface": {"Address": 1}},
     "Interface.Address: Input should be a valid string"),
    ("NetworkDriver.Join", {"NetworkID": NET, "EndpointID": EP, "SandboxKey": ["/x"]},
     "SandboxKey: Input should be a valid string"),
    ("IpamDriver.RequestPool", {"V6": "yes"}, "V6: Input should be a valid boolean"),
    ("IpamDriver.RequestPool", {"Options": {"neutron.pool.uuid": 5}},
     "Options.neutron.pool.uuid: Input should be a valid string"),
    ("IpamDriver.RequestAddress", {"PoolID": ["p"]}, "PoolID: Input should be a valid string"),
    ("IpamDriver.RequestAddress", {"PoolID": "p", "Options": "mac"}, "Options: Input should be a valid dictionary"),
    ("IpamDriver.ReleaseAddress", {"PoolID": "p", "Address": None}, "Address: Input should be a valid string"),
    ("NetworkDriver.DiscoverNew", {"DiscoveryType": "1"}, "DiscoveryType: Input should be a valid integer"),
])
def test_wrong_types_are_400_naming_the_field(dispatcher: Dispatcher, method: str, payload: dict,
                                              field: str) -> None:
    status, reply = dispatch_json(dispatcher, method, payload)
    assert_error(status, reply, 400, field)


@pytest.mark.parametrize("bad_id", ["abc", NET.upper(), NET[:-1], NET + "0", "z" * 64, "", " " * 64])
@pytest.mark.parametrize(("method", "field"), [
    ("NetworkDriver.DeleteNetwork", "NetworkID"),
    ("NetworkDriver.Leave", "EndpointID"),
])
def test_ids_that_are_not_64_hex_are_400(dispatcher: Dispatcher, method: str, field: str, bad_id: str) -> None:
    payload = {"NetworkID": NET, "EndpointID": EP, field: bad_id}
    status, reply = dispatch_json(dispatcher, method, payload)
    assert_error(status, reply, 400, f"{field}: String should match pattern")


def test_several_problems_are_reported_together(dispatcher: Dispatcher) -> None:
    status, reply = dispatch_json(dispatcher, "NetworkDriver.Join", {"NetworkID": 1, "EndpointID": "x"})
    assert_error(status, reply, 400, "NetworkID:", "EndpointID:", "SandboxKey:")


def test_bad_request_changes_nothing(world: World, neutron: FakeNeutron) -> None:
    before = neutron.snapshot()
    neutron.reset_calls()
    for method in VALID:
        world.docker.dispatcher.dispatch(method, b"[1]")
    assert neutron.snapshot() == before
    assert neutron.total_calls == 0


def _raising(exc: BaseException) -> Callable[[Any], m.Reply]:
    def handler(_: Any) -> m.Reply:
        raise exc

    return handler


def test_unexpected_exception_in_a_handler_is_a_short_500() -> None:
    secret = "Traceback (most recent call last): token=s3cr3t"
    dispatcher = Dispatcher({"X.Boom": Route(m.Empty, _raising(RuntimeError(secret)))})
    status, reply = dispatcher.dispatch("X.Boom", b"")
    assert_error(status, reply, 500, "internal error in X.Boom: RuntimeError")
    assert "s3cr3t" not in reply["Err"] and "Traceback" not in reply["Err"]
    assert len(reply["Err"]) < 100


def test_unexpected_exception_in_the_plugin_is_a_short_500(world: World) -> None:
    world.docker.binder.bind_error = ZeroDivisionError("division by zero at /usr/lib/secret.py line 3")
    status, reply = dispatch_json(world.docker.dispatcher, "NetworkDriver.Join", Dockerd.join_request(world.container))
    assert_error(status, reply, 500, "internal error in NetworkDriver.Join")
    assert "secret.py" not in reply["Err"]


def test_domain_errors_from_handlers_keep_their_status(world: World) -> None:
    status, reply = dispatch_json(world.docker.dispatcher, "IpamDriver.RequestAddress",
                                  {"PoolID": world.net.v4[0].pool_id, "Address": "192.168.1.1"})
    assert_error(status, reply, 400, "outside pool 10.99.0.0/24")


# --- bodies that break the parser itself -----------------------------------------------------------------------

HOSTILE_BODIES = {
    "non-utf8": b'{"NetworkID": "\xff\xfe"}',
    "latin-1": '{"Pool": "caf\u00e9"}'.encode("latin-1"),
    "deeply-nested": b"[" * 50_000 + b"]" * 50_000,
    "deeply-nested-object": b'{"Options": ' * 5_000 + b"{}" + b"}" * 5_000,
    "huge-integer": b'{"DiscoveryType": ' + b"9" * 5_000 + b"}",
}


@pytest.fixture
def parser_dispatcher() -> Iterator[Dispatcher]:
    docker = Dockerd(FakeNeutron())
    yield docker.dispatcher
    docker.close()


@pytest.mark.parametrize("name", ["deeply-nested", "deeply-nested-object"])
def test_dispatch_never_raises_on_deep_nesting(parser_dispatcher: Dispatcher, name: str) -> None:
    status, reply = parser_dispatcher.dispatch("NetworkDriver.DeleteNetwork", HOSTILE_BODIES[name])
    assert_error(status, reply, 400, "invalid request")


@pytest.mark.parametrize("name", ["non-utf8", "latin-1", "huge-integer"])
def test_undecodable_body_is_400(parser_dispatcher: Dispatcher, name: str) -> None:
    status, reply = parser_dispatcher.dispatch("NetworkDriver.DeleteNetwork", HOSTILE_BODIES[name])
    assert_error(status, reply, 400, "invalid request")


@pytest.mark.parametrize("name", ["non-utf8", "latin-1", "huge-integer"])
def test_undecodable_body_still_gets_an_error_reply(parser_dispatcher: Dispatcher, name: str) -> None:
    status, reply = parser_dispatcher.dispatch("NetworkDriver.DeleteNetwork", HOSTILE_BODIES[name])
    assert status >= 400
    assert set(reply) == {"Err", "Error"}
