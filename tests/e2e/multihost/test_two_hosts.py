"""Two chassis, one Neutron network: containers on both hosts reach each other over the Geneve tunnel, each
Courier touches only its own host's ports, security groups hold across hosts."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time

import pytest

from tests import stack
from tests.e2e.multihost.conftest import Containers, TwoHosts

pytestmark = pytest.mark.e2e

SERVE = ("sh", "-c", "while true; do echo hello-from-a | nc -l -p 5000; done")


def _ping(host: Containers, container: str, address: str, v6: bool = False) -> None:
    args = ["ping", "-6"] if v6 else ["ping"]
    result = host.exec(container, *args, "-c", "2", "-W", "3", address)
    assert result.returncode == 0, f"{container} cannot ping {address}: {result.stdout}{result.stderr}"


def _tcp(host: Containers, container: str, address: str) -> str:
    return host.exec(container, "sh", "-c", f"nc -w 5 {address} 5000 </dev/null").stdout


def _neutron_network(hosts: TwoHosts, network: str) -> dict:
    full_id = hosts.a.network_id(network)
    nets = stack.neutron("GET", f"/networks?tags=kuryr.net.uuid.lh:{full_id[:32]},kuryr.net.uuid.uh:{full_id[32:]}")
    assert len(nets["networks"]) == 1, nets
    return nets["networks"][0]


def _shared_network(hosts: TwoHosts, v4: str, v6: str | None = None) -> tuple[str, str, dict]:
    """A Docker network made on host A, and the same Neutron network (and subnets) used from host B."""
    subnets = ["--subnet", v4] + (["--ipv6", "--subnet", v6] if v6 else [])
    on_a = hosts.a.network(*subnets)
    net = _neutron_network(hosts, on_a)
    by_version = {s["ip_version"]: s["id"] for s in stack.neutron("GET", f"/subnets?network_id={net['id']}")["subnets"]}
    ipam = ["--ipam-opt", f"neutron.subnet.uuid={by_version[4]}"]
    if v6:
        ipam += ["--ipam-opt", f"neutron.subnet.v6.uuid={by_version[6]}"]
    on_b = hosts.b.network(*subnets, "-o", f"neutron.net.uuid={net['id']}", *ipam)
    return on_a, on_b, net


def _port(address: str) -> dict:
    ports = stack.neutron("GET", f"/ports?fixed_ips=ip_address%3D{address}")["ports"]
    assert len(ports) == 1, ports
    return ports[0]


def _active_port(address: str, timeout: float = 15) -> dict:
    """The port of ``address`` once Neutron reports it ACTIVE (OVN's port-up event reaches Neutron a little
    after the data path forwards, which is what Join waits for)."""
    deadline = time.monotonic() + timeout
    while (port := _port(address))["status"] != "ACTIVE" and time.monotonic() < deadline:
        time.sleep(0.5)
    return port


def test_both_chassis_registered(hosts: TwoHosts) -> None:
    agents = stack.neutron("GET", "/agents?agent_type=OVN%20Controller%20agent")["agents"]
    assert {socket.gethostname(), hosts.courier2.host.name} <= {a["host"] for a in agents}, agents
    assert all(a["alive"] for a in agents if a["host"] == hosts.courier2.host.name), agents


def test_containers_on_two_hosts_ping_and_talk_tcp_v4_v6(hosts: TwoHosts) -> None:
    on_a, on_b, _ = _shared_network(hosts, "10.232.1.0/24", "fd42:232:1::/64")
    server = hosts.a.run("--net", on_a, command=SERVE)
    t0 = time.monotonic()
    client = hosts.b.run("--net", on_b)
    print(f"docker run -d on host B: {time.monotonic() - t0:.2f} s")
    server_ip, client_ip = hosts.a.ip(server, on_a), hosts.b.ip(client, on_b)
    server_v6, client_v6 = hosts.a.ip(server, on_a, v6=True), hosts.b.ip(client, on_b, v6=True)
    for address, host_id in ((server_ip, socket.gethostname()), (client_ip, hosts.courier2.host.name)):
        port = _active_port(address)
        assert port["binding:host_id"] == host_id and port["status"] == "ACTIVE", port
        assert len(port["fixed_ips"]) == 2, "one port carries both families"
    _ping(hosts.b, client, server_ip)
    rtt = hosts.b.exec(client, "ping", "-c", "10", "-i", "0.2", server_ip).stdout
    print("ping B -> A over Geneve:", re.findall(r"min/avg/max = \S+", rtt))
    _ping(hosts.a, server, client_ip)
    _ping(hosts.b, client, server_v6, v6=True)
    _ping(hosts.a, server, client_v6, v6=True)
    assert "hello-from-a" in _tcp(hosts.b, client, server_ip)
    assert "hello-from-a" in _tcp(hosts.b, client, server_v6)


def test_each_courier_touches_only_its_own_host(hosts: TwoHosts) -> None:
    on_a, on_b, net = _shared_network(hosts, "10.232.2.0/24")
    a1, a2 = hosts.a.run("--net", on_a), hosts.a.run("--net", on_a)
    b1 = hosts.b.run("--net", on_b)
    ips = {"a1": hosts.a.ip(a1, on_a), "a2": hosts.a.ip(a2, on_a), "b1": hosts.b.ip(b1, on_b)}

    def ports_by_host() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for p in stack.neutron("GET", f"/ports?network_id={net['id']}")["ports"]:
            if p["device_owner"] != "network:distributed":
                found.setdefault(p["binding:host_id"], set()).add(p["id"])
        return found

    before = ports_by_host()
    assert set(before) == {socket.gethostname(), hosts.courier2.host.name}, before
    # gc on either host removes nothing: every port is in use by its own host's Docker, or the other host's
    gc_b = hosts.courier2.cli("gc", "--docker-host", hosts.courier2.host.docker_host, "--min-age", "0", "--json")
    assert gc_b.returncode == 0, gc_b.stdout + gc_b.stderr
    assert json.loads(gc_b.stdout)["leftovers"] == []
    assert ports_by_host() == before
    status_b = json.loads(hosts.courier2.cli("status", "--docker-host", hosts.courier2.host.docker_host,
                                             "--json").stdout)
    listed = json.dumps(status_b)
    assert ips["b1"] in listed and ips["a1"] not in listed and ips["a2"] not in listed
    # host B's pools drained (Courier stopped): only host B's idle ports go, host A's pool and containers stay
    hosts.courier2.stop()
    drained = hosts.courier2.cli("gc", "--docker-host", hosts.courier2.host.docker_host, "--min-age", "0",
                                 "--drain-pools", "--json")
    hosts.courier2.start()
    assert drained.returncode == 0, drained.stdout + drained.stderr
    after = ports_by_host()
    assert after[socket.gethostname()] == before[socket.gethostname()]
    assert _port(ips["b1"])["id"] in after[hosts.courier2.host.name]
    # the Docker network removed on host B: host A's containers still reach each other
    hosts.b.cleanup()
    _ping(hosts.a, a1, ips["a2"])
    assert stack.neutron("GET", f"/networks/{net['id']}")["network"]["id"] == net["id"]
    assert all(_active_port(ips[n])["status"] == "ACTIVE" for n in ("a1", "a2"))


def test_security_groups_hold_across_hosts(hosts: TwoHosts) -> None:
    on_a, on_b, _ = _shared_network(hosts, "10.232.3.0/24")
    server = hosts.a.run("--net", on_a, command=SERVE)
    member, outsider = hosts.b.run("--net", on_b), hosts.b.run("--net", on_b)
    server_ip = hosts.a.ip(server, on_a)
    groups = []
    try:
        for name in ("members", "outsiders"):
            group = stack.neutron("POST", "/security-groups", {"security_group": {"name": f"mh-{hosts.a.tag}-{name}"}})
            groups.append(group["security_group"])
        members, outsiders = groups
        stack.neutron("POST", "/security-group-rules", {"security_group_rule": {
            "security_group_id": members["id"], "direction": "ingress", "ethertype": "IPv4",
            "remote_group_id": members["id"]}})
        for container, group in ((server, members), (member, members), (outsider, outsiders)):
            docker = hosts.a if container == server else hosts.b
            port = _port(docker.ip(container, on_a if docker is hosts.a else on_b))
            stack.neutron("PUT", f"/ports/{port['id']}", {"port": {"security_groups": [group["id"]]}})
        time.sleep(1)  # ovn-northd and both ovn-controllers apply the ACLs
        _ping(hosts.b, member, server_ip)
        assert "hello-from-a" in _tcp(hosts.b, member, server_ip)
        blocked = hosts.b.exec(outsider, "ping", "-c", "2", "-W", "2", server_ip)
        assert blocked.returncode != 0, f"a port outside the group reached host A's container: {blocked.stdout}"
        assert "hello-from-a" not in hosts.b.exec(outsider, "sh", "-c", f"nc -w 3 {server_ip} 5000 </dev/null").stdout
    finally:
        hosts.b.cleanup()
        hosts.a.cleanup()
        for group in groups:
            stack.neutron("DELETE", f"/security-groups/{group['id']}")


def test_network_removed_on_creating_host_keeps_other_host_working(hosts: TwoHosts) -> None:
    on_a, on_b, net = _shared_network(hosts, "10.232.4.0/24")
    hosts.a.run("--net", on_a)
    b1, b2 = hosts.b.run("--net", on_b), hosts.b.run("--net", on_b)
    hosts.a.cleanup()  # host A's container and Docker network go; host B's containers still use the network
    _ping(hosts.b, b1, hosts.b.ip(b2, on_b))
    assert all(_active_port(hosts.b.ip(c, on_b))["status"] == "ACTIVE" for c in (b1, b2))
    hosts.b.cleanup()
    # the Neutron network host A made outlived its Docker network while host B used it: A's gc removes it now
    gc_a = subprocess.run([sys.executable, "-m", "courier.cli", "gc", "--config-file", str(hosts.courier1.config),
                           "--docker-host", stack.DOCKER_HOST, "--min-age", "0", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert gc_a.returncode == 0, gc_a.stdout + gc_a.stderr
    assert not stack.neutron("GET", f"/networks?id={net['id']}")["networks"]
