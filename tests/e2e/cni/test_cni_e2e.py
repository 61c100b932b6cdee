"""courier-cni on the real stack: namespaces as pods get Neutron ports through OVN, cold and from the warm pool."""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from tests import stack
from tests.e2e.cni.conftest import PodNetwork, cni, pod_id
from tests.e2e.conftest import DockerSession

pytestmark = [__import__("pytest").mark.e2e]


def in_ns(netns: str, *command: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *command], capture_output=True, text=True, check=check,
                          timeout=timeout)


def ping_once(netns: str, address: str) -> bool:
    return in_ns(netns, "ping", "-c1", "-W2", address, check=False).returncode == 0


def add(pods: PodNetwork, args: str = "") -> tuple[str, str, dict]:
    netns, container = pods.namespace(), pod_id()
    code, result = cni("ADD", pods.config(), f"/run/netns/{netns}", container, args=args)
    assert code == 0, result
    return netns, container, result


def address_of(result: dict) -> str:
    return result["ips"][0]["address"].split("/")[0]


def test_two_pods_ping_at_once_and_del_leaves_nothing(pods: PodNetwork) -> None:
    a_ns, a_id, a = add(pods)
    b_ns, b_id, b = add(pods)

    port = stack.neutron("GET", f"/ports?fixed_ips=ip_address%3D{address_of(a)}&network_id={pods.id}")["ports"][0]
    assert port["mac_address"] == a["interfaces"][0]["mac"] and port["binding:host_id"]
    shown = in_ns(a_ns, "ip", "-o", "addr", "show", "eth0").stdout
    assert a["ips"][0]["address"] in shown
    assert "default via 10.77.0.1" in in_ns(a_ns, "ip", "route").stdout
    # the first packet each way goes through: no retry
    assert ping_once(a_ns, address_of(b)) and ping_once(b_ns, address_of(a))
    server = subprocess.Popen(["ip", "netns", "exec", b_ns, "python3", "-c",
                               "import socket; s=socket.create_server(('0.0.0.0', 7777)); c,_=s.accept(); "
                               "c.sendall(c.recv(100).upper())"])
    try:
        time.sleep(0.3)
        reply = in_ns(a_ns, "python3", "-c", f"import socket; c=socket.create_connection(('{address_of(b)}', 7777), "
                      "5); c.sendall(b'over ovn'); print(c.recv(100).decode())").stdout
    finally:
        server.wait(timeout=10)
    assert reply.strip() == "OVER OVN"

    for ns, container in ((a_ns, a_id), (b_ns, b_id)):
        assert cni("CHECK", pods.config(prevResult=a if ns == a_ns else b), f"/run/netns/{ns}", container)[0] == 0
        assert cni("DEL", pods.config(), f"/run/netns/{ns}", container) == (0, {})
        assert cni("DEL", pods.config(), f"/run/netns/{ns}", container) == (0, {})  # idempotent
        assert "eth0" not in in_ns(ns, "ip", "-o", "link").stdout


def test_del_after_the_namespace_is_gone(pods: PodNetwork) -> None:
    netns, container, _ = add(pods)
    subprocess.run(["ip", "netns", "del", netns], check=True)
    assert cni("DEL", pods.config(), f"/run/netns/{netns}", container) == (0, {})


def test_static_ip_and_address_in_use(pods: PodNetwork) -> None:
    netns, container, result = add(pods, args="IgnoreUnknown=1;IP=10.77.0.200")
    assert result["ips"][0]["address"] == "10.77.0.200/24"
    other_ns = pods.namespace()
    code, error = cni("ADD", pods.config(), f"/run/netns/{other_ns}", pod_id(), args="IP=10.77.0.200")
    assert code == 1 and error["code"] == 100 and "10.77.0.200" in error["msg"]
    assert "eth0" not in in_ns(other_ns, "ip", "-o", "link").stdout
    assert cni("DEL", pods.config(), f"/run/netns/{netns}", container) == (0, {})


def test_twenty_adds_at_once(pods: PodNetwork) -> None:
    spaces = [(pods.namespace(), pod_id()) for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda s: cni("ADD", pods.config(), f"/run/netns/{s[0]}", s[1]), spaces))
    assert all(code == 0 for code, _ in results), [r for c, r in results if c]
    addresses = [address_of(r) for _, r in results]
    assert len(set(addresses)) == 20
    assert ping_once(spaces[0][0], addresses[-1]) and ping_once(spaces[-1][0], addresses[0])
    with ThreadPoolExecutor(20) as pool:
        deleted = list(pool.map(lambda s: cni("DEL", pods.config(), f"/run/netns/{s[0]}", s[1]), spaces))
    assert all(d == (0, {}) for d in deleted)


def test_a_pod_reaches_a_docker_container_on_the_same_neutron_network(dk: DockerSession, pods: PodNetwork) -> None:
    """Docker's side (the session's Courier) and CNI's (this module's) on one Neutron network; ``dk`` first, so
    that its leak check runs after the pod network and its warm pool are gone."""
    net = dk.network("-o", f"neutron.net.uuid={pods.id}", "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.1")
    container = dk.run("--net", net)
    docker_ip = dk.ip(container, net)
    netns, pod, _ = add(pods)
    assert ping_once(netns, docker_ip)
    assert cni("DEL", pods.config(), f"/run/netns/{netns}", pod) == (0, {})
    stack.docker("rm", "-f", container)
    dk.containers.remove(container)
    stack.docker("network", "rm", net)
    dk.networks.remove(net)
