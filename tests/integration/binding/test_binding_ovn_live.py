"""Real Neutron ports bound by ML2/OVN: bind returns once ovn-installed is set, and traffic flows right away."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from binding_live import (
    PREFIX,
    link_exists,
    make_conf,
    needs_neutron,
    needs_ovs,
    needs_root,
    ovs_interface,
    ovs_map,
    run,
    vif_from_port,
)

from courier.binding.errors import PortNotBound
from courier.binding.manager import Binder

pytestmark = [pytest.mark.integration, needs_root, needs_ovs, needs_neutron]

CIDR = "10.212.0.0/24"
TCP_PORT = 5201


@pytest.fixture
def network(neutron) -> dict[str, Any]:
    net = neutron.create("network", name=f"{PREFIX}-binding-{uuid.uuid4().hex[:8]}")
    neutron.create("subnet", network_id=net["id"], cidr=CIDR, ip_version=4, name=net["name"])
    return net


@pytest.fixture
def binder() -> Iterator[Binder]:
    b = Binder(make_conf(courier__port_ready_timeout=20.0))
    yield b
    b.close()


def wait_for_status(neutron, port_id: str, status: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    current = neutron.get("port", port_id)["status"]
    while current != status and time.monotonic() < deadline:
        time.sleep(0.1)
        current = neutron.get("port", port_id)["status"]
    return current


def bound_port(neutron, network, cleanup) -> tuple[dict[str, Any], Any]:
    port = neutron.create("port", network_id=network["id"], name=f"{PREFIX}-binding",
                          **{"binding:host_id": socket.gethostname()})
    assert port["binding:vif_type"] == "ovs", port
    vif = cleanup.add(vif_from_port(port, network, PREFIX + uuid.uuid4().hex))
    return port, vif


def test_bind_returns_once_ovn_installed_and_the_port_goes_active(neutron, network, cleanup, binder):
    port, vif = bound_port(neutron, network, cleanup)

    started = time.monotonic()
    binder.bind(vif)
    took = time.monotonic() - started

    row = ovs_interface(vif.host_ifname)
    assert row is not None and ovs_map(row["external_ids"]).get("ovn-installed") == "true"
    assert wait_for_status(neutron, port["id"], "ACTIVE") == "ACTIVE"
    print(f"\nbind() incl. wait for ovn-installed: {took:.3f} s")

    binder.unbind(vif)
    assert ovs_interface(vif.host_ifname) is None and not link_exists(vif.host_ifname)
    assert wait_for_status(neutron, port["id"], "DOWN") == "DOWN"


def test_bind_of_an_already_installed_port_returns_at_once(neutron, network, cleanup, binder):
    _, vif = bound_port(neutron, network, cleanup)
    binder.bind(vif)

    started = time.monotonic()
    binder.bind(vif)  # a retried Join: ovn-installed may already be set and never change again

    assert time.monotonic() - started < 5.0


def test_port_bound_to_an_unknown_host_is_refused_with_a_hint(neutron, network, cleanup, binder):
    port = neutron.create("port", network_id=network["id"], name=f"{PREFIX}-binding",
                          **{"binding:host_id": f"{PREFIX}-not-a-chassis"})
    assert port["binding:vif_type"] == "binding_failed"
    vif = cleanup.add(vif_from_port(port, network, PREFIX + uuid.uuid4().hex))

    with pytest.raises(PortNotBound, match=f"{port['id']}.*binding_failed.*chassis"):
        binder.bind(vif)
    assert not link_exists(vif.host_ifname)


def enter_namespace(namespaces, vif, port, name: str) -> str:
    ns = namespaces.add(name)
    ip = port["fixed_ips"][0]["ip_address"]
    run("ip", "link", "set", vif.container_ifname, "netns", ns)
    run("ip", "-n", ns, "link", "set", vif.container_ifname, "name", "eth0")
    run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
    run("ip", "-n", ns, "link", "set", "eth0", "up")
    return ip


def test_traffic_flows_as_soon_as_bind_returns(neutron, network, cleanup, binder, namespaces):
    tag = uuid.uuid4().hex[:6]
    (port_a, vif_a), (port_b, vif_b) = (bound_port(neutron, network, cleanup) for _ in range(2))
    for vif in (vif_a, vif_b):
        binder.bind(vif)
    ns_a, ns_b = f"{PREFIX}-a-{tag}", f"{PREFIX}-b-{tag}"
    ip_a = enter_namespace(namespaces, vif_a, port_a, ns_a)
    enter_namespace(namespaces, vif_b, port_b, ns_b)

    # No sleep before the first packet: bind() has returned, so the flows are in. TCP (not just ping) because
    # it needs TX checksum offload off on the container ends with the userspace datapath.
    server = subprocess.Popen(
        ["ip", "netns", "exec", ns_a, "python3", "-c",
         f"import socket; s = socket.create_server(('0.0.0.0', {TCP_PORT})); c, _ = s.accept(); "
         "c.sendall(c.recv(100).upper()); c.close()"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        client = subprocess.run(
            ["ip", "netns", "exec", ns_b, "python3", "-c",
             "import socket, time\n"
             "for _ in range(50):\n"
             "    try:\n"
             f"        c = socket.create_connection(('{ip_a}', {TCP_PORT}), timeout=3); break\n"
             "    except ConnectionRefusedError: time.sleep(0.05)\n"
             "c.sendall(b'courier'); print(c.recv(100).decode())"],
            capture_output=True, text=True, timeout=20, check=False)
        assert client.stdout.strip() == "COURIER", client.stderr
    finally:
        server.kill()
        server.wait()
