"""tests/podman.py's isolated podman (CNI backend) with the fake plugin: what podman 4.3 sends a CNI plugin,
and that the harness leaves nothing on the host (no links, no netns, no mounts, no CNI cache, no processes)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import podman as podman_mod
from tests import testkit
from tests.podman import Podman

pytestmark = pytest.mark.cni

FAKE_CNI = Path(__file__).with_name("fake_cni.py")
IMAGE = "localhost/busybox:local"
RESULT = {"interfaces": [{"name": "eth0", "mac": "02:00:00:00:00:05", "sandbox": "netns"}],
          "ips": [{"address": "10.99.0.5/24", "gateway": "10.99.0.1", "interface": 0}]}
HOST_LINK_KINDS = re.compile(r"^(cni-podman|veth|podman)")  # what podman's default CNI bridge would create


def _netns() -> set[str]:
    return {n for n in os.listdir(podman_mod.NETNS_DIR) if n.startswith("netns-")} \
        if podman_mod.NETNS_DIR.exists() else set()


@pytest.fixture(scope="module")
def pm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    podman_mod.require()
    work = tmp_path_factory.mktemp("podman")
    plugins = work / "plugins"
    podman_mod.install_plugin(FAKE_CNI, plugins, "fake-cni")
    links, netns = testkit.host_links(), _netns()
    pm = Podman(work / "podman", [plugins])
    try:
        pm.import_image(IMAGE)
        yield pm
    finally:
        pm.cleanup()
    assert pm.leftovers() == []
    assert _netns() - netns == set()
    assert {link for link in testkit.host_links() - links if HOST_LINK_KINDS.match(link)} == set()


class Calls:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir

    def all(self) -> list[dict]:
        path = self.log_dir / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def commands(self) -> list[str]:
        return [c["env"]["CNI_COMMAND"] for c in self.all()]


@pytest.fixture
def net(pm: Podman, tmp_path: Path) -> Iterator[tuple[str, Calls]]:
    """A network ``testnet`` whose fake plugin logs to this test's tmp dir; no container left after."""
    name = "testnet"
    calls = Calls(tmp_path / "cni-log")
    pm.write_network(name, {"type": "fake-cni", "logDir": str(calls.log_dir), "result": RESULT})
    yield name, calls
    pm.run("rm", "--all", "--force", "--time", "0")
    pm.remove_network(name)


def test_run_rm_sends_add_then_del(pm: Podman, net: tuple[str, Calls]) -> None:
    name, calls = net
    t0 = time.monotonic()
    pm.run("run", "--rm", "--name", "c-rm", "--network", name, IMAGE, "true")
    elapsed = time.monotonic() - t0
    add, delete = calls.all()
    assert [add["env"]["CNI_COMMAND"], delete["env"]["CNI_COMMAND"]] == ["ADD", "DEL"]
    env = add["env"]
    assert re.fullmatch(r"[0-9a-f]{64}", env["CNI_CONTAINERID"])
    assert re.fullmatch(r"/run/netns/netns-[0-9a-f-]{36}", env["CNI_NETNS"])
    assert env["CNI_IFNAME"] == "eth0"
    assert env["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=c-rm"
    assert env["CNI_PATH"].split(":") == [*map(str, pm.plugin_dirs), "/usr/lib/cni"]
    assert delete["env"] == {**env, "CNI_COMMAND": "DEL"}
    # stdin: the plugin's entry plus the conflist's name and cniVersion; no runtimeConfig without capabilities
    assert add["stdin"] == {"cniVersion": "1.0.0", "name": name, "type": "fake-cni",
                            "logDir": str(calls.log_dir), "result": RESULT}
    assert delete["stdin"]["prevResult"] == {"cniVersion": "1.0.0", "dns": {}, **RESULT}
    assert add["netns_exists"] and delete["netns_exists"]  # DEL comes before podman removes the netns
    assert elapsed < 10, elapsed


def test_detached_inspect_static_ip_and_capabilities(pm: Podman, net: tuple[str, Calls], tmp_path: Path) -> None:
    name, calls = net
    pm.write_network(name, {"type": "fake-cni", "logDir": str(calls.log_dir), "result": RESULT,
                            "capabilities": {"ips": True, "mac": True, "portMappings": True, "aliases": True}})
    pm.run("run", "-d", "--name", "c-ip", "--network", name, "--ip", "10.99.0.7",
           "--mac-address", "02:11:22:33:44:55", "--network-alias", "web", IMAGE, "sleep", "600")
    info = pm.inspect("c-ip")
    netinfo = info["NetworkSettings"]["Networks"][name]
    assert (netinfo["IPAddress"], netinfo["IPPrefixLen"], netinfo["Gateway"], netinfo["MacAddress"]) == \
        ("10.99.0.5", 24, "10.99.0.1", "02:00:00:00:00:05")  # the plugin's result, not --ip: podman trusts it
    (add,) = calls.all()
    # one --ip and --mac-address travel in CNI_ARGS (even with the ips/mac capabilities declared) ...
    assert add["env"]["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=c-ip;MAC=02:11:22:33:44:55;IP=10.99.0.7"
    assert add["stdin"]["runtimeConfig"] == {"aliases": {name: ["web", info["Id"][:12]]}}
    assert info["NetworkSettings"]["SandboxKey"] == add["env"]["CNI_NETNS"]
    pm.run("rm", "-f", "-t", "0", "c-ip")
    assert calls.commands() == ["ADD", "DEL"]
    # ... more than one static IP only as runtimeConfig.ips (dropped unless the plugin declares "ips")
    pm.run("run", "-d", "--name", "c-ips", "--network", f"{name}:ip=10.99.0.8,ip=10.99.0.9,interface_name=net7",
           IMAGE, "sleep", "600")
    add = calls.all()[2]
    assert add["env"]["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=c-ips"
    assert add["env"]["CNI_IFNAME"] == "net7"
    assert add["stdin"]["runtimeConfig"]["ips"] == ["10.99.0.8", "10.99.0.9"]


def test_stop_start_gives_del_then_add_in_a_new_netns(pm: Podman, net: tuple[str, Calls]) -> None:
    name, calls = net
    pm.run("run", "-d", "--name", "c-life", "--network", name, IMAGE, "sleep", "600")
    pm.run("stop", "-t", "0", "c-life")
    pm.run("start", "c-life")
    pm.run("rm", "-f", "-t", "0", "c-life")
    seen = calls.all()
    assert calls.commands() == ["ADD", "DEL", "ADD", "DEL"]  # podman 4.3 never sends CHECK
    assert all(c["netns_exists"] for c in seen)
    assert seen[0]["env"]["CNI_NETNS"] == seen[1]["env"]["CNI_NETNS"] != seen[2]["env"]["CNI_NETNS"]


def test_result_with_ip_but_no_interface_runs_without_ip(pm: Podman, net: tuple[str, Calls]) -> None:
    name, calls = net
    pm.write_network(name, {"type": "fake-cni", "logDir": str(calls.log_dir),
                            "result": {"ips": [{"address": "10.99.0.5/24"}]}})
    pm.run("run", "-d", "--name", "c-noif", "--network", name, IMAGE, "sleep", "600")
    assert pm.inspect("c-noif")["NetworkSettings"]["Networks"][name]["IPAddress"] == ""
    assert pm.run("exec", "c-noif", "ip", "-o", "link").stdout.strip().count("\n") == 0  # lo only, and podman set it up
    assert ",UP," in pm.run("exec", "c-noif", "ip", "-o", "link", "show", "lo").stdout


def test_container_interface_without_mac_fails_run(pm: Podman, net: tuple[str, Calls]) -> None:
    name, calls = net
    pm.write_network(name, {"type": "fake-cni", "logDir": str(calls.log_dir),
                            "result": {"interfaces": [{"name": "eth0", "sandbox": "/x"}],
                                       "ips": [{"address": "10.99.0.5/24", "interface": 0}]}})
    result = pm.run("run", "--rm", "--network", name, IMAGE, "true", check=False)
    assert result.returncode != 0 and "invalid MAC address" in result.stderr
    assert calls.commands() == ["ADD", "DEL"]


def test_cni_040(pm: Podman, net: tuple[str, Calls]) -> None:
    name, calls = net
    pm.write_network(name, {"type": "fake-cni", "logDir": str(calls.log_dir), "result": RESULT}, cni_version="0.4.0")
    pm.run("run", "--rm", "--network", name, IMAGE, "true")
    add, delete = calls.all()
    assert add["stdin"]["cniVersion"] == "0.4.0"
    assert delete["stdin"]["prevResult"]["ips"][0]["version"] == "4"


def test_cni_110_is_refused(pm: Podman, net: tuple[str, Calls]) -> None:
    name, calls = net
    pm.write_network(name, {"type": "fake-cni", "logDir": str(calls.log_dir), "result": RESULT}, cni_version="1.1.0")
    result = pm.run("run", "--rm", "--network", name, IMAGE, "true", check=False)
    assert result.returncode != 0 and 'unsupported CNI result version "1.1.0"' in result.stderr


def test_add_failure_fails_run_and_podman_sends_del(pm: Podman, net: tuple[str, Calls]) -> None:
    name, calls = net
    pm.write_network(name, {"type": "fake-cni", "logDir": str(calls.log_dir), "fail": {"ADD": "no port for you"}})
    result = pm.run("run", "--rm", "--network", name, IMAGE, "true", check=False)
    assert result.returncode == 126
    assert 'plugin type="fake-cni" failed (add): cni plugin fake-cni failed: no port for you' in result.stderr
    _, delete = calls.all()
    assert delete["env"]["CNI_COMMAND"] == "DEL" and "prevResult" not in delete["stdin"]


def test_del_failure_does_not_stop_removal(pm: Podman, net: tuple[str, Calls]) -> None:
    name, calls = net
    pm.write_network(name, {"type": "fake-cni", "logDir": str(calls.log_dir), "result": RESULT,
                            "fail": {"DEL": "neutron is down"}})
    pm.run("run", "-d", "--name", "c-del", "--network", name, IMAGE, "sleep", "600")
    netns = pm.inspect("c-del")["NetworkSettings"]["SandboxKey"]
    pm.run("rm", "-f", "-t", "0", "c-del")
    assert calls.commands() == ["ADD", "DEL"]
    assert not os.path.exists(netns)
    assert pm.run("ps", "-aq").stdout.strip() == ""
    # libcni keeps the ADD result cached when DEL fails: cleanup() removes it, leftovers() would report it
    assert any("-" + calls.all()[0]["env"]["CNI_CONTAINERID"] + "-" in p for p in pm.leftovers())


def test_run_without_network_and_default_network_touch_no_plugin(pm: Podman, net: tuple[str, Calls]) -> None:
    _, calls = net
    links = testkit.host_links()
    assert pm.run("run", "--rm", IMAGE, "ip", "-o", "link").stdout.strip().count("\n") == 0
    pm.run("run", "--rm", "--network", "bridge", IMAGE, "true")  # the loopback-only default network
    assert calls.all() == []
    assert {link for link in testkit.host_links() - links if HOST_LINK_KINDS.match(link)} == set()
