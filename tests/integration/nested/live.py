"""A simulated Nova VM for the nested tests: real Neutron ports, plugged into the real br-int, and namespaces.

The VM is a network namespace whose ``eth0`` is a veth whose other end is in br-int with the VM port's
``iface-id``, exactly as Nova/os-vif would plug a VM's tap. Courier's nested code then runs against that
namespace (``[courier] nested_netns``), and containers are further namespaces whose devices Courier made on
the VM's ``eth0``. Everything is named ``cn<hex>`` and removed after each test, even when it fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from oslo_config import cfg

from courier.config import options
from courier.neutron.api import Neutron
from courier.neutron.connection import connect
from tests import stack

HOST = socket.gethostname()
PROBE = Path(__file__).with_name("probe.py")
NEUTRON_CONF = Path("/var/lib/courier-stack/etc/neutron/neutron.conf")


def run(*argv: str, check: bool = True) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


def in_ns(ns: str, *argv: str, check: bool = True) -> str:
    return run("ip", "netns", "exec", ns, *argv, check=check)


def require_stack() -> None:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    ovs = subprocess.run(["ovs-vsctl", "--timeout=5", "br-exists", "br-int"], capture_output=True, check=False)
    stack.require("OVS with br-int", ovs.returncode == 0)


def kernel_lacks(kind: str, module: str) -> str | None:
    """Why ``kind`` devices cannot be made here (the skip reason), or None if they can: tried, not guessed."""
    ns = f"cnk{uuid.uuid4().hex[:8]}"
    run("ip", "netns", "add", ns)
    try:
        in_ns(ns, "ip", "link", "add", "lower", "type", "veth", "peer", "name", "lower-peer")
        extra = {"vlan": ["id", "5"], "ipvlan": ["mode", "l2"], "macvlan": ["mode", "bridge"]}[kind]
        result = subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "add", "link", "lower", "name", "probe",
                                 "type", kind, *extra], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return None
        article = "an" if kind[0] in "aeiou" else "a"
        return f"kernel has no {module} module: creating {article} {kind} device fails ({result.stderr.strip()})"
    finally:
        run("ip", "netns", "del", ns, check=False)


def real_neutron() -> Neutron:
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf([])
    conf.set_override("neutron_timeout", 60.0, group="courier")
    conf.set_override("auth_type", "none", group="neutron")
    options.ks_loading.load_auth_from_conf_options(conf, "neutron")
    conf.set_override("endpoint", stack.NEUTRON_URL, group="neutron")
    return Neutron(connect(conf))


def max_address_pairs() -> int:
    """Neutron's [DEFAULT] max_allowed_address_pair as the local stack runs it (Neutron's default: 10)."""
    try:
        for line in NEUTRON_CONF.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "max_allowed_address_pair":
                return int(value.strip())
    except OSError:
        pass
    return 10


class Lab:
    """Neutron resources, OVS ports and namespaces of one test; ``cleanup()`` removes them all."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.created: list[tuple[str, str]] = []
        self.namespaces: list[str] = []
        self.host_ifs: list[str] = []
        self.dockers: list[Any] = []

    # --- Neutron (raw REST: independent of the code under test) ---------------------------------------------

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return stack.neutron(method, path, body)

    def create(self, kind: str, **attrs: Any) -> dict[str, Any]:
        resource: dict[str, Any] = self.call("POST", f"/{kind}s", {kind: attrs})[kind]
        self.created.append((kind, resource["id"]))
        return resource

    def get(self, kind: str, resource_id: str) -> dict[str, Any]:
        return self.call("GET", f"/{kind}s/{resource_id}")[kind]

    def ports(self, network_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/ports?network_id={network_id}")["ports"]

    def network(self, cidr: str) -> tuple[dict[str, Any], dict[str, Any]]:
        net = self.create("network", name=f"cnest-{self.tag}")
        subnet = self.create("subnet", network_id=net["id"], cidr=cidr, ip_version=4, enable_dhcp=False,
                             name=f"cnest-{self.tag}")
        return net, subnet

    def wait_status(self, port_id: str, status: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        current = self.get("port", port_id)["status"]
        while current != status and time.monotonic() < deadline:
            time.sleep(0.2)
            current = self.get("port", port_id)["status"]
        return current

    # --- namespaces plugged into br-int --------------------------------------------------------------------

    def namespace(self, role: str) -> str:
        name = f"cn{self.tag}{role}"
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        in_ns(name, "ip", "link", "set", "lo", "up")
        return name

    def plugged(self, role: str, port: dict[str, Any], prefixlen: int) -> str:
        """A namespace whose eth0 is ``port`` on br-int (bound to this host first, as Nova does)."""
        ns = self.namespace(role)
        host_if = f"cn{self.tag}{role}"[:15]
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", host_if[:12] + "-ns")
        self.host_ifs.append(host_if)
        Path(f"/proc/sys/net/ipv6/conf/{host_if}/disable_ipv6").write_text("1")
        Path(f"/proc/sys/net/ipv4/conf/{host_if}/arp_ignore").write_text("8")
        run("ip", "link", "set", host_if[:12] + "-ns", "netns", ns)
        in_ns(ns, "ip", "link", "set", host_if[:12] + "-ns", "name", "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "address", port["mac_address"])
        in_ns(ns, "ip", "addr", "add", f"{port['fixed_ips'][0]['ip_address']}/{prefixlen}", "dev", "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        run("ip", "link", "set", host_if, "up")
        run("ovs-vsctl", "--timeout=10", "add-port", "br-int", host_if, "--", "set", "Interface", host_if,
            f"external_ids:iface-id={port['id']}", f"external_ids:attached-mac={port['mac_address']}",
            "external_ids:iface-status=active")
        return ns

    def vm(self, cidr: str, *, trunk: bool) -> Vm:
        net, subnet = self.network(cidr)
        port = self.create("port", network_id=net["id"], name=f"cnest-{self.tag}-vm",
                           device_owner="compute:nova", **{"binding:host_id": HOST})
        trunk_id = self.create("trunk", port_id=port["id"], name=f"cnest-{self.tag}")["id"] if trunk else None
        ns = self.plugged("vm", port, int(cidr.split("/")[1]))
        assert self.wait_status(port["id"], "ACTIVE") == "ACTIVE"
        return Vm(self, net, subnet, port, trunk_id, ns)

    def probe(self, ns: str, requests: list[dict[str, Any]], timeout: float = 3.0) -> list[dict[str, Any]]:
        out = in_ns(ns, sys.executable, str(PROBE), "eth0", str(timeout), json.dumps(requests))
        return json.loads(out)

    def track(self, docker: Any) -> Any:
        """A tests.unit.dockerd.Dockerd over real Neutron: what its networks left is removed in cleanup()."""
        self.dockers.append(docker)
        return docker

    def cleanup(self) -> None:
        problems = []
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        for host_if in self.host_ifs:
            subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-port", "br-int", host_if],
                           capture_output=True, check=False)
            subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        for kind, resource_id in self.created:
            if kind == "trunk":
                try:
                    trunk = self.get("trunk", resource_id)
                except urllib.error.HTTPError:
                    continue
                if trunk["sub_ports"]:
                    problems.append(f"trunk {resource_id} still has subports {trunk['sub_ports']}")
                    self.call("PUT", f"/trunks/{resource_id}/remove_subports",
                              {"sub_ports": [{"port_id": s["port_id"]} for s in trunk["sub_ports"]]})
        leftovers: list[tuple[str, str]] = []
        for docker in self.dockers:  # Docker networks a failed test did not remove
            state = docker.plugin.state
            leftovers += [("network", rec.network.id) for rec in state.networks.values() if not rec.existing]
            leftovers += [("subnetpool", rec.subnetpool_id) for rec in state.pools.values() if rec.dedicated]
            try:
                docker.close()
            except Exception as exc:
                problems.append(f"closing Courier: {exc}")
        for kind, resource_id in [*reversed(self.created), *leftovers]:
            try:
                if kind == "network":
                    for port in self.ports(resource_id):  # whatever a failed test left on it
                        self.call("DELETE", f"/ports/{port['id']}")
                self.call("DELETE", f"/{kind}s/{resource_id}")
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    problems.append(f"{kind} {resource_id}: {exc}")
        if problems:
            raise AssertionError("nested test left things behind: " + "; ".join(problems))


class Vm:
    def __init__(self, lab: Lab, net: dict[str, Any], subnet: dict[str, Any], port: dict[str, Any],
                 trunk_id: str | None, ns: str):
        self.lab, self.net, self.subnet, self.port, self.trunk_id, self.ns = lab, net, subnet, port, trunk_id, ns

    def fresh_port(self) -> dict[str, Any]:
        return self.lab.get("port", self.port["id"])

    def subports(self) -> dict[str, int]:
        assert self.trunk_id is not None
        return {s["port_id"]: s["segmentation_id"] for s in self.lab.get("trunk", self.trunk_id)["sub_ports"]}

    def conf(self, driver: str, **overrides: Any) -> cfg.ConfigOpts:
        """Courier's configuration inside this VM: nested, link_iface eth0 in the VM's namespace."""
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        conf([])
        values: dict[str, Any] = {"deployment_type": "nested", "binding__driver": f"kuryr.lib.binding.drivers.{driver}",
                                  "binding__link_iface": "eth0", "courier__nested_netns": self.ns,
                                  "binding__host_id": HOST,
                                  # the shared test machine's Neutron can take long over trunk changes
                                  "courier__neutron_timeout": 60.0, **overrides}
        for key, value in values.items():
            group, _, name = key.rpartition("__")
            conf.set_override(name, value, group=group or None)
        return conf


def move_into(src_ns: str, ifname: str, ns: str, address: str) -> None:
    """What Docker does with Join's SrcName: move it into the sandbox, rename, address, up."""
    in_ns(src_ns, "ip", "link", "set", ifname, "netns", ns)
    in_ns(ns, "ip", "link", "set", ifname, "name", "eth0")
    in_ns(ns, "ip", "addr", "add", address, "dev", "eth0")
    in_ns(ns, "ip", "link", "set", "eth0", "up")


def ping(ns: str, address: str, count: int = 3) -> bool:
    result = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", str(count), "-i", "0.2", "-W", "2", address],
                            capture_output=True, text=True, check=False, timeout=60)
    return result.returncode == 0


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and OVS")
