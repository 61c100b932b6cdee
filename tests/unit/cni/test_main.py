"""courier-cni against the spec: environment, stdin config, results per version, chaining, errors; the daemon
side over a real unix socket, the core over FakeNeutron and a fake namespace."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from courier import server
from courier.cni import main, spec
from courier.cni.handlers import CniDispatcher
from courier.driver.plugin import Plugin
from tests.fakes import FakeNeutron
from tests.unit.driver.test_attachments import FakeNamespaces, _plugin
from tests.unit.driver.test_attachments import binder as binder
from tests.unit.driver.test_attachments import namespaces as namespaces

CONTAINER = "c" * 64


@pytest.fixture
def network(neutron: FakeNeutron) -> str:
    net = neutron.add_network("pods")
    neutron.add_subnet(net.id, "10.60.0.0/24")
    neutron.add_subnet(net.id, "fd60::/64")
    return net.id


@pytest.fixture
def daemon(tmp_path: Path, neutron: FakeNeutron, binder, namespaces: FakeNamespaces  # type: ignore[no-untyped-def]
           ) -> Iterator[tuple[str, Plugin]]:
    plugin = _plugin(neutron, binder, pools=False)
    path = str(tmp_path / "cni.sock")
    srv = server.UnixPluginServer(path, CniDispatcher(plugin.attachments), 1 << 20)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield path, plugin
    srv.shutdown()
    srv.server_close()
    plugin.close()


def cni(command: str, config: dict[str, Any] | str | None, socket: str, **env: str) -> tuple[int, dict[str, Any]]:
    environ = {"CNI_COMMAND": command, "CNI_CONTAINERID": CONTAINER, "CNI_NETNS": "/run/netns/pod",
               "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin", "COURIER_CNI_SOCKET": socket, **env}
    environ = {k: v for k, v in environ.items() if v != "-"}
    text = config if isinstance(config, str) else json.dumps(config) if config is not None else ""
    out = io.StringIO()
    code = main.run(environ, io.StringIO(text), out)
    return code, json.loads(out.getvalue()) if out.getvalue() else {}


def conf(network: str, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": "pods", "type": "courier-cni", "network": network, **extra}


def test_version_needs_no_daemon(tmp_path: Path) -> None:
    code, answer = cni("VERSION", {"cniVersion": "1.0.0"}, str(tmp_path / "none"))
    assert code == 0 and answer["cniVersion"] == "1.0.0" and "0.4.0" in answer["supportedVersions"]


@pytest.mark.parametrize("version", ["1.0.0", "0.4.0"])
def test_add_returns_a_spec_result_and_del_cleans_up(daemon: tuple[str, Plugin], network: str,
                                                     neutron: FakeNeutron, namespaces: FakeNamespaces,
                                                     version: str) -> None:
    path, _ = daemon
    code, result = cni("ADD", conf(network, version), path)

    assert code == 0, result
    assert result["cniVersion"] == version
    mac = result["interfaces"][0]["mac"]
    assert result["interfaces"] == [{"name": "eth0", "mac": mac, "sandbox": "/run/netns/pod"}]
    assert [ip["address"].split("/")[1] for ip in result["ips"]] == ["24", "64"]
    assert all(ip["interface"] == 0 for ip in result["ips"])
    assert ("version" in result["ips"][0]) == (version == "0.4.0")
    assert {r["dst"] for r in result["routes"]} == {"0.0.0.0/0", "::/0"}

    assert cni("DEL", conf(network, version), path) == (0, {})
    assert not namespaces.inside and not [p for p in neutron.ports.values() if p.device_owner == "compute:kuryr"]


def test_add_chains_after_a_previous_result(daemon: tuple[str, Plugin], network: str) -> None:
    previous = {"cniVersion": "1.0.0", "interfaces": [{"name": "lo"}], "ips": [], "dns": {"search": ["x"]}}
    code, result = cni("ADD", conf(network, prevResult=previous), daemon[0])
    assert code == 0
    assert [i["name"] for i in result["interfaces"]] == ["lo", "eth0"]
    assert {ip["interface"] for ip in result["ips"]} == {1} and result["dns"] == {"search": ["x"]}


def test_static_ip_from_cni_args(daemon: tuple[str, Plugin], network: str) -> None:
    code, result = cni("ADD", conf(network), daemon[0], CNI_ARGS="IgnoreUnknown=1;IP=10.60.0.50")
    assert code == 0 and result["ips"][0]["address"] == "10.60.0.50/24"


def test_check_after_add(daemon: tuple[str, Plugin], network: str, namespaces: FakeNamespaces) -> None:
    _, result = cni("ADD", conf(network), daemon[0])
    assert cni("CHECK", conf(network, prevResult=result), daemon[0]) == (0, {})
    namespaces.inside.clear()
    code, error = cni("CHECK", conf(network, prevResult=result), daemon[0])
    assert code == 1 and error["code"] == spec.UNKNOWN_CONTAINER


def test_del_without_add_succeeds(daemon: tuple[str, Plugin], network: str) -> None:
    assert cni("DEL", conf(network), daemon[0], CNI_NETNS="-") == (0, {})


@pytest.mark.parametrize(("command", "config", "env", "code", "words"), [
    ("BOGUS", {}, {}, spec.INVALID_ENVIRONMENT, "unknown CNI_COMMAND"),
    ("ADD", "{not json", {}, spec.DECODE_FAILURE, "not JSON"),
    ("ADD", "[1]", {}, spec.DECODE_FAILURE, "not a JSON object"),
    ("ADD", {"cniVersion": "9.9.9", "name": "n", "type": "t"}, {}, spec.INCOMPATIBLE_VERSION, "not supported"),
    ("ADD", {"cniVersion": "1.0.0", "name": "n", "type": "t", "network": "x"}, {"CNI_NETNS": "-"},
     spec.INVALID_ENVIRONMENT, "needs CNI_NETNS"),
    ("ADD", {"cniVersion": "1.0.0", "name": "n", "type": "t"}, {}, spec.INVALID_CONFIG, "names no Neutron network"),
    ("ADD", {"cniVersion": "1.0.0", "type": "t", "network": "x"}, {}, spec.INVALID_CONFIG, "invalid network config"),
    ("ADD", {"cniVersion": "1.0.0", "name": "n", "type": "t", "network": "nope"}, {}, spec.INVALID_CONFIG,
     "no Neutron networks"),
    ("CHECK", {"cniVersion": "1.0.0", "name": "n", "type": "t", "network": "x"}, {}, spec.INVALID_CONFIG,
     "CHECK needs prevResult"),
])
def test_bad_calls_are_cni_errors_and_change_nothing(daemon: tuple[str, Plugin], neutron: FakeNeutron,
                                                     command: str, config: Any, env: dict[str, str], code: int,
                                                     words: str) -> None:
    before = neutron.snapshot()
    exit_code, error = cni(command, config, daemon[0], **env)
    assert exit_code == 1 and error["code"] == code and words in error["msg"], error
    assert set(error) <= {"cniVersion", "code", "msg", "details"}
    assert neutron.snapshot() == before


def test_address_in_use_is_a_plugin_error(daemon: tuple[str, Plugin], network: str) -> None:
    cni("ADD", conf(network), daemon[0], CNI_ARGS="IP=10.60.0.60")
    code, error = cni("ADD", conf(network), daemon[0], CNI_ARGS="IP=10.60.0.60", CNI_CONTAINERID="d" * 64)
    assert code == 1 and error["code"] == spec.ADDRESS_IN_USE


def test_daemon_not_running_means_try_again_later(tmp_path: Path) -> None:
    code, error = cni("ADD", conf("n"), str(tmp_path / "no.sock"))
    assert code == 1 and error["code"] == spec.TRY_AGAIN_LATER and "not running" in error["msg"]
    code, error = cni("STATUS", conf("n"), str(tmp_path / "no.sock"))
    assert code == 1 and error["code"] == spec.NOT_AVAILABLE


def test_status_and_gc(daemon: tuple[str, Plugin], network: str, neutron: FakeNeutron) -> None:
    assert cni("STATUS", conf(network, "1.1.0"), daemon[0]) == (0, {})
    cni("ADD", conf(network, "1.1.0"), daemon[0])
    for ep in list(daemon[1].state.endpoints.values()):
        daemon[1].state.settle(ep.port.id)
    assert cni("GC", conf(network, "1.1.0", **{"cni.dev/valid-attachments": []}), daemon[0]) == (0, {})
    assert not [p for p in neutron.ports.values() if p.device_owner == "compute:kuryr"]


def test_the_executable_runs_standalone(tmp_path: Path) -> None:
    """As a runtime runs it: a process, env and stdin; quick, because it imports nothing heavy."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "courier.cni.main"], input=b"{}",
                          env={"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"}, capture_output=True,
                          timeout=30, check=True)
    assert json.loads(proc.stdout)["supportedVersions"]
    imported = proc.stderr.decode()
    for heavy in ("pydantic", "oslo_config", "openstack", "pyroute2"):
        assert f" {heavy}" not in imported, f"courier-cni imports {heavy}"
