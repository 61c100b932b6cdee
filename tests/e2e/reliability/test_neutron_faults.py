"""Neutron unavailable (issue 5.1): a fault proxy between Courier and the real Neutron.

For each fault (connections refused, 5xx, 409, hang) Docker gets a clear error well within its own patience
(~30 s), creates and updates are never repeated while reads and deletes are retried a bounded number of times
with backoff, nothing stays half-created, and the same Courier process serves again as soon as Neutron answers.
Courier runs with its default timeouts (``[courier] neutron_timeout`` = 10 s).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from courier.neutron.api import IDEMPOTENT_RETRIES
from tests import stack
from tests.e2e.reliability.conftest import (
    Docker,
    RelCourier,
    neutron_exists,
    no_leftovers,
    timed,
    unique,
    wait_until,
)
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.e2e

BOUND = 15.0  # seconds Docker may wait for an error, whatever Neutron does
ATTEMPTS = IDEMPOTENT_RETRIES + 1
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def proxy(stack_up: None) -> Iterator[FaultProxy]:
    with FaultProxy(stack.NEUTRON_URL) as p:
        yield p


@pytest.fixture(scope="module")
def faulty(proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelCourier]:
    # The cold path is what meets Neutron faults on the start path (the warm pool takes no Neutron call there).
    server = RelCourier(tmp_path_factory.mktemp("faults"), unique("relf"), endpoint=proxy.url, neutron_timeout=None,
                        extra="[vif_pool]\nenabled = false\n")
    server.start()
    yield server
    server.stop()
    print("\nNeutron fault timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in TIMINGS.items()))


@pytest.fixture
def dk(faulty: RelCourier, proxy: FaultProxy) -> Iterator[Docker]:
    proxy.passing()
    for ids in proxy.created.values():  # account per test
        ids.clear()
    proxy.device_ids.clear()
    pid = faulty.pid
    session = Docker(faulty.driver_name)
    try:
        yield session
    finally:
        proxy.passing()
        session.cleanup()
    assert faulty.proc is not None and faulty.proc.poll() is None and faulty.pid == pid, "Courier restarted"
    left = no_leftovers(proxy)
    assert not left, f"left behind in Neutron or on the host: {left}"


def _fails(result: object, *needles: str) -> str:
    assert result.returncode != 0, "docker unexpectedly succeeded"  # type: ignore[attr-defined]
    err: str = result.stderr  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in err, f"{needle!r} not in Docker's error: {err}"
    return err


def _port_of(dk: Docker, proxy: FaultProxy, container: str, network: str) -> str:
    """The Neutron port (made through the proxy) holding the container's address."""
    ip = dk.ip(container, network)
    ports = stack.neutron("GET", f"/ports?fixed_ips=ip_address%3D{ip}")["ports"]
    mine = [p["id"] for p in ports if p["id"] in proxy.created["ports"]]
    assert len(mine) == 1, ports
    return str(mine[0])


def test_refused_connections(dk: Docker, proxy: FaultProxy) -> None:
    net = dk.network("--subnet", "10.241.1.0/24").name
    proxy.set("refuse")
    proxy.reset_log()
    result, TIMINGS["refused: network create"] = timed(lambda: dk.network("--subnet", "10.241.2.0/24", check=False))
    _fails(result, "Neutron is unreachable")
    result, TIMINGS["refused: run"] = timed(lambda: dk.run(net, check=False))
    _fails(result, "Neutron is unreachable")
    assert TIMINGS["refused: network create"] < BOUND and TIMINGS["refused: run"] < BOUND
    assert proxy.requests() == [], "the proxy was down: nothing can have reached it"

    proxy.passing()  # Neutron back: served at once by the same process
    second = dk.network("--subnet", "10.241.2.0/24").name
    a, b = dk.run(net).name, dk.run(second).name
    c = dk.run(net).name
    assert dk.ping(a, dk.ip(c, net))
    assert dk.ip(b, second).startswith("10.241.2.")


def test_release_while_neutron_down_is_finished_once_it_is_back(dk: Docker, proxy: FaultProxy) -> None:
    net = dk.network("--subnet", "10.241.3.0/24").name
    container = dk.run(net).name
    port = _port_of(dk, proxy, container, net)
    proxy.set("refuse")
    _, TIMINGS["refused: rm"] = timed(lambda: dk.rm(container))  # Docker ignores a failed ReleaseAddress
    assert TIMINGS["refused: rm"] < BOUND
    assert neutron_exists("ports", port), "the port cannot have been deleted while Neutron was away"
    time.sleep(2)  # Neutron stays away a while
    proxy.passing()
    assert wait_until(lambda: not neutron_exists("ports", port), 40), "Courier never deleted the port"


def test_5xx_retries_reads_and_deletes_with_backoff_never_creates(dk: Docker, proxy: FaultProxy) -> None:
    net = dk.network("--subnet", "10.241.4.0/24").name
    proxy.set("5xx")
    proxy.reset_log()
    result, TIMINGS["5xx: run"] = timed(lambda: dk.run(net, check=False))
    _fails(result, "Neutron is unavailable (HTTP 503)")
    assert TIMINGS["5xx: run"] < BOUND
    assert len(proxy.requests("POST", r"/ports$")) == 1, "a create must never be repeated"

    # a read (the subnetpool named by --ipam-opt) is retried, with growing delays, a bounded number of times
    proxy.reset_log()
    result, TIMINGS["5xx: network create (read)"] = timed(lambda: dk.network(
        "--subnet", "10.241.5.0/24", "--ipam-opt", f"neutron.pool.name={unique('nopool')}", check=False))
    _fails(result, "Neutron is unavailable (HTTP 503)")
    reads = proxy.requests("GET", r"/subnetpools")
    assert len(reads) == ATTEMPTS, [(r.method, r.path) for r in reads]
    gaps = [b.at - a.at for a, b in itertools.pairwise(reads)]
    assert all(gap >= 0.2 * 2**i * 0.9 for i, gap in enumerate(gaps)), f"no backoff between retries: {gaps}"

    # a delete: retried the same bounded number of times, then finished in the background
    proxy.passing()
    container = dk.run(net).name
    port = _port_of(dk, proxy, container, net)
    proxy.reset_log()
    proxy.set("5xx", method="DELETE", path=f"/ports/{port}", times=ATTEMPTS)
    _, TIMINGS["5xx: rm"] = timed(lambda: dk.rm(container))
    assert TIMINGS["5xx: rm"] < BOUND
    assert wait_until(lambda: not neutron_exists("ports", port), 30), "Courier never deleted the port"
    deletes = proxy.requests("DELETE", f"/ports/{port}")
    assert [d.mode for d in deletes] == ["5xx"] * ATTEMPTS + ["pass"], deletes


def test_409_is_reported_not_retried(dk: Docker, proxy: FaultProxy) -> None:
    net = dk.network("--subnet", "10.241.6.0/24").name
    proxy.set("409", method="POST", path=r"/ports$")
    proxy.reset_log()
    result, TIMINGS["409: run"] = timed(lambda: dk.run(net, check=False))
    _fails(result, "conflict")
    assert TIMINGS["409: run"] < BOUND
    assert len(proxy.requests("POST", r"/ports$")) == 1
    proxy.passing()
    dk.run(net)


def test_hanging_neutron_times_out(dk: Docker, proxy: FaultProxy) -> None:
    net = dk.network("--subnet", "10.241.7.0/24").name
    proxy.set("hang")
    proxy.reset_log()
    result, TIMINGS["hang: run"] = timed(lambda: dk.run(net, check=False))
    _fails(result, "did not answer in time")
    assert TIMINGS["hang: run"] < BOUND
    assert len(proxy.requests("POST", r"/ports$")) == 1
    # a read that timed out is not retried: the wait was long enough
    proxy.reset_log()
    result, TIMINGS["hang: network create (read)"] = timed(lambda: dk.network(
        "--subnet", "10.241.8.0/24", "--ipam-opt", f"neutron.pool.name={unique('nopool')}", check=False))
    _fails(result, "did not answer in time")
    assert TIMINGS["hang: network create (read)"] < BOUND
    assert len(proxy.requests("GET", r"/subnetpools")) == 1
    proxy.passing()
    first, second = dk.run(net).name, dk.run(net).name
    assert dk.ping(first, dk.ip(second, net))


@pytest.mark.parametrize("fault", ["5xx", "hang", "5xx, deletes too"])
def test_failed_network_create_leaves_nothing(dk: Docker, proxy: FaultProxy, fault: str) -> None:
    """The Neutron network is made, its subnet is not: the network goes again, and the pool with ReleasePool;
    when those deletes fail as well (Docker ignores a failed ReleasePool), once Neutron is back."""
    proxy.set(fault.split(",")[0], method="POST", path=r"/subnets$")
    if "deletes" in fault:
        proxy.set("5xx", method="DELETE")
    result, TIMINGS[f"{fault} on subnet: network create"] = timed(lambda: dk.network(
        "--subnet", "10.241.9.0/24", check=False))
    _fails(result, "did not answer in time" if fault == "hang" else "Neutron is unavailable (HTTP 503)")
    assert TIMINGS[f"{fault} on subnet: network create"] < BOUND
    assert len(proxy.created["networks"]) == 1 and len(proxy.created["subnetpools"]) == 1, proxy.created
    if "deletes" in fault:
        assert all(neutron_exists(kind, i) for kind in ("networks", "subnetpools") for i in proxy.created[kind])
        time.sleep(2)
    proxy.passing()  # the fixture then checks that all of it is gone (background deletes included)


def test_failed_network_delete_is_finished_in_the_background(dk: Docker, proxy: FaultProxy) -> None:
    """dockerd ignores a failed DeleteNetwork and forgets the network: Courier must finish the job itself."""
    net = dk.network("--subnet", "10.241.10.0/24").name
    proxy.set("5xx", method="DELETE", path=r"/networks/")
    proxy.reset_log()
    _, TIMINGS["5xx: network rm"] = timed(lambda: dk("network", "rm", net))
    dk.networks.remove(net)
    assert TIMINGS["5xx: network rm"] < BOUND
    assert len(proxy.requests("DELETE", r"/networks/")) >= ATTEMPTS
    assert len(proxy.created["networks"]) == 1 and all(neutron_exists("networks", n)
                                                       for n in proxy.created["networks"])
    proxy.passing()  # the fixture checks that network, subnet and subnetpool then go (bounded wait)
