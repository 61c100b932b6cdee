"""Docker -> Courier -> Neutron/OVN, for real: networks, containers, traffic, and nothing left after."""

from __future__ import annotations

import time

import pytest

from tests import stack
from tests.e2e.conftest import Courier, DockerSession

pytestmark = pytest.mark.e2e


def _ping(dk: DockerSession, container: str, address: str, v6: bool = False) -> None:
    args = ["ping", "-6"] if v6 else ["ping"]
    result = dk.exec(container, *args, "-c", "2", "-W", "3", address, check=False)
    assert result.returncode == 0, f"{container} cannot ping {address}: {result.stdout}{result.stderr}"


def _neutron_network(docker_network: str) -> dict:
    full_id = stack.docker("network", "inspect", "-f", "{{.Id}}", docker_network).stdout.strip()
    nets = stack.neutron("GET", f"/networks?tags=kuryr.net.uuid.lh:{full_id[:32]},kuryr.net.uuid.uh:{full_id[32:]}")
    assert len(nets["networks"]) == 1, nets
    return nets["networks"][0]


def test_network_create_maps_to_neutron(dk: DockerSession) -> None:
    name = dk.network("--subnet", "10.231.1.0/24")
    net = _neutron_network(name)
    subnets = stack.neutron("GET", f"/subnets?network_id={net['id']}")["subnets"]
    assert [s["cidr"] for s in subnets] == ["10.231.1.0/24"]
    assert subnets[0]["gateway_ip"] == "10.231.1.1"
    pool = stack.neutron("GET", f"/subnetpools/{subnets[0]['subnetpool_id']}")["subnetpool"]
    assert pool["name"] == "kuryrPool-10.231.1.0/24"


def test_two_containers_ping_and_talk_tcp(dk: DockerSession) -> None:
    net = dk.network("--subnet", "10.231.2.0/24")
    server = dk.run("--net", net, command=("sh", "-c", "echo courier-says-hi | nc -l -p 5000"))
    client = dk.run("--net", net)
    server_ip = dk.ip(server, net)
    _ping(dk, client, server_ip)
    _ping(dk, server, dk.ip(client, net))
    reply = dk.exec(client, "sh", "-c", f"nc -w 5 {server_ip} 5000 </dev/null", check=False)
    assert "courier-says-hi" in reply.stdout, reply
    port = stack.neutron("GET", f"/ports?fixed_ips=ip_address%3D{server_ip}")["ports"][0]
    assert port["status"] == "ACTIVE"
    assert port["binding:vif_type"] == "ovs"
    assert port["device_owner"] == "compute:kuryr"


def test_network_without_subnet_takes_prefix_from_default_pool(dk: DockerSession) -> None:
    first, second = dk.network(), dk.network()
    cidrs = []
    for name in (first, second):
        net = _neutron_network(name)
        subnet = stack.neutron("GET", f"/subnets?network_id={net['id']}")["subnets"][0]
        cidrs.append(subnet["cidr"])
        assert subnet["cidr"].startswith("10.210."), subnet
    assert cidrs[0] != cidrs[1]
    c1, c2 = dk.run("--net", first), dk.run("--net", first)
    _ping(dk, c1, dk.ip(c2, first))


def test_connect_and_disconnect(dk: DockerSession) -> None:
    a, b = dk.network("--subnet", "10.231.3.0/24"), dk.network("--subnet", "10.231.4.0/24")
    c1, c2 = dk.run("--net", a), dk.run("--net", b)
    stack.docker("network", "connect", b, c1)
    _ping(dk, c1, dk.ip(c2, b))
    stack.docker("network", "disconnect", b, c1)
    assert dk.ip(c1, a)
    stack.neutron("GET", "/ports")  # Neutron still answers; the leak check verifies the disconnect cleaned up


def test_fixed_ip_and_mac(dk: DockerSession) -> None:
    net = dk.network("--subnet", "10.231.5.0/24")
    c = dk.run("--net", net, "--ip", "10.231.5.77", "--mac-address", "02:aa:bb:cc:dd:ee", cli=stack.DEBIAN_CLI)
    port = stack.neutron("GET", "/ports?fixed_ips=ip_address%3D10.231.5.77")["ports"]
    assert len(port) == 1 and port[0]["mac_address"] == "02:aa:bb:cc:dd:ee"
    other = dk.run("--net", net)
    _ping(dk, other, "10.231.5.77")
    assert "02:aa:bb:cc:dd:ee" in dk.exec(c, "ip", "link", "show", "eth0").stdout


def test_ipv6_dual_stack(dk: DockerSession) -> None:
    net = dk.network("--ipv6", "--subnet", "10.231.6.0/24", "--subnet", "fd42:231:6::/64")
    c1, c2 = dk.run("--net", net), dk.run("--net", net)
    v6 = dk.ip(c2, net, v6=True)
    assert v6.startswith("fd42:231:6:")
    ports = stack.neutron("GET", f"/ports?fixed_ips=ip_address%3D{v6}")["ports"]
    assert len(ports) == 1 and len(ports[0]["fixed_ips"]) == 2, "one port carries both addresses"
    _ping(dk, c1, dk.ip(c2, net))
    _ping(dk, c1, v6, v6=True)


def test_existing_neutron_network_is_used_and_kept(dk: DockerSession) -> None:
    net = stack.neutron("POST", "/networks", {"network": {"name": "courier-e2e-existing"}})["network"]
    try:
        subnet = stack.neutron("POST", "/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.231.7.0/24",
                                                               "ip_version": 4}})["subnet"]
        name = dk.network("--subnet", "10.231.7.0/24", "-o", f"neutron.net.uuid={net['id']}")
        c1, c2 = dk.run("--net", name), dk.run("--net", name)
        _ping(dk, c1, dk.ip(c2, name))
        dk.cleanup()
        dk.containers.clear()
        dk.networks.clear()
        kept = stack.neutron("GET", f"/networks/{net['id']}")["network"]
        assert kept["subnets"] == [subnet["id"]]
        assert not [t for t in kept["tags"] if t.startswith("kuryr.")], kept["tags"]
    finally:
        stack.neutron("DELETE", f"/networks/{net['id']}")


def test_precreated_port_is_adopted_and_given_back(dk: DockerSession) -> None:
    name = dk.network("--subnet", "10.231.8.0/24")
    net = _neutron_network(name)
    port = stack.neutron("POST", "/ports", {"port": {"network_id": net["id"], "name": "precreated",
                                                     "fixed_ips": [{"ip_address": "10.231.8.50"}]}})["port"]
    try:
        c = dk.run("--net", name, "--ip", "10.231.8.50")
        peer = dk.run("--net", name)
        _ping(dk, peer, "10.231.8.50")
        stack.docker("rm", "-f", c)
        dk.containers.remove(c)
        back = stack.neutron("GET", f"/ports/{port['id']}")["port"]
        assert back["device_owner"] == "" and back["device_id"] == "" and back["binding:host_id"] == ""
        assert back["mac_address"] == port["mac_address"] and back["name"] == "precreated"
        assert not [t for t in back["tags"] if t.startswith(("kuryr.", "courier."))], back["tags"]
    finally:
        stack.neutron("DELETE", f"/ports/{port['id']}")


def test_courier_restarted_between_network_create_and_run(dk: DockerSession, courier: Courier) -> None:
    net = dk.network("--subnet", "10.231.9.0/24")
    courier.restart()
    c1 = dk.run("--net", net)
    courier.restart()
    c2 = dk.run("--net", net)
    _ping(dk, c1, dk.ip(c2, net))


# --- bad input: a clear error in docker's output, nothing half-created -----------------------------------------


def _fails(*args: str) -> str:
    result = stack.docker(*args, check=False)
    assert result.returncode != 0, f"docker {' '.join(args)} unexpectedly succeeded"
    return result.stderr


def test_address_in_use_is_refused(dk: DockerSession) -> None:
    net = dk.network("--subnet", "10.231.10.0/24")
    dk.run("--net", net, "--ip", "10.231.10.9")
    err = _fails("run", "--rm", "--net", net, "--ip", "10.231.10.9", stack.IMAGE, "true")
    assert "10.231.10.9" in err and "in use" in err


def test_exhausted_pool_is_refused(dk: DockerSession) -> None:
    net = dk.network("--subnet", "10.231.11.0/29")  # 8 addresses: gateway + 5 for containers
    for _ in range(5):
        dk.run("--net", net)
    err = _fails("run", "--rm", "--net", net, stack.IMAGE, "true")
    assert "RequestAddress" in err and ("exhausted" in err.lower() or "no more" in err.lower()
                                        or "available" in err.lower()), err


def test_unknown_neutron_network_is_refused(dk: DockerSession) -> None:
    err = _fails("network", "create", "-d", "kuryr", "--ipam-driver", "kuryr", "--subnet", "10.231.12.0/24",
                 "-o", "neutron.net.uuid=00000000-0000-0000-0000-000000000000", f"ct-{dk.tag}-bad")
    assert "00000000-0000-0000-0000-000000000000" in err and "does not exist" in err


def test_invalid_shared_option_is_refused(dk: DockerSession) -> None:
    err = _fails("network", "create", "-d", "kuryr", "--ipam-driver", "kuryr", "--subnet", "10.231.13.0/24",
                 "-o", "neutron.net.shared=maybe", f"ct-{dk.tag}-bad")
    assert "neutron.net.shared" in err


def test_neutron_unreachable_gives_clear_error(dk: DockerSession, tmp_path) -> None:
    dead = Courier(tmp_path, driver_name="kuryr-dead", endpoint="http://127.0.0.1:9")
    dead.start()
    try:
        started = time.monotonic()
        err = _fails("network", "create", "-d", "kuryr-dead", "--ipam-driver", "kuryr-dead",
                     "--subnet", "10.231.14.0/24", f"ct-{dk.tag}-dead")
        assert "unreachable" in err.lower(), err
        assert time.monotonic() - started < 20
    finally:
        dead.stop()
