"""Fuzzing Dispatcher.dispatch over a real Plugin with FakeNeutron: > 10,000 generated requests.

Every request must get an answer (dispatch never raises); every non-200 answer carries Err and Error;
every answer can be serialised; and a request answered >= 400 leaves Neutron exactly as it was.

Each request runs against a fresh copy of one prepared world (three Docker networks, one of them dual-stack and
one on a user's Neutron network with a reserved port; one running container; the default subnetpool) and a
fresh Plugin (a cold cache, as after a restart), so failures reproduce and shrink. ``fuzz_sequences`` sends
several requests to one Plugin, so later ones meet what earlier ones cached or created.

Two known bugs are tolerated here and pinned by xfail tests instead: 500 for a body that is not UTF-8
(api/test_routes.py) and a rejected CreateEndpoint that leaves tags behind (driver/test_endpoints.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courier.api.routes import Dispatcher, build_routes
from courier.driver.plugin import Plugin
from courier.driver.state import Claims
from tests.fakes import FakeBinder, FakeNeutron
from tests.unit.dockerd import Dockerd, make_conf

# --- the prepared world ------------------------------------------------------------------------------------------


def _prepare() -> tuple[FakeNeutron, dict[str, Any]]:
    neutron = FakeNeutron()
    kuryr = neutron.add_subnetpool("kuryr", ["10.200.0.0/16"], 24)
    user = neutron.add_network("user-net", tags=["user"])
    user_subnet = neutron.add_subnet(user.id, "10.50.0.0/24", name="user-subnet")
    neutron.add_port(user.id, [{"subnet_id": user_subnet.id, "ip_address": "10.50.0.50"}], name="reserved")
    docker = Dockerd(neutron, conf=CONF)
    net = docker.network_create("10.99.0.0/24")
    dual = docker.network_create("10.97.0.0/24", v6=("fd00:97::/64",))
    existing = docker.network_create("10.50.0.0/24", options={"neutron.net.uuid": user.id})
    c = docker.run(net)
    docker.close()
    values = {
        "network_ids": [net.network_id, dual.network_id, existing.network_id],
        "endpoint_ids": [c.endpoint_id],
        "pool_ids": [p.pool_id for n in (net, dual, existing) for p in n.pools] + [f"{kuryr.id}/10.200.0.0/24",
                                                                                      kuryr.id],
        "neutron_ids": [user.id, user_subnet.id, kuryr.id],
        "addresses": [c.ips[0], "10.99.0.1", "10.50.0.50", "10.97.0.9", "fd00:97::9"],
    }
    return neutron, values


CONF = make_conf()
WORLD, V = _prepare()
KNOWN_METHODS = sorted(build_routes(Plugin(CONF, WORLD.clone(), FakeBinder())))  # type: ignore[arg-type]

# --- strategies ----------------------------------------------------------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=20))
junk = st.recursive(json_leaf, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                                                          max_size=4),
                    max_leaves=8)
# A cheaper, flat stand-in for any JSON value, for fields (nested junk is what fuzz_any_json sends).
flat_junk = st.one_of(json_leaf, st.lists(json_leaf, max_size=3),
                      st.dictionaries(st.text(max_size=5), json_leaf, max_size=3))
huge_text = st.integers(1_000, 200_000).map(lambda n: "a" * n)
hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)


def request_fields(dirty: bool) -> dict[str, dict[str, st.SearchStrategy[Any]]]:
    """Per method, a strategy per request field: plausible values, or (dirty) sometimes anything at all."""

    def f(*plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        good = plausible[0] if len(plausible) == 1 else st.one_of(*plausible)
        return st.one_of(good, good, good, flat_junk, huge_text) if dirty else good

    live_network, live_endpoint, live_pool = (st.sampled_from(V[k]) for k in ("network_ids", "endpoint_ids",
                                                                                "pool_ids"))
    network_id = f(live_network, live_network, live_network, hex64)
    endpoint_id = f(live_endpoint, live_endpoint, hex64)
    pool_id = f(live_pool, live_pool, live_pool, st.just("00000000-0000-0000-0000-00000000dead"),
                st.text(max_size=40))
    cidr = f(st.sampled_from(["", "10.99.0.0/24", "10.98.0.0/24", "10.98.0.0/30", "10.200.7.0/24", "10.50.0.0/24",
                              "fd00:97::/64", "fd00:98::/64", "10.0.0.1/24", "0.0.0.0/0", "::/0", "banana"]),
             st.text(max_size=20))
    address = f(st.sampled_from(V["addresses"]), st.ip_addresses().map(str), st.text(max_size=20))
    cidr_address = f(address.map(lambda a: f"{a}/24" if isinstance(a, str) and a else a),
                     st.sampled_from(["", "10.99.0.5/24", "fd00:97::5/64", "10.97.0.5/24", "10.99.0.2/24"]))
    mac = f(st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b)),
            st.sampled_from(["Aqq7zN3u", "02:42:AC:11:00:02", "02-42-ac-11-00-02", ""]))
    text_options = st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=3)
    neutron_option = f(st.sampled_from(V["neutron_ids"] + ["kuryr", "user-net", "user-subnet", "no-such"]))
    pool_options = f(st.fixed_dictionaries({}, optional={
        k: neutron_option for k in ("neutron.pool.uuid", "neutron.pool.name", "neutron.pool.v6.uuid",
                                    "neutron.subnet.uuid", "neutron.subnet.name", "neutron.subnet.v6.name")}
        | {"neutron.net.shared": f(st.sampled_from(["true", "false", "maybe", ""]))}), text_options)
    address_options = f(st.fixed_dictionaries({}, optional={
        "RequestAddressType": f(st.sampled_from(["com.docker.network.gateway", "other"])),
        "com.docker.network.endpoint.macaddress": mac}), text_options)
    bool_option = f(st.booleans(), st.sampled_from(["true", "false", "0", "yes", "perhaps"]))
    network_options = f(st.fixed_dictionaries({}, optional={
        "com.docker.network.enable_ipv6": bool_option, "com.docker.network.enable_ipv4": bool_option,
        "com.docker.network.generic": f(st.fixed_dictionaries({}, optional={
            "neutron.net.uuid": neutron_option, "neutron.net.name": neutron_option, "neutron.net.shared": bool_option,
            "neutron.pool.uuid": neutron_option}))}))
    ipam_data = f(st.lists(f(st.fixed_dictionaries(
        {"Pool": cidr}, optional={"AddressSpace": f(st.just("no_address_space")), "Gateway": cidr_address,
                                  "AuxAddresses": f(st.just({}))})), max_size=3))
    endpoint_options = f(st.fixed_dictionaries({}, optional={
        "com.docker.network.endpoint.macaddress": mac, "com.docker.network.portmap": f(st.just([]))}))
    interface = f(st.fixed_dictionaries({"Address": cidr_address}, optional={"AddressIPv6": cidr_address,
                                                                            "MacAddress": mac}))
    discovery = {"DiscoveryType": f(st.integers()), "DiscoveryData": flat_junk}
    ep = {"NetworkID": network_id, "EndpointID": endpoint_id, "Options": endpoint_options}
    return {
        "Plugin.Activate": {},
        "NetworkDriver.GetCapabilities": {},
        "IpamDriver.GetCapabilities": {},
        "IpamDriver.GetDefaultAddressSpaces": {},
        "NetworkDriver.GwAllocCheck": {"Options": network_options},
        "NetworkDriver.CreateNetwork": {"NetworkID": network_id, "Options": network_options, "IPv4Data": ipam_data,
                                        "IPv6Data": ipam_data},
        "NetworkDriver.AllocateNetwork": {"NetworkID": network_id, "Options": network_options,
                                          "IPv4Data": ipam_data},
        "NetworkDriver.DeleteNetwork": {"NetworkID": network_id},
        "NetworkDriver.FreeNetwork": {"NetworkID": network_id},
        "NetworkDriver.CreateEndpoint": {**ep, "Interface": interface},
        "NetworkDriver.DeleteEndpoint": ep,
        "NetworkDriver.EndpointOperInfo": ep,
        "NetworkDriver.Join": {**ep, "SandboxKey": f(st.just("/var/run/docker/netns/1cb92349aeb4"))},
        "NetworkDriver.Leave": ep,
        "NetworkDriver.ProgramExternalConnectivity": ep,
        "NetworkDriver.RevokeExternalConnectivity": ep,
        "NetworkDriver.DiscoverNew": discovery,
        "NetworkDriver.DiscoverDelete": discovery,
        "IpamDriver.RequestPool": {"AddressSpace": f(st.just("no_address_space")), "Pool": cidr, "SubPool": cidr,
                                   "Options": pool_options, "V6": f(st.booleans())},
        "IpamDriver.ReleasePool": {"PoolID": pool_id},
        "IpamDriver.RequestAddress": {"PoolID": pool_id, "Address": address, "Options": address_options},
        "IpamDriver.ReleaseAddress": {"PoolID": pool_id, "Address": address},
    }


REQUIRED = {"NetworkID", "EndpointID", "PoolID", "SandboxKey", "DiscoveryType", "Address"}
CLEAN, DIRTY = request_fields(dirty=False), request_fields(dirty=True)


def _payload(method: str) -> st.SearchStrategy[dict[str, Any]]:
    """Half the time a well-formed request; otherwise fields of any type, missing, or unexpected ones."""
    clean, dirty = CLEAN[method], DIRTY[method]
    required = {k: v for k, v in clean.items() if k in REQUIRED}
    well_formed = st.fixed_dictionaries(required, optional={k: v for k, v in clean.items() if k not in REQUIRED})
    malformed = st.fixed_dictionaries({}, optional={**dirty, "Unexpected": flat_junk})
    return st.one_of(well_formed, malformed)


def _encode(payload: Any) -> bytes:
    return json.dumps(payload).encode() + b"\n"


known_method = st.sampled_from(KNOWN_METHODS)
any_method = st.one_of(known_method, known_method.map(str.lower), known_method.map(lambda m: m + "x"),
                       st.text(max_size=40), st.sampled_from(["", "/", "Plugin", "NetworkDriver.", "IpamDriver"]))
structured = st.one_of([st.tuples(st.just(m), _payload(m).map(_encode)) for m in KNOWN_METHODS])


@st.composite
def mangled(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real request, then damaged: cut short, made non-UTF-8, or padded."""
    method, body = draw(structured)
    how = draw(st.sampled_from(["truncate", "non-utf8", "garbage-tail", "bom", "whitespace"]))
    if how == "truncate":
        body = body[:draw(st.integers(0, max(0, len(body) - 1)))]
    elif how == "non-utf8":
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])) + body[at:]
    elif how == "garbage-tail":
        body = body + draw(st.binary(min_size=1, max_size=20))
    elif how == "bom":
        body = b"\xef\xbb\xbf" + body
    else:
        body = b" \t\r\n" + body + b"\r\n\r\n"
    return method, body


# --- the property ----------------------------------------------------------------------------------------------

SENT = {"requests": 0}
ALLOWED_STATUSES = {200, 400, 404, 409, 500, 502, 503}


def _known_half_done(method: str, reply: dict[str, Any]) -> bool:
    """The one rejected request known to change Neutron (reported; xfail in driver/test_endpoints.py,
    ATTACH_TAKES_OVER): CreateEndpoint on another endpoint's bound port, with another MAC."""
    return method == "NetworkDriver.CreateEndpoint" and "port is already bound" in reply.get("Err", "")


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def fresh_world() -> tuple[FakeNeutron, Plugin, Dispatcher]:
    neutron = WORLD.clone()
    plugin = Plugin(CONF, neutron, FakeBinder())  # type: ignore[arg-type]
    # Two RequestPools for one pending subnet would wait 30 s for the first one's CreateNetwork: fail at once.
    plugin.state.claims = Claims(wait_seconds=0)
    return neutron, plugin, Dispatcher(build_routes(plugin))


def quiesce(plugin: Plugin) -> None:
    """Let what earlier requests left running in the background land before looking at Neutron."""
    futures.wait(list(plugin.state.port_updates.values()), 10)
    assert plugin.state.deferred.wait_idle(10)


def send(neutron: FakeNeutron, plugin: Plugin, dispatcher: Dispatcher, method: str, body: bytes) -> None:
    quiesce(plugin)
    before = neutron.snapshot()
    status, reply = dispatcher.dispatch(method, body)  # must not raise
    SENT["requests"] += 1
    quiesce(plugin)
    assert status in ALLOWED_STATUSES, (status, reply)
    assert isinstance(reply, dict)
    json.dumps(reply)  # what the server sends
    if status != 200:
        assert isinstance(reply.get("Err"), str) and reply["Err"], reply
        assert reply.get("Error") == reply["Err"], reply
    else:
        assert "Err" not in reply and "Error" not in reply
    if status >= 400 and not _known_half_done(method, reply):
        assert neutron.snapshot() == before, (method, body[:300], status, reply)
    if status == 500:
        assert "internal error in" in reply["Err"] and "Traceback" not in reply["Err"]
        # The one 500 known (reported, xfail in test_routes): a body that is not UTF-8. Anything else is a bug.
        assert not _is_utf8(body), (method, body[:300], reply)


def run_each(requests: list[tuple[str, bytes]]) -> None:
    """Every request against its own fresh world (generating requests in batches is what costs little)."""
    for method, body in requests:
        neutron, plugin, dispatcher = fresh_world()
        try:
            send(neutron, plugin, dispatcher, method, body)
        finally:
            plugin.close()


FAST = {"deadline": None, "database": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]}


def batches(request: st.SearchStrategy[tuple[str, bytes]], min_size: int = 5) -> st.SearchStrategy[Any]:
    return st.lists(request, min_size=min_size, max_size=min_size + 2)


# (examples, smallest batch): at least 10,250 requests in all; about 12,000 on average.
BUDGET = {"bytes": (350, 5), "json": (350, 5), "structured": (900, 5), "mangled": (300, 5), "sequences": (250, 3)}


@settings(max_examples=BUDGET["bytes"][0], **FAST)
@given(batches(st.tuples(any_method, st.binary(max_size=300))))
def fuzz_random_bytes(requests: list[tuple[str, bytes]]) -> None:
    run_each(requests)


@settings(max_examples=BUDGET["json"][0], **FAST)
@given(batches(st.tuples(any_method, junk.map(_encode))))
def fuzz_any_json(requests: list[tuple[str, bytes]]) -> None:
    run_each(requests)


@settings(max_examples=BUDGET["structured"][0], **FAST)
@given(batches(structured))
def fuzz_structured(requests: list[tuple[str, bytes]]) -> None:
    run_each(requests)


@settings(max_examples=BUDGET["mangled"][0], **FAST)
@given(batches(mangled()))
def fuzz_mangled(requests: list[tuple[str, bytes]]) -> None:
    run_each(requests)


@settings(max_examples=BUDGET["sequences"][0], **FAST)
@given(batches(st.one_of(structured, structured, mangled()), min_size=BUDGET["sequences"][1]))
def fuzz_sequences(requests: list[tuple[str, bytes]]) -> None:
    """Several requests on one Plugin: later ones meet what earlier ones cached or created."""
    neutron, plugin, dispatcher = fresh_world()
    try:
        for method, body in requests:
            send(neutron, plugin, dispatcher, method, body)
    finally:
        plugin.close()


@pytest.fixture(autouse=True)
def quiet() -> Iterator[None]:
    """Thousands of rejections and 500s would be logged (with tracebacks); nothing here reads them."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


def _run(fuzz: Any, budget: str) -> None:
    examples, smallest = BUDGET[budget]
    before = SENT["requests"]
    fuzz()
    assert SENT["requests"] - before >= examples * smallest


def test_budget_is_at_least_10000_requests() -> None:
    assert sum(examples * smallest for examples, smallest in BUDGET.values()) >= 10_000


def test_random_bytes() -> None:
    _run(fuzz_random_bytes, "bytes")


def test_any_json_value() -> None:
    _run(fuzz_any_json, "json")


def test_structured_requests_with_junk_fields() -> None:
    _run(fuzz_structured, "structured")


def test_damaged_requests() -> None:
    _run(fuzz_mangled, "mangled")


def test_request_sequences() -> None:
    _run(fuzz_sequences, "sequences")


def test_the_world_is_what_the_fuzzers_expect() -> None:
    """Guards the fuzzers' premise: the prepared ids are live, so generated requests reach deep code."""
    neutron, plugin, dispatcher = fresh_world()
    try:
        net, ep = V["network_ids"][0], V["endpoint_ids"][0]
        status, reply = dispatcher.dispatch("NetworkDriver.EndpointOperInfo",
                                            _encode({"NetworkID": net, "EndpointID": ep}))
        assert status == 200 and reply["Value"]["fixed_ips"] == [V["addresses"][0]]
        assert len(neutron.networks) == 3 and len(neutron.ports) == 2
    finally:
        plugin.close()


@pytest.mark.parametrize("second", [b'{"Pool": ""}', b'{"Pool": "10.50.0.0/24"}'])
def test_create_network_failing_on_its_second_pool_changes_nothing(second: bytes) -> None:
    """Found by fuzz_structured: the first pool's subnetpool was re-tagged (a bad CIDR), or its tags emptied instead
    of restored (a subnet that overlaps the first one) before the request failed."""
    body = b'{"NetworkID": "' + b"9b" * 32 + b'", "IPv4Data": [{"Pool": "10.50.0.0/24"}, ' + second + b"]}"
    send(*fresh_world(), "NetworkDriver.CreateNetwork", body)
